"""Property tests: arbitrary header lists of arbitrary bytes through the guard.

The oracles here are independent of `guard.detect`: a name is folded with plain ASCII rules
(DESIGN's folding) and looked up in the catalog data, or matched against the issue's strong stems.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from conftest import RecordingApp, call, http_scope, status_of
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from guard import GuardConfig, PrivacyGuard
from guard.catalog import CATALOG, KINDS, LOW_RISK, fold, shown

Line = tuple[bytes, bytes]

pytestmark = pytest.mark.slow  # ~200 examples each: several seconds per test

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEMS = {"msisdn", "imsi", "imei", "imeisv", "mdn", "clid", "subno", "uidh", "acr", "subnym",
         "callinglineid"}  # fmt: skip
RULES = {"catalog", "name", "value", "extra"}
DIGIT_RUN = re.compile(rb"[0-9]{6,}")


def ascii_fold(name: bytes) -> str:
    """DESIGN's folding, ASCII only: whitespace dropped, lower case, `_` and `.` become `-`."""
    return name.strip().lower().replace(b"_", b"-").replace(b".", b"-").decode("latin-1")


def identifier_shaped(folded: str) -> bool:
    tokens = folded.split("-")
    return "msisdn" in folded or any(token in STEMS for token in tokens) or "calling-line" in folded


def must_go(name: bytes) -> bool:
    """A line the guard must remove in strip mode, whatever its value."""
    folded = ascii_fold(name)
    return folded in CATALOG or (folded not in LOW_RISK and identifier_shaped(folded))


def must_stay(name: bytes) -> bool:
    folded = ascii_fold(name)
    return folded in LOW_RISK and folded not in CATALOG


# --- strategies --------------------------------------------------------------------------------


@st.composite
def variant(draw: st.DrawFn, names: list[str]) -> bytes:
    """A known name in random case, with `_`/`.` for `-` and maybe surrounding whitespace."""
    name = draw(st.sampled_from(names))
    rnd = draw(st.randoms(use_true_random=False))
    chars = [
        rnd.choice("-_.") if char == "-" else rnd.choice((char, char.upper())) for char in name
    ]
    pad = ["", " ", "\t", "  "]
    return (rnd.choice(pad) + "".join(chars) + rnd.choice(pad)).encode("latin-1")


AU = st.integers(6, 159).map(lambda n: f"491570{n:03d}")
NANP = st.integers(100, 199).map(lambda n: f"201555{n:04d}")
UK = st.integers(0, 999).map(lambda n: f"447700900{n:03d}")


@st.composite
def phone_value(draw: st.DrawFn) -> bytes:
    """A fictional number in one of the forms carriers and apps send."""
    country, national = draw(st.sampled_from([("61", AU), ("1", NANP), ("", UK)]))
    digits = country + draw(national)
    if draw(st.booleans()) and len(digits) > 7:
        step = draw(st.sampled_from([" ", "-"]))
        digits = step.join([digits[:2], digits[2:5], digits[5:8], digits[8:]])
    prefix = draw(st.sampled_from(["", "+", "tel:+"]))
    return (prefix + digits).encode()


NAMES = st.one_of(
    st.binary(max_size=24),
    variant(sorted(CATALOG)),
    variant(sorted(LOW_RISK)),
    variant(["accept", "user-agent", "x-request-id", "content-length", "x-contact"]),
    st.binary(max_size=8).map(lambda b: b"x-" + b + b"-msisdn"),
)
VALUES = st.one_of(
    st.binary(max_size=48),
    phone_value(),
    st.lists(phone_value(), min_size=2, max_size=3).map(b", ".join),
    st.integers(10**6, 10**16 - 1).map(lambda n: str(n).encode()),
)
# Cookie lines are rewritten pair by pair, not removed whole: they have their own property.
LINE = st.tuples(NAMES, VALUES).filter(lambda line: fold(line[0].decode("latin-1")) != "cookie")


@st.composite
def header_lists(draw: st.DrawFn, line: Any = LINE) -> list[Line]:
    headers: list[Line] = draw(st.lists(line, max_size=24))
    duplicate: bool = draw(st.booleans())
    if headers and duplicate:  # duplicates, as clients and proxies send them
        headers.insert(draw(st.integers(0, len(headers))), draw(st.sampled_from(headers)))
    return headers


# --- the guards under test ---------------------------------------------------------------------

REGISTRY = CollectorRegistry()
STRIP_APP, REPORT_APP = RecordingApp(), RecordingApp()
STRIP = PrivacyGuard(STRIP_APP, config=GuardConfig(), registry=REGISTRY)
REPORT = PrivacyGuard(REPORT_APP, config=GuardConfig(mode="report"), registry=REGISTRY)


def run(guard: PrivacyGuard, app: RecordingApp, headers: list[Line]) -> Scope:
    app.scopes.clear()
    assert status_of(call(guard, http_scope(headers))) == 204
    assert errors() == 0, "an internal failure was swallowed"
    return app.scope


def errors() -> float:
    return sum(
        s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == "privacy_guard_errors_total"
    )


