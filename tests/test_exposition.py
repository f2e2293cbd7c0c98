"""The exposition passes `promtool check metrics`, and the separate listener is one per host."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry
from support import BIN, clean_env, free_port, require_tool, serve

from guard import GuardConfig, PrivacyGuard
from guard.metrics import exposition

CARRIER = [(b"x-up-calling-line-id", b"447700900123"), (b"x-msisdn", b"447700900456")]
HIDDEN = [(b"x-contact", b"+61 491 570 006")]


async def _app(scope: dict, receive: object, send: object) -> None:
    return None


def _call(guard: PrivacyGuard, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "path": "/", "method": "GET", "headers": headers}
    coroutine = guard(scope, None, None)  # type: ignore[arg-type]
    with pytest.raises(StopIteration):
        coroutine.send(None)


def _promtool_check(text: bytes) -> subprocess.CompletedProcess[bytes]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    "config",
    [GuardConfig(), GuardConfig(mode="report"), GuardConfig(pseudonym_key="ab" * 32)],
    ids=["strip", "report", "pseudonyms"],
)
def test_the_exposition_is_lint_clean(config: GuardConfig) -> None:
    registry = CollectorRegistry()
    guard = PrivacyGuard(_app, config=config, registry=registry)
    for headers in (CARRIER, HIDDEN, [(b"accept", b"*/*")], [(b"cookie", b"msisdn=1; a=b")]):
        _call(guard, headers)

    body, content_type = exposition(registry)
    result = _promtool_check(body)

    assert content_type.startswith("text/plain")
    assert b"privacy_guard_identifiers_total" in body
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_registry_of_its_own_is_exposed_as_it_is_under_multiprocess(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only prometheus-client's default registry is aggregated from the worker files: a guard
    given a registry of its own (tests, an app exposing several) keeps its counts when
    PROMETHEUS_MULTIPROC_DIR happens to be set."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    registry = CollectorRegistry()
    guard = PrivacyGuard(_app, config=GuardConfig(), registry=registry)
    _call(guard, CARRIER)

    body, _ = exposition(registry)

    assert b'privacy_guard_requests_total{result="flagged",type="http"} 1.0' in body
    assert (
        b'privacy_guard_identifiers_total{action="removed",header="x-msisdn",kind="msisdn"} 1.0'
        in body
    )


def _scrape(url: str) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            return httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _value(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


@pytest.mark.slow
def test_two_workers_share_one_listener_and_one_exact_count(tmp_path) -> None:
    port, metrics_port = free_port(), free_port()
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = clean_env(
        PRIVACY_GUARD_METRICS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "guard.demo:app",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    sent = 24
    with serve(argv, port=port, env=env) as server:
        for _ in range(sent):
            # A new connection each time, so both workers get some of them.
            with httpx.Client(base_url=server.url) as client:
                headers = {k.decode(): v.decode() for k, v in CARRIER}
                assert client.get("/", headers=headers).status_code == 200
        text = _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        output = server.output()

    # Both workers started; the one that found the port taken carried on without a listener.
    assert output.count("Application startup complete") == 2, output
    assert "Traceback" not in output
    assert _value(text, 'privacy_guard_requests_total{result="flagged",type="http"}') == sent
    assert (
        _value(text, 'privacy_guard_identifiers_total{action="removed",header="x-msisdn"') == sent
    )
    assert text.count("privacy_guard_info{") == 1, "one host reports its info once"
    result = _promtool_check(text.encode())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_run_with_workers_shares_counts_and_removes_its_metrics_directory(tmp_path) -> None:
    """`privacy-guard run --workers 2` makes a metrics directory when none is set; it must sum
    both workers, and go when the server stops (a directory per restart would pile up)."""
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = clean_env(PRIVACY_GUARD_METRICS_PATH="/metrics", TMPDIR=str(scratch))
    argv = [str(BIN / "privacy-guard"), "run", "guard.demo:app", "--port", str(port)]
    sent = 24
    with serve([*argv, "--workers", "2"], port=port, env=env) as server:
        made = list(scratch.glob("privacy-guard-metrics-*"))
        for _ in range(sent):
            with httpx.Client(base_url=server.url) as client:
                headers = {k.decode(): v.decode() for k, v in CARRIER}
                assert client.get("/", headers=headers).status_code == 200
        text = _scrape(f"{server.url}/metrics")
        assert len({path.name for path in made[0].iterdir()}) > 1, "each worker writes files"

    output = server.output()
    assert output.count("Application startup complete") == 2, output
    assert _value(text, 'privacy_guard_requests_total{result="flagged",type="http"}') == sent
    assert len(made) == 1, made
    assert not made[0].exists(), "the directory outlived the server"
    assert list(scratch.iterdir()) == []


_WORKER = """
import os, sys
from guard import GuardConfig, PrivacyGuard
PrivacyGuard(lambda *a: None, config=GuardConfig(mode=sys.argv[1]))
print(os.getpid())
"""


def _worker(mode: str, env: dict[str, str]) -> int:
    """A worker that builds a guard in `mode` (its gauges written to the directory), then exits."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, mode], env=env, capture_output=True, timeout=60, check=True
    )
    return int(done.stdout)


def test_a_reloaded_worker_reports_its_new_mode_only(tmp_path, monkeypatch) -> None:
    """gunicorn's reload replaces workers; its child_exit hook marks each old one dead. The old
    worker's mode must then leave the exposition, or PrivacyGuardReportMode never clears and
    the dashboard counts the host twice (the gauges were aggregated with max, which outlives
    mark_process_dead)."""
    from prometheus_client import multiprocess

    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))

    def modes() -> set[str]:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return {
            sample.labels["mode"]
            for family in registry.collect()
            if family.name == "privacy_guard_info"
            for sample in family.samples
        }

    old = _worker("report", env)
    assert modes() == {"report"}
    multiprocess.mark_process_dead(old)  # what the example's child_exit hook does
    _worker("strip", env)
    assert modes() == {"strip"}
