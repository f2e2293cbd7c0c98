"""Replayed shapes: a flagged request whose names were seen before reuses that inspection.

The oracle is the guard itself with plans switched off: for any request, with any values, the
replayed inspection must equal the line-by-line one, field by field. Values that change the
outcome (a Cookie or query marker, a number's region, a trusted gateway) must still be read on
every request. Numbers are fictional: UK drama range for name rules, Australia's 491 570 range and
NANP 555-01xx where a value or its region matters.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import BROWSER, RecordingApp, call, http_scope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from guard import GuardConfig, PrivacyGuard
from guard import middleware as middleware_module
from guard.middleware import _PLAN_LINES, _PLAN_NAME_BYTES, _PLANS_MAX, SCOPE_KEY

Line = tuple[bytes, bytes]

CLEAN: list[Line] = list(BROWSER)
CARRIER_NAMES = (b"x-up-calling-line-id", b"x-msisdn", b"x-uidh")
TRUSTED = {
    "trusted_sources": ("192.0.2.0/24",),
    "trusted_paths": ("/billing/",),
    "trusted_headers": ("x-msisdn",),
}


def guard_for(plans: bool = True, **config: Any) -> tuple[PrivacyGuard, RecordingApp]:
    app = RecordingApp()
    guard = PrivacyGuard(app, config=GuardConfig(**config), registry=CollectorRegistry())
    if not plans:
        guard._plans = None
    # Warm: a name's verdict is cached the first time it is seen, which moves where a shape starts.
    call(guard, http_scope(list(CLEAN)))
    return guard, app


def carrier(numbers: tuple[bytes, bytes], token: bytes = b"T3N6cnQ0ZmljdGlvbmFs") -> list[Line]:
    return [*CLEAN, (CARRIER_NAMES[0], numbers[0]), (CARRIER_NAMES[1], numbers[1]),
            (CARRIER_NAMES[2], token)]  # fmt: skip


def through(guard: PrivacyGuard, app: RecordingApp, scope: Scope) -> Scope:
    app.scopes.clear()
    call(guard, scope)
    return app.scope


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per replay attempt: True when the plan applied, False when a value refused it."""
    seen: list[bool] = []
    original = middleware_module._replay

    def counting(plan: Any, scope: Scope, marked: bool) -> Any:
        found = original(plan, scope, marked)
        seen.append(found is not None)
        return found

    monkeypatch.setattr(middleware_module, "_replay", counting)
    return seen


def test_a_carrier_shape_is_inspected_once_then_replayed(replays: list[bool]) -> None:
    guard, app = guard_for()
    registry = guard._registry

    first = through(guard, app, http_scope(carrier((b"447700900123", b"447700900123"))))
    second = through(guard, app, http_scope(carrier((b"447700900456", b"447700900456"))))

    assert replays == [True]
    for scope in (first, second):
        assert scope["headers"] == CLEAN
        assert [f.header for f in scope[SCOPE_KEY]] == [
            "x-up-calling-line-id",
            "x-msisdn",
            "x-uidh",
        ]
    flagged = {"type": "http", "result": "flagged"}
    assert registry.get_sample_value("privacy_guard_requests_total", flagged) == 2
    for name, kind in zip(CARRIER_NAMES, ("msisdn", "msisdn", "subscriber_token"), strict=True):
        labels = {"header": name.decode(), "kind": kind, "action": "removed"}
        assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 2


def test_the_region_comes_from_each_requests_own_number(replays: list[bool]) -> None:
    guard, app = guard_for()
    registry = guard._registry

    through(guard, app, http_scope(carrier((b"61491570006", b"61491570006"))))
    through(guard, app, http_scope(carrier((b"12015550123", b"12015550123"))))

    assert replays == [True]
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "AU"}) == 1
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "US"}) == 1