def is_subsequence(short: list[Any], long: list[Any]) -> bool:
    remaining = iter(long)
    return all(any(line == other for other in remaining) for line in short)


# --- properties --------------------------------------------------------------------------------


@SETTINGS
@given(header_lists())
def test_strip_removes_exactly_the_flagged_lines(headers: list[Line]) -> None:
    original = list(headers)

    scope = run(STRIP, STRIP_APP, headers)

    seen: list[Line] = scope["headers"]
    findings = scope["privacy_guard"]
    assert headers == original, "the server's list was changed"
    assert is_subsequence(seen, headers), "kept lines are not the input in order"
    removed = Counter(headers) - Counter(seen)
    assert len(seen) == len(headers) - sum(removed.values())
    assert all(f.action == "removed" for f in findings)
    assert len(findings) == sum(removed.values())
    assert Counter(f.header for f in findings) == Counter(
        shown(name.decode("latin-1")) for (name, _), n in removed.items() for _ in range(n)
    )
    assert not findings or seen is not headers
    if not findings:
        assert seen is headers
    for finding in findings:
        assert finding.kind in KINDS
        assert finding.rule in RULES
        assert not re.search(r"[0-9]", finding.header)
    for name, _ in seen:
        assert not must_go(name), f"{shown(name.decode('latin-1'))} slipped through"
    for line in headers:
        if must_stay(line[0]):
            assert line in seen


@SETTINGS
@given(header_lists())
@example([(b"cli", b"msisdn")])  # a value that is also a kind's name is not an echo
def test_no_removed_value_reaches_the_app(headers: list[Line]) -> None:
    scope = run(STRIP, STRIP_APP, headers)

    seen: list[Line] = scope["headers"]
    # Everything but the header list and the findings is the server's scope, unchanged.
    assert {k: v for k, v in scope.items() if k not in ("headers", "privacy_guard")} == {
        k: v for k, v in http_scope(headers).items() if k != "headers"
    }
    kept_values = {value for _, value in seen}
    findings = repr(scope["privacy_guard"]).encode("utf-8")
    # What findings may legitimately hold: the request's names (shown), the closed vocabularies
    # and the repr's own words. A value such as `msisdn` that is also one of those is no echo.
    legitimate = repr(
        (
            [shown(name.decode("latin-1")) for name, _ in headers],
            KINDS,
            RULES,
            ("removed", "reported", "replaced", "Finding", "header", "kind", "action", "rule"),
        )
    ).encode("utf-8")
    for _, value in Counter(headers) - Counter(seen):
        if value in kept_values:
            continue  # the same bytes also arrived as the value of a line that is kept
        for digits in DIGIT_RUN.findall(value):
            assert digits not in findings
        if len(value) >= 6 and value not in legitimate:
            assert value not in findings


@SETTINGS
@given(header_lists())
def test_report_mode_never_changes_the_list(headers: list[Line]) -> None:
    original = list(headers)

    scope = run(REPORT, REPORT_APP, headers)

    assert scope["headers"] is headers
    assert headers == original
    assert all(f.action == "reported" for f in scope["privacy_guard"])
    flagged = sum(must_go(name) for name, _ in headers)
    assert len(scope["privacy_guard"]) >= flagged


COOKIE_NAMES = st.one_of(
    st.sampled_from([b"session", b"theme", b"gclid", b"uid", b"clid", b"_ga", b"user_id"]),
    st.sampled_from([b"msisdn", b"x-up-calling-line-id", b"User-Identity-Forward-msisdn"]),
    st.binary(max_size=12).filter(lambda b: b";" not in b and b"=" not in b),
)
COOKIE_PAIR = st.tuples(COOKIE_NAMES, st.one_of(phone_value(), st.binary(max_size=12))).map(
    lambda pair: pair[0] + b"=" + pair[1].replace(b";", b"")
)


@SETTINGS
@given(st.lists(COOKIE_PAIR, min_size=1, max_size=6), header_lists())
def test_cookie_pairs_are_removed_and_the_rest_kept(pairs: list[bytes], others: list[Line]) -> None:
    cookie = b"; ".join(pairs)
    headers = [*others, (b"cookie", cookie)]

    scope = run(STRIP, STRIP_APP, headers)

    seen: list[Line] = scope["headers"]
    alone = list(run(STRIP, STRIP_APP, others)["headers"])
    assert [line for line in seen if line[0] != b"cookie"] == alone
    cookies = [value for name, value in seen if name == b"cookie"]
    assert len(cookies) <= 1
    kept = [p.strip() for p in cookies[0].split(b";")] if cookies else []
    assert is_subsequence(kept, [p.strip() for p in pairs])
    for pair in kept:
        name = pair.split(b"=", 1)[0].strip().lower()
        assert b"msisdn" not in name
    for pair in pairs:
        if pair.split(b"=", 1)[0] in (b"session", b"theme", b"gclid", b"uid", b"clid", b"_ga"):
            assert pair.strip() in kept
    cookie_findings = [f for f in scope["privacy_guard"] if f.header.startswith("cookie:")]
    assert len(cookie_findings) == len(pairs) - len(kept)
