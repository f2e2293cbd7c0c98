"""The guard's log-event bookkeeping: first occurrences, interval summaries, and the bound."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import structlog

from guard.detect import Finding
from guard.events import _MAX_KEYS, EVENT_FOUND, EVENT_SUMMARY, Events, safe_path

SCOPE = {"type": "http", "method": "GET", "path": "/"}
MSISDN = Finding("x-msisdn", "msisdn", "removed", "catalog")
UIDH = Finding("x-uidh", "subscriber_token", "removed", "catalog")


def _finding(number: int) -> Finding:
    return Finding(f"x-extra-{number}", "other", "removed", "extra")


def _summary(logs: list[dict[str, object]]) -> dict[str, object]:
    (summary,) = [e for e in logs if e["event"] == EVENT_SUMMARY]
    return summary


def test_first_occurrences_are_logged_once_and_everything_is_summed() -> None:
    events = Events(debug=False)
    with structlog.testing.capture_logs() as logs:
        events.flagged((MSISDN, UIDH), SCOPE)
        events.flagged((MSISDN, UIDH), SCOPE)
        events.flagged((UIDH, MSISDN, MSISDN), SCOPE)  # the same header twice in one request
        events.flush()
    found = [e for e in logs if e["event"] == EVENT_FOUND]
    assert [[f["header"] for f in e["findings"]] for e in found] == [["x-msisdn", "x-uidh"]]
    summary = _summary(logs)
    assert summary["requests"] == 3
    assert summary["identifiers"] == [
        {"header": "x-msisdn", "kind": "msisdn", "action": "removed", "count": 4},
        {"header": "x-uidh", "kind": "subscriber_token", "action": "removed", "count": 3},
    ]
    assert summary["more_identifiers"] == 0


def test_a_new_finding_later_in_the_interval_is_logged_alone() -> None:
    events = Events(debug=False)
    with structlog.testing.capture_logs() as logs:
        events.flagged((MSISDN,), SCOPE)
        events.flagged((MSISDN, UIDH), SCOPE)
    found = [e for e in logs if e["event"] == EVENT_FOUND]
    assert [[f["header"] for f in e["findings"]] for e in found] == [["x-msisdn"], ["x-uidh"]]


def test_distinct_findings_are_bounded_and_the_rest_counted_as_more() -> None:
    events = Events(debug=False)
    with structlog.testing.capture_logs() as logs:
        # One request short of the bound, then one that crosses it, then one entirely beyond.
        events.flagged(tuple(_finding(n) for n in range(_MAX_KEYS - 1)), SCOPE)
        events.flagged((_finding(0), _finding(_MAX_KEYS), _finding(_MAX_KEYS + 1)), SCOPE)
        events.flagged((_finding(_MAX_KEYS + 1), _finding(_MAX_KEYS + 2)), SCOPE)
        assert len(events._counts) == _MAX_KEYS
        events.flush()
    found = [e for e in logs if e["event"] == EVENT_FOUND]
    assert [len(e["findings"]) for e in found] == [_MAX_KEYS - 1, 1]
    assert found[1]["findings"][0]["header"] == f"x-extra-{_MAX_KEYS}"
    summary = _summary(logs)
    assert len(summary["identifiers"]) == _MAX_KEYS
    assert summary["identifiers"][0] == {
        "header": "x-extra-0",
        "kind": "other",
        "action": "removed",
        "count": 2,
    }
    assert summary["more_identifiers"] == 3  # x-extra-257 twice, x-extra-258 once
    assert summary["requests"] == 3


def test_a_flush_starts_a_new_interval() -> None:
    events = Events(debug=False)
    with structlog.testing.capture_logs() as logs:
        events.flagged((MSISDN,), SCOPE)
        events.flush()
        events.flagged((MSISDN,), SCOPE)
        events.flush()
    assert len([e for e in logs if e["event"] == EVENT_FOUND]) == 2
    assert [e["requests"] for e in logs if e["event"] == EVENT_SUMMARY] == [1, 1]


def test_debug_logs_every_flagged_request() -> None:
    events = Events(debug=True)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            events.flagged((MSISDN, UIDH), SCOPE)
    found = [e for e in logs if e["event"] == EVENT_FOUND]
    assert [e["first"] for e in found] == [True, False, False]
    assert all(len(e["findings"]) == 2 for e in found)


def test_repeated_findings_are_counted_exactly_however_the_runs_interleave() -> None:
    events = Events(debug=False)
    requests = [(MSISDN,)] * 5 + [(MSISDN, UIDH)] * 3 + [(MSISDN,)] * 2 + [(UIDH,)]
    with structlog.testing.capture_logs() as logs:
        for findings in requests:
            events.flagged(findings, SCOPE)
        events.flush()
    summary = _summary(logs)
    assert summary["requests"] == len(requests)
    assert {e["header"]: e["count"] for e in summary["identifiers"]} == {
        "x-msisdn": 10,
        "x-uidh": 4,
    }


def test_repeats_of_a_finding_beyond_the_bound_go_to_more() -> None:
    events = Events(debug=False)
    with structlog.testing.capture_logs() as logs:
        events.flagged(tuple(_finding(n) for n in range(_MAX_KEYS)), SCOPE)
        for _ in range(4):
            events.flagged((_finding(0), _finding(_MAX_KEYS)), SCOPE)
        events.flush()
    summary = _summary(logs)
    assert summary["more_identifiers"] == 4
    assert summary["identifiers"][0] == {
        "header": "x-extra-0",
        "kind": "other",
        "action": "removed",
        "count": 5,
    }


def test_an_interval_ends_exactly_when_its_length_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request at exactly `interval` seconds after the window opened starts the next one."""
    clock = {"now": 1000.0}
    monkeypatch.setattr("guard.events.time", SimpleNamespace(monotonic=lambda: clock["now"]))
    events = Events(debug=False, interval=60.0)
    with structlog.testing.capture_logs() as logs:
        clock["now"] = 1059.5
        events.flagged((MSISDN,), SCOPE)
        assert not [e for e in logs if e["event"] == EVENT_SUMMARY]
        clock["now"] = 1060.0
        events.flagged((MSISDN,), SCOPE)
    summary = _summary(logs)
    assert (summary["interval_s"], summary["requests"]) == (60.0, 1)
    assert len([e for e in logs if e["event"] == EVENT_FOUND]) == 2


