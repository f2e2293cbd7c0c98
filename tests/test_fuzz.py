"""Property tests: adversarial header lists never break the guard, never slip past it, and are
never altered beyond the flagged lines. The long run of the same properties: `python -m
tests.fuzz` (see tests/fuzz/__main__.py)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fuzz.harness import (
    CATALOG_NAMES,
    GUARD_NAMES,
    call,
    check_strip,
    configs,
    guard_for,
    header_lists,
    safe_shown,
)
from hypothesis import HealthCheck, example, given, settings

from guard import GuardConfig, PrivacyGuard
from guard.catalog import fold

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_GUARDS: dict[GuardConfig, PrivacyGuard] = {}
_NESTED: dict[GuardConfig, PrivacyGuard] = {}
_LONG_DIGITS = re.compile(r"[0-9]{6,}")


def _guard(config: GuardConfig) -> PrivacyGuard:
    # One guard per configuration, reused across examples, as a server reuses it across requests.
    if config not in _GUARDS:
        _GUARDS[config] = guard_for(config)
    return _GUARDS[config]


MSISDN_64K = (b"x-msisdn", b"447700900123," * 5042)
THOUSAND = [(b"x-up-calling-line-id", b"447700900123"), (b"accept", b"*/*")] * 500


@FUZZ
@given(config=configs(), headers=header_lists())
@example(config=GuardConfig(), headers=[MSISDN_64K, (b"x-other", b"+61491570006," * 5000)])
@example(config=GuardConfig(), headers=THOUSAND)
@example(config=GuardConfig(scan_values="off"), headers=[(b" X_MSISDN\t", b"447700900123")])
@example(config=GuardConfig(), headers=[(b"coOKiE", b"User-Identity-Forward-msisdn=;")])
def test_strip_mode_removes_every_identifying_line_and_alters_nothing_else(config, headers):
    outcome = call(_guard(config), headers)
    check_strip(config, headers, outcome)
    assert not _LONG_DIGITS.search(repr(outcome.events)), "a log event holds a digit run"


@FUZZ
@given(config=configs(), headers=header_lists())
def test_websocket_handshakes_get_the_same_treatment(config, headers):
    outcome = call(_guard(config), headers, scope_type="websocket")
    check_strip(config, headers, outcome)


@FUZZ
@given(headers=header_lists())
def test_report_mode_alters_nothing_but_forged_guard_headers(headers):
    outcome = call(_guard(GuardConfig(mode="report")), headers)
    assert outcome.scope is not None
    genuine = _genuine(headers)
    if genuine == headers:
        assert outcome.scope["headers"] is headers
    else:  # a client-sent x-privacy-guard-pseudonym is removed in every mode
        assert outcome.scope["headers"] == genuine
    forged = len(headers) - len(genuine)
    actions = [f.action for f in outcome.scope["privacy_guard"]]
    assert actions.count("removed") == forged
    assert actions.count("reported") == len(actions) - forged
    assert all(safe_shown(f.header) for f in outcome.scope["privacy_guard"])


@FUZZ
@given(config=configs(), headers=header_lists())
@example(config=GuardConfig(), headers=[(b"cookie", b"msisdn=447700900123; theme=dark")])
def test_a_reporting_outer_guard_and_a_stripping_inner_guard_strip_as_one_guard(config, headers):
    # DESIGN: an inner guard in strip mode removes what a reporting outer guard reported. The
    # pseudonym lines a lone guard adds are left out of the comparison.
    alone = call(_guard(config), headers)
    nested = call(_nested(config), headers)
    assert nested.scope is not None
    assert alone.scope is not None
    assert _genuine(nested.scope["headers"]) == _genuine(alone.scope["headers"])


def _genuine(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [h for h in headers if fold(h[0].decode("latin-1")) not in GUARD_NAMES]


def _nested(config: GuardConfig) -> PrivacyGuard:
    """A reporting guard around a stripping one, both with `config`'s lists."""
    reporting = dataclasses.replace(config, mode="report")
    if reporting not in _NESTED:  # not _GUARDS: a lone reporting guard may be cached there
        outer = _NESTED[reporting] = guard_for(reporting)
        outer.app = guard_for(config)
    return _NESTED[reporting]


# Pins the folding the oracle relies on, independently of `fold` itself.
@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        (b"X_MSISDN", "x-msisdn"),
        (b"x.msisdn", "x-msisdn"),
        (b" x-msisdn\t", "x-msisdn"),
        (b"X-Up-Calling_Line.ID", "x-up-calling-line-id"),
        (b"X_VF_ACR", "x-vf-acr"),
        (b"_RAPMIN", "-rapmin"),
    ],
)
def test_every_spelling_of_a_catalog_name_is_removed(raw, folded):
    assert fold(raw.decode("latin-1")) == folded
    assert folded in CATALOG_NAMES
    outcome = call(_guard(GuardConfig()), [(raw, b"447700900123"), (b"accept", b"*/*")])
    assert outcome.scope is not None
    assert outcome.scope["headers"] == [(b"accept", b"*/*")]
