"""The request path's rules from the performance issue, held by tests instead of timings.

Once a guard has started and seen one request of a kind, another request of that kind must not
bind a metric child (`.labels()` takes a lock and builds a tuple: the path keeps bound children),
compile a regular expression (or look one up in `re`'s cache), or decode a header it has already
classified — except a name whose value turned out to be a number, which a finding must name. The
clean path must hand the server's header list to the app as it is. A timing would not catch a
regression here on a noisy machine; counting the calls does.

Numbers are fictional: UK drama range where a name decides, Australia's 491 570 range where a
value must be recognised as a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BROWSER, RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import Scope

from guard import GuardConfig, PrivacyGuard
from guard.metrics import OVERHEAD_SAMPLE
from guard.middleware import SCOPE_KEY

Line = tuple[bytes, bytes]

CLEAN: list[Line] = list(BROWSER)
# Each kind of request, as (header lines, query string, flagged?, decodes per request).
KINDS: dict[str, tuple[list[Line], bytes, bool, int]] = {
    "clean": (CLEAN, b"", False, 0),
    "clean, unknown name with a non-numeric value": (
        [*CLEAN, (b"x-request-id", b"3f9c2a7b-e14d-4e0c-9a1b")],
        b"",
        False,
        0,
    ),
    "3 carrier headers": (
        [
            (b"x-up-calling-line-id", b"447700900123"),
            *CLEAN,
            (b"x-msisdn", b"447700900123"),
            (b"x-uidh", b"T3N6cnQ0ZmljdGlvbmFs"),
        ],
        b"",
        True,
        0,
    ),
    # The one candidate: an unknown name whose value is a number is decoded to be shown.
    "a number in an unknown header": ([*CLEAN, (b"x-acme-ref", b"+61491570156")], b"", True, 1),
    "a marked cookie": (
        [*CLEAN[:-1], (b"cookie", b"theme=dark; msisdn=447700900123")],
        b"",
        True,
        0,
    ),
    "a marked query string": (CLEAN, b"page=2&msisdn=447700900123", True, 0),
}
# Enough requests that the one in OVERHEAD_SAMPLE whose time is observed is among them.
REQUESTS = OVERHEAD_SAMPLE + 8


class Counted(bytes):
    """A header name or value that counts its decodes: the guard only ever decodes what it has
    to classify, and a server's bytes reach it as new objects every time."""

    decodes = 0

    def decode(self, *args: Any, **kwargs: Any) -> str:
        Counted.decodes += 1
        return super().decode(*args, **kwargs)


def fresh(lines: list[Line], query: bytes) -> Scope:
    """The request as a server hands it over: new bytes objects, a new list, a new scope."""
    scope = http_scope([(Counted(name), Counted(value)) for name, value in lines])
    scope["query_string"] = query
    return scope


def started(**config: Any) -> tuple[PrivacyGuard, RecordingApp]:
    app = RecordingApp()
    guard = PrivacyGuard(app, config=GuardConfig(**config), registry=CollectorRegistry())
    call(guard, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    return guard, app


def spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Replace `owner.name` by a wrapper that counts its calls (and still calls through)."""
    calls = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


@pytest.mark.parametrize("config", [{}, {"mode": "report"}], ids=["strip", "report"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_request_of_a_kind_seen_before_binds_compiles_and_decodes_nothing(
    monkeypatch: pytest.MonkeyPatch, kind: str, config: dict[str, str]
) -> None:
    lines, query, flagged, decodes = KINDS[kind]
    guard, app = started(**config)
    call(guard, fresh(lines, query))  # the first of its kind: names classified, counters bound

    labels = spy(monkeypatch, MetricWrapperBase, "labels")
    compiles = spy(monkeypatch, re, "_compile")
    Counted.decodes = 0
    app.scopes.clear()
    for _ in range(REQUESTS):
        call(guard, fresh(lines, query))

    assert len(app.scopes) == REQUESTS
    assert all(bool(scope[SCOPE_KEY]) is flagged for scope in app.scopes)
    assert labels[0] == 0, f"{labels[0]} .labels() calls in {REQUESTS} requests"
    assert compiles[0] == 0, f"{compiles[0]} regex compiles in {REQUESTS} requests"
    assert Counted.decodes == decodes * REQUESTS, f"{Counted.decodes} decodes, {REQUESTS} requests"


def test_the_spies_see_what_they_are_meant_to_see(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three counters above are live: a guard's first sight of a name and of a counter
    decodes and binds, and a pattern not yet in `re`'s cache is compiled."""
    labels = spy(monkeypatch, MetricWrapperBase, "labels")
    compiles = spy(monkeypatch, re, "_compile")
    Counted.decodes = 0
    guard, _ = started()
    call(guard, fresh([*CLEAN, (b"x-acme-never-seen", b"1")], b""))
    call(guard, fresh(KINDS["3 carrier headers"][0], b""))
    re.compile(rf"privacy-guard-{id(guard)}")
    assert labels[0] > 0
    assert compiles[0] == 1
    assert Counted.decodes > 0


def test_the_clean_path_hands_the_server_header_list_to_the_app_as_it_is() -> None:
    """No copy of the header list, and one copy of the scope (the server owns the one it passed;
    the guard adds its findings to its own)."""
    guard, app = started()
    call(guard, fresh(CLEAN, b""))
    scope = fresh(CLEAN, b"")
    app.scopes.clear()
    call(guard, scope)
    assert app.scope["headers"] is scope["headers"]
    assert app.scope is not scope
    assert SCOPE_KEY not in scope
    assert {key: value for key, value in app.scope.items() if key != SCOPE_KEY} == scope
