"""Faults inside the guard: a broken value check or metrics backend never breaks a request (and
never lets a catalog or name-rule header through); a broken name pass refuses the request.

The log says which stage failed and nothing else: an exception's text could quote a value.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import httpx
import prometheus_client
import pytest
from fuzz.harness import call, guard_for
from prometheus_client import CollectorRegistry
from support import clean_env, free_port, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from guard import GuardConfig
from guard.detect import Names
from guard.events import EVENT_ERROR

SECRET = "61491570006"  # +61 491 570 006: fictional, and a number phonenumbers accepts
REQUEST = [
    (b"host", b"example.test"),
    (b"x-msisdn", b"447700900123"),  # catalog
    (b"x-acme-imsi", b"234150999999999"),  # name rule
    (b"x-contact", b"+" + SECRET.encode()),  # only a value check could find this one
    (b"x-unheard-of", b"hello"),
    (b"accept", b"*/*"),
]
KEPT = [REQUEST[0], REQUEST[3], REQUEST[4], REQUEST[5]]


class Broken(RuntimeError):
    pass


def _raise(*args: object, **kwargs: object) -> None:
    # The message quotes a value, as a real exception might: it must never reach a log line.
    raise Broken(f"could not parse +{SECRET}")


def errors(registry: CollectorRegistry, stage: str) -> float:
    return registry.get_sample_value("privacy_guard_errors_total", {"stage": stage}) or 0.0


def error_events(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e["event"] == EVENT_ERROR]


def test_a_raising_value_check_keeps_the_request_and_the_name_rules(monkeypatch):
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    monkeypatch.setattr("guard.middleware.scan_value", _raise)

    outcome = call(guard, list(REQUEST))

    assert outcome.scope is not None  # the request went on
    assert outcome.scope["headers"] == KEPT  # catalog and name-rule lines still removed
    assert errors(registry, "values") in (1, 2)  # x-contact (and x-unheard-of, if checked)
    failures = error_events(outcome.events)
    assert failures
    assert {e["stage"] for e in failures} == {"values"}
    assert all(e["error"] == "Broken" for e in failures)
    assert SECRET not in repr(outcome.events)
    assert "447700900123" not in repr(outcome.events)


def test_a_raising_placement_check_is_counted_and_the_guard_starts(monkeypatch):
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    monkeypatch.setattr("guard.middleware.placement.outer_layers", _raise)

    outcome = call(guard, list(REQUEST))

    assert outcome.scope is not None  # started, and the request went on, filtered
    assert outcome.scope["headers"] == [REQUEST[0], REQUEST[4], REQUEST[5]]
    assert errors(registry, "placement") == 1
    assert [e["stage"] for e in error_events(outcome.events)] == ["placement"]
    assert SECRET not in repr(outcome.events)
    # Not measured, so not reported as 0: the gauge keeps its start-up value.
    assert registry.get_sample_value("privacy_guard_layers_in_front") == 0


@pytest.mark.parametrize("scope_type", ["http", "websocket"])
def test_a_raising_name_pass_refuses_the_request(monkeypatch, scope_type):
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    monkeypatch.setattr(Names, "classify", _raise)

    outcome = call(guard, list(REQUEST), scope_type=scope_type)

    assert outcome.scope is None  # never reached the app
    if scope_type == "http":
        assert outcome.status == 500
        assert SECRET.encode() not in outcome.sent[1]["body"]
    else:  # closed before accept: the server answers the handshake with 403
        assert outcome.sent == [{"type": "websocket.close", "code": 1011}]
    assert errors(registry, "names") == 1
    assert [e["stage"] for e in error_events(outcome.events)] == ["names"]
    assert SECRET not in repr(outcome.events)


class _BrokenTable(dict):  # type: ignore[type-arg]
    def get(self, *args: object, **kwargs: object) -> None:
        _raise()


def test_a_broken_name_table_refuses_even_a_clean_request():
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    guard._names.table = guard._verdicts = _BrokenTable(guard._names.table)

    outcome = call(guard, [(b"host", b"example.test"), (b"accept", b"*/*")])

    assert outcome.scope is None
    assert outcome.status == 500
    assert errors(registry, "names") == 1


def test_a_reporting_outer_guard_with_a_broken_inner_name_pass_still_refuses(monkeypatch):
    inner = guard_for()
    outer = guard_for(GuardConfig(mode="report"), app=inner)
    monkeypatch.setattr(Names, "classify", _raise)

    outcome = call(outer, list(REQUEST))

    assert outcome.scope is None
    assert outcome.status == 500


def test_a_metrics_backend_that_always_raises_breaks_no_request(monkeypatch):
    guard = guard_for()
    # Every counter, gauge and histogram write fails, including the error counter itself.
    monkeypatch.setattr(prometheus_client.values.MutexValue, "inc", _raise)
    monkeypatch.setattr(prometheus_client.values.MutexValue, "set", _raise)
    monkeypatch.setattr(prometheus_client.values.MutexValue, "get", _raise)

    outcomes = [call(guard, list(REQUEST)) for _ in range(100)]  # also past the timing sample
    clean = call(guard, [(b"host", b"example.test")])

    for outcome in outcomes:
        assert outcome.scope is not None
        assert outcome.scope["headers"] == [h for h in KEPT if h != REQUEST[3]]
    assert clean.scope is not None
    stages = {e["stage"] for o in [*outcomes, clean] for e in error_events(o.events)}
    assert stages == {"metrics"}
    assert SECRET not in repr([o.events for o in outcomes])


def test_a_metric_child_that_cannot_be_created_is_counted_as_a_metrics_error(monkeypatch):
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    # Children bound at start-up keep working; the first new label set (this catalog name) fails.
    monkeypatch.setattr(prometheus_client.Counter, "labels", _raise)

    outcome = call(guard, [(b"x-up-calling-line-id", b"447700900123")])

    assert outcome.scope is not None
    assert outcome.scope["headers"] == []
    assert errors(registry, "metrics") == 1
    assert [e["stage"] for e in error_events(outcome.events)] == ["metrics"]


def test_a_raising_event_logger_is_counted_and_the_request_goes_on(monkeypatch):
    registry = CollectorRegistry()
    guard = guard_for(registry=registry)
    monkeypatch.setattr(guard._events, "flagged", _raise)

    outcome = call(guard, list(REQUEST))

    assert outcome.scope is not None
    assert outcome.scope["headers"] == KEPT[:1] + KEPT[2:]
    assert errors(registry, "logging") == 1


# --- real servers -----------------------------------------------------------------------------

_BROKEN_SERVER = """
import sys
import uvicorn
from guard.detect import Names