def test_a_new_interval_logs_first_occurrences_again_even_for_a_repeat() -> None:
    events = Events(debug=False, interval=0.0)  # every flagged request starts a new interval
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            events.flagged((MSISDN,), SCOPE)
    assert len([e for e in logs if e["event"] == EVENT_FOUND]) == 3
    assert [e["requests"] for e in logs if e["event"] == EVENT_SUMMARY] == [1, 1]


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/call/61491570006", "/call/#"),
        ("/call/+61 491 570 006", "/call/#"),
        ("/call/%2B61%20491%20570%20006", "/call/#"),
        ("/call/1-201-555-0123", "/call/#"),
        ("/call/1_201_555_0123", "/call/#"),
        ("/call/61,491,570,006", "/call/#"),
        ("/u/614/915/700/06", "/u/#"),
        ("/u/614%2F915%2C700%2C06", "/u/#"),
        ("/u/61, 491, 570, 006", "/u/#"),
        ("/u/61 - 491 - 570 - 006", "/u/#"),
        ("/u/61%2D491%2E570%5F006", "/u/#"),
        ("/u/+61+491+570+006", "/u/#"),
        ("/orders/12345/items/6", "/orders/12345/items/6"),  # five digits: an ordinary id
        ("/orders/123456/items/6", "/orders/#/items/6"),  # six: masked
        ("/u/123-456", "/u/#"),
        ("/a\x00b\x1b[31m/c", "/ab[31m/c"),
    ],
)
def test_paths_in_events_mask_numbers_however_written(path: str, shown: str) -> None:
    assert safe_path(path) == shown
