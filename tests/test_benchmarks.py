"""The benchmark suite still runs: a tiny in-process run end to end (numbers not judged here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import structlog

from tests.benchmarks import headersets, inprocess, loadgen, over_http, stacks


@pytest.fixture
def structlog_restored() -> Iterator[None]:
    """The suite sends the guard's logs to /dev/null through structlog.configure: undo that."""
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.mark.usefixtures("structlog_restored")
def test_a_tiny_in_process_run_reports_every_request_set() -> None:
    options = inprocess.Options(
        rounds=2,
        batch_ms=0.2,
        stacks=("bare", "noop", "guard"),
        cold_rounds=1,
        cold_requests=3,
    )
    markdown, goals = inprocess.run(options, progress=lambda line: None)

    for label in (headersets.LABELS[name] for name in inprocess.ISOLATED_SETS):
        assert label in markdown
    assert "reference filter" in markdown
    cold = markdown.split("### The same with cold caches")[1].split("###")[0]
    for label in (headersets.LABELS[name] for name in inprocess.COLD_SETS):
        assert label in cold
    assert len(goals) == len(inprocess.ISOLATED_TARGETS)  # every target checked and listed


def test_the_reference_filter_removes_catalog_names_and_keeps_the_rest() -> None:
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["headers"])

    headers = headersets.fresh(headersets.CARRIER)
    asyncio.run(stacks.ReferenceGuard(app)({"type": "http", "headers": headers}, None, None))

    assert seen == [list(headersets.CLEAN)]


def test_the_busy_wait_yardstick_spends_at_least_its_time_then_calls_the_app() -> None:
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope)

    layer = stacks.BusyWait(app, microseconds=50)
    started = time.perf_counter()
    asyncio.run(layer({"type": "http", "headers": []}, None, None))
    assert time.perf_counter() - started >= 50e-6
    assert len(seen) == 1
    assert set(stacks.BUSY) <= set(stacks.STACKS)
    assert not set(stacks.BUSY) & set(inprocess.Options().stacks)


def _over_http_report(guard_added: dict[str, float]) -> tuple[str, list[list[str]]]:
    """The over-HTTP report of made-up runs: every bare app 40 µs of server CPU per request, the
    metrics middlewares 60 µs more, the guard (over Starlette and FastAPI) what it is given."""
    runs: dict[tuple[str, str], list[loadgen.Run]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for set_name, chosen in over_http.PLAN.items():
        for name in chosen:
            added = 60.0 if name in ("exporter", "fastapi_instrumentator") else 0.0
            if name in ("guard", "fastapi_guard"):
                added = guard_added.get(set_name, 0.0)
            runs[set_name, name] = [loadgen.Run(10_000, 1.0, 10_000 * (40.0 + added) / 1e6)]
            ratios[set_name, name] = [1.0]
    return over_http._report(over_http.Options(), runs, ratios, ratios, 1.0)


def test_the_over_http_report_checks_the_metrics_ratios_by_server_cpu() -> None:
    markdown, goals = _over_http_report({"clean": 2.0, "carrier": 8.0})

    section = markdown.split("### Overhead ratios by server CPU")[1]
    assert section.count("| 30x |") == 2  # clean: 60 ÷ 2
    assert section.count("| 8x |") == 2  # carrier: 60 ÷ 8
    checked = {row[0]: row[3] for row in goals if "÷ guard's" in row[0]}
    assert len(checked) == len(stacks.RATIO_TARGETS) * len(stacks.METRICS_PAIRS)
    assert list(checked.values()) == ["met", "met", "**missed**", "**missed**"]


def test_a_guard_cpu_figure_at_or_below_zero_is_not_judged_a_ratio_met() -> None:
    markdown, goals = _over_http_report({"clean": -1.5, "carrier": 8.0})

    section = markdown.split("### Overhead ratios by server CPU")[1]
    assert section.count("not judged") == 2
    assert "infx" not in section
    checked = [row[0] for row in goals if "÷ guard's" in row[0]]
    assert all("+ 3 carrier headers" in what for what in checked)
    assert len(checked) == len(stacks.METRICS_PAIRS)