def classify(self, raw):
    raise RuntimeError("name pass failed on a value like +{secret}")

Names.classify = classify
uvicorn.run("guard.demo:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


@pytest.mark.slow
def test_a_real_server_refuses_http_and_websocket_when_the_name_pass_fails():
    port = free_port()
    script = textwrap.dedent(_BROKEN_SERVER).format(secret=SECRET)
    with serve([sys.executable, "-c", script, str(port)], port=port, env=clean_env()) as server:
        response = httpx.get(server.url, headers={"x-contact": f"+{SECRET}"}, timeout=10)
        with pytest.raises(InvalidStatus) as refused:  # noqa: SIM117
            with connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"x-unheard-of": "1"}):
                pass
        output = server.output()

    assert response.status_code == 500
    assert SECRET not in response.text
    assert refused.value.response.status_code == 403
    assert '"stage": "names"' in output or "stage=names" in output
    assert SECRET not in output


@pytest.mark.slow
@pytest.mark.parametrize("breakage", ["deleted", "replaced by a file"])
def test_a_broken_multiprocess_directory_breaks_no_request(tmp_path: Path, breakage: str):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    port = free_port()
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(directory), PRIVACY_GUARD_METRICS_PATH="/metrics")
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    with serve(argv, port=port, env=env) as server:
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
        shutil.rmtree(directory)
        if breakage == "replaced by a file":
            directory.write_text("not a directory")
        # New label sets after the breakage: a catalog name, a value-rule number, a region.
        sent = [
            {"x-msisdn": "447700900123"},
            {"x-up-calling-line-id": "447700900456", "x-contact": f"+{SECRET}"},
            {"x-wap-imsi": "234150999999999", "x-acme-msisdn": "1"},
            {},
        ]
        echoes = [httpx.get(f"{server.url}/", headers=h, timeout=10) for h in sent]
        scrape = httpx.get(f"{server.url}/metrics", timeout=10)
        output = server.output()

    for response in echoes:
        assert response.status_code == 200
        names = {name for name, _ in response.json()["headers"]}
        assert not names & {"x-msisdn", "x-up-calling-line-id", "x-contact", "x-wap-imsi"}
    # The exposition cannot be built without the directory: refused and logged, never a crash.
    assert scrape.status_code == 500
    assert "exposition" in output
    assert "Traceback" not in output
    assert SECRET not in output