def test_a_cookie_with_a_marker_is_still_read_on_a_known_shape(replays: list[bool]) -> None:
    guard, app = guard_for()
    marked = [
        (name, b"session=3f9c2a7b; msisdn=447700900123" if name == b"cookie" else value)
        for name, value in carrier((b"447700900123", b"447700900123"))
    ]
    # The Cookie line after the carrier lines, so the shape covers it.
    order = [4, 5, 6, 0, 1, 2, 3]
    through(guard, app, http_scope([carrier((b"447700900123", b"447700900123"))[i] for i in order]))

    scope = through(guard, app, http_scope([marked[i] for i in order]))

    assert replays == [False]  # the plan was found and refused: the cookie has a marker
    assert (b"cookie", b"session=3f9c2a7b") in scope["headers"]
    assert b"447700900123" not in repr(scope["headers"]).encode()
    assert "cookie:msisdn" in [f.header for f in scope[SCOPE_KEY]]


def test_a_query_string_with_a_marker_is_still_read_on_a_known_shape(
    replays: list[bool],
) -> None:
    guard, app = guard_for()
    through(guard, app, http_scope(carrier((b"447700900123", b"447700900123"))))
    scope = http_scope(carrier((b"447700900123", b"447700900123")))
    scope["query_string"] = b"msisdn=447700900123"

    seen = through(guard, app, scope)

    assert replays == [False]
    assert "query:msisdn" in [f.header for f in seen[SCOPE_KEY]]


@pytest.mark.parametrize("first_trusted", [True, False])
def test_a_trusted_name_is_never_replayed(first_trusted: bool) -> None:
    """Whether x-msisdn passes depends on who sent it and where: decided on every request."""
    guard, app = guard_for(**TRUSTED)
    headers = [*CLEAN, (b"x-msisdn", b"447700900123")]
    trusted = http_scope(headers, path="/billing/charge")
    trusted["client"] = ("192.0.2.10", 40000)
    untrusted = http_scope(headers, path="/billing/charge")
    untrusted["client"] = ("198.51.100.7", 40000)
    order = [trusted, untrusted] if first_trusted else [untrusted, trusted]

    seen = [through(guard, app, scope) for scope in order * 2]

    for scope in seen:
        passed = (b"x-msisdn", b"447700900123") in scope["headers"]
        assert passed == (scope["client"][0] == "192.0.2.10")
    assert not guard._plans


def test_an_unknown_name_is_scanned_on_every_request(replays: list[bool]) -> None:
    guard, app = guard_for()
    plain = through(guard, app, http_scope([*CLEAN, (b"x-foo", b"ordinary")]))
    number = through(guard, app, http_scope([*CLEAN, (b"x-foo", b"+61 491 570 006")]))

    assert plain[SCOPE_KEY] == ()
    assert [f.header for f in number[SCOPE_KEY]] == ["x-foo"]
    assert replays == []
    assert not guard._plans


def test_report_mode_replays_without_copying_the_header_list(replays: list[bool]) -> None:
    guard, app = guard_for(mode="report")
    for _ in range(2):
        headers = carrier((b"447700900123", b"447700900123"))
        scope = through(guard, app, http_scope(headers))
        assert scope["headers"] is headers
        assert {f.action for f in scope[SCOPE_KEY]} == {"reported"}
    assert replays == [True]


def test_no_plans_when_pseudonyms_are_made_from_values() -> None:
    guard, app = guard_for(pseudonym_key=b"k" * 32)
    first = through(guard, app, http_scope(carrier((b"61491570006", b"61491570006"))))
    second = through(guard, app, http_scope(carrier((b"61491570007", b"61491570007"))))

    assert guard._plans is None

    def token(scope: Scope) -> bytes:
        return dict(scope["headers"])[b"x-privacy-guard-pseudonym"]

    assert token(first) != token(second)


