"""The benchmark suite still runs: a tiny in-process run end to end (numbers not judged here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import structlog

from tests.benchmarks import headersets, inprocess, stacks


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