def test_plans_are_bounded_in_number_lines_and_name_bytes() -> None:
    guard, app = guard_for()
    plans = guard._plans
    assert plans is not None
    for serial in range(_PLANS_MAX + 50):
        through(guard, app, http_scope([*CLEAN, (f"x-{serial}-msisdn".encode(), b"1")]))
        assert 0 < len(plans) <= _PLANS_MAX

    plans.clear()
    long_tail = [(b"x-msisdn", b"447700900123")] + [(b"accept", b"*/*")] * _PLAN_LINES
    through(guard, app, http_scope([*CLEAN, *long_tail]))
    long_name = b"x-" + b"a" * _PLAN_NAME_BYTES + b"-msisdn"
    through(guard, app, http_scope([*CLEAN, (long_name, b"447700900123")]))
    assert not plans


def test_a_shape_exactly_at_the_bounds_is_still_remembered() -> None:
    """The bounds are inclusive: a shape of exactly _PLAN_LINES lines, or of names totalling
    exactly _PLAN_NAME_BYTES bytes, is remembered (and one line or byte more is not, above)."""
    guard, app = guard_for()
    plans = guard._plans
    assert plans is not None

    tail = [(b"x-msisdn", b"447700900123")] + [(b"accept", b"*/*")] * (_PLAN_LINES - 1)
    first = through(guard, app, http_scope([*CLEAN, *tail]))
    assert len(plans) == 1
    replayed = through(guard, app, http_scope([*CLEAN, *tail]))
    assert replayed["headers"] == first["headers"] == CLEAN + tail[1:]

    plans.clear()
    name = b"x-" + b"a" * (_PLAN_NAME_BYTES - len(b"x--msisdn")) + b"-msisdn"
    assert len(name) == _PLAN_NAME_BYTES
    through(guard, app, http_scope([*CLEAN, (name, b"447700900123")]))
    assert len(plans) == 1


# --- the property: a replay equals the line-by-line inspection ---------------------------------

# A small pool, so that shapes repeat across examples with other values.
NAMES = st.sampled_from(
    [
        b"x-msisdn",
        b"X-Up-Calling-Line-ID",
        b"x-uidh",
        b"x-imsi",
        b"x-acme-msisdn",
        b"x-acme-sub",  # an operator's extra name
        b"x-privacy-guard-pseudonym",
        b"accept",
        b"user-agent",
        b"cookie",
        b"x-foo",
        b"x-request-id",
    ]
)
VALUES = st.sampled_from(
    [
        b"447700900123",
        b"61491570006",
        b"+1 201 555 0123",
        b"12015550199",
        b"ordinary",
        b"session=abc; theme=dark",
        b"session=abc; msisdn=447700900123",
        b"",
    ]
)
QUERIES = st.sampled_from([b"", b"page=2", b"msisdn=447700900123"])
PROPERTY_CONFIG = {"extra_headers": ("x-acme-sub",), **TRUSTED}
GUARDS = {
    (mode, scan): (
        guard_for(mode=mode, scan_values=scan, **PROPERTY_CONFIG)[0],
        guard_for(False, mode=mode, scan_values=scan, **PROPERTY_CONFIG)[0],
    )
    for mode in ("strip", "report")
    for scan in ("strip", "off")
}


def inspected(guard: PrivacyGuard, scope: Scope, start: int) -> tuple[Any, ...] | None:
    found = guard._inspect(scope, start)
    if found is None:
        return None
    return (found.headers, found.findings, list(found.counts), found.region, found.exhausted)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAMES, max_size=6),
    values=st.data(),
    query=QUERIES,
    config=st.sampled_from(sorted(GUARDS)),
    trusted=st.booleans(),
)
def test_a_replay_equals_the_line_by_line_inspection(
    names: list[bytes],
    values: st.DataObject,
    query: bytes,
    config: tuple[str, str],
    trusted: bool,
) -> None:
    planning, reference = GUARDS[config]
    for _ in range(2):  # the same shape twice, with other values: the second may be a replay
        headers = [(name, values.draw(VALUES)) for name in names]
        scope = http_scope(headers, path="/billing/x" if trusted else "/")
        scope["client"] = ("192.0.2.10" if trusted else "198.51.100.7", 40000)
        scope["query_string"] = query
        for start in range(len(headers) + 1):
            assert inspected(planning, scope, start) == inspected(reference, scope, start)
