"""The guard as an ASGI app, in-process: what the app sees, what the server keeps, what is counted.

Every number here is fictional: UK drama numbers (+44 7700 900xxx) where the header name decides,
Australian +61 491 570 0xx and NANP 555-01xx where the value rule has to recognise them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import structlog
from conftest import RecordingApp, call, http_scope, status_of
from prometheus_client import CollectorRegistry
from starlette.types import Message

from guard import Finding, GuardConfig, PrivacyGuard, __version__
from guard.catalog import CATALOG_VERSION, shown
from guard.events import EVENT_ALLOWED, EVENT_FOUND, EVENT_STARTED, EVENT_SUMMARY

UK_NUMBER = b"447700900123"  # invalid for phonenumbers: only a header name can flag it
AU_NUMBER = b"+61 491 570 006"  # valid mobile: the value rule flags it in any header
NANP_NUMBER = b"+1 201 555 0123"

BROWSER = [
    (b"host", b"shop.example"),
    (b"user-agent", b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0"),
    (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"cookie", b"session=abc123; theme=dark"),
    (b"x-forwarded-for", b"203.0.113.7, 198.51.100.2"),
    (b"x-request-id", b"1718032456123"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"content-length", b"447700900123"),
    (b"if-none-match", b'"33a64df551425fcc"'),
    (b"sec-fetch-mode", b"navigate"),
    (b"x-build", b"2024.06.10"),
    (b"x-timestamp", b"1718032456"),
    (b"cache-control", b"max-age=0"),
    (b"x-device-id", b"9b2d7c1e-5d1f-4a44-b1b0-6f1d2a0c9e11"),
]


def guard_for(registry: CollectorRegistry, **config: Any) -> tuple[PrivacyGuard, RecordingApp]:
    app = RecordingApp()
    return PrivacyGuard(app, config=GuardConfig(**config), registry=registry), app


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def total(registry: CollectorRegistry, name: str) -> float:
    """The sum of all samples of `name` (a counter's `_total` series)."""
    return sum(s.value for metric in registry.collect() for s in metric.samples if s.name == name)


def without(headers: list[tuple[bytes, bytes]], *indices: int) -> list[tuple[bytes, bytes]]:
    return [h for i, h in enumerate(headers) if i not in indices]


# --- the clean path and the strip path --------------------------------------------------------


def test_clean_request_passes_the_same_header_list(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    headers = list(BROWSER)
    scope = http_scope(headers)
    before = copy.deepcopy(scope)

    assert status_of(call(guard, scope)) == 204

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == ()
    assert scope == before, "the server's scope was changed"
    assert "privacy_guard" not in scope
    assert sample(registry, "privacy_guard_requests_total", type="http", result="clean") == 1
    assert total(registry, "privacy_guard_identifiers_total") == 0


def test_strip_builds_one_new_list_and_keeps_every_other_line(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    headers = [
        (b"accept", b"*/*"),
        (b"x-msisdn", UK_NUMBER),
        (b"x-dup", b"one"),
        (b"x-dup", b"one"),
        (b"X_UP_CALLING_LINE_ID", UK_NUMBER),
        (b"x-dup", b"two"),
        (b"x-acme-contact", AU_NUMBER),
        (b"accept", b"*/*"),
        (b"x-odd", b" padded\tvalue "),
    ]
    scope = http_scope(headers)
    before = copy.deepcopy(scope)

    call(guard, scope)

    seen = app.scope["headers"]
    assert seen is not headers
    assert seen == without(headers, 1, 4, 6)
    assert scope == before, "the server's scope or header list was changed"
    assert app.scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "removed", "catalog"),
        Finding("x-up-calling-line-id", "msisdn", "removed", "catalog"),
        Finding("x-acme-contact", "msisdn", "removed", "value"),
    )
    assert sample(registry, "privacy_guard_requests_total", type="http", result="flagged") == 1


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        # catalog, in every folding
        ((b"x-msisdn", UK_NUMBER), Finding("x-msisdn", "msisdn", "removed", "catalog")),
        ((b"X-MSISDN", UK_NUMBER), Finding("x-msisdn", "msisdn", "removed", "catalog")),
        ((b"x.msisdn", UK_NUMBER), Finding("x-msisdn", "msisdn", "removed", "catalog")),
        ((b" X_Msisdn ", UK_NUMBER), Finding("x-msisdn", "msisdn", "removed", "catalog")),
        (
            (b"x-uidh", b"T0RBd01EQXdNREF3"),
            Finding("x-uidh", "subscriber_token", "removed", "catalog"),
        ),
        ((b"x-imsi", b"234150999999999"), Finding("x-imsi", "imsi", "removed", "catalog")),
        # name rules; digits in a name are masked wherever it is shown
        ((b"x-acme-msisdn", UK_NUMBER), Finding("x-acme-msisdn", "msisdn", "removed", "name")),
        ((b"X_SOMETHING_IMSI", b"x"), Finding("x-something-imsi", "imsi", "removed", "name")),
        ((b"x-447700900123-msisdn", b"1"), Finding("x-#-msisdn", "msisdn", "removed", "name")),
        # value rules
        ((b"x-contact", AU_NUMBER), Finding("x-contact", "msisdn", "removed", "value")),
        ((b"x-contact", b"tel:+61491570006"), Finding("x-contact", "msisdn", "removed", "value")),
        ((b"x-contact", NANP_NUMBER), Finding("x-contact", "msisdn", "removed", "value")),
        ((b"x-contact", b"61491570006"), Finding("x-contact", "msisdn", "removed", "value")),
    ],
)
def test_flagged_line_is_removed_with_its_finding(
    registry: CollectorRegistry, line: tuple[bytes, bytes], finding: Finding
) -> None:
    guard, app = guard_for(registry)
    headers = [(b"host", b"a.example"), line, (b"accept", b"*/*")]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == [(b"host", b"a.example"), (b"accept", b"*/*")]
    assert app.scope["privacy_guard"] == (finding,)


def test_report_mode_removes_nothing(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry, mode="report")
    headers = [(b"x-msisdn", UK_NUMBER), (b"accept", b"*/*"), (b"x-contact", AU_NUMBER)]
    scope = http_scope(headers)
    before = copy.deepcopy(scope)

    call(guard, scope)

    assert app.scope["headers"] is headers
    assert scope == before
    assert app.scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "reported", "catalog"),
        Finding("x-contact", "msisdn", "reported", "value"),
    )
    labels = {"header": "x-msisdn", "kind": "msisdn", "action": "reported"}
    assert sample(registry, "privacy_guard_identifiers_total", **labels) == 1
    info = {"version": __version__, "mode": "report", "catalog_version": CATALOG_VERSION}
    assert sample(registry, "privacy_guard_info", **info) == 1


@pytest.mark.parametrize(
    ("scan_values", "kept", "findings"),
    [
        (
            "strip",
            [(b"accept", b"*/*")],
            (
                Finding("x-msisdn", "msisdn", "removed", "catalog"),
                Finding("x-contact", "msisdn", "removed", "value"),
            ),
        ),
        (
            "report",
            [(b"accept", b"*/*"), (b"x-contact", AU_NUMBER)],
            (
                Finding("x-msisdn", "msisdn", "removed", "catalog"),
                Finding("x-contact", "msisdn", "reported", "value"),
            ),
        ),
        (
            "off",
            [(b"accept", b"*/*"), (b"x-contact", AU_NUMBER)],
            (Finding("x-msisdn", "msisdn", "removed", "catalog"),),
        ),
    ],
)
def test_scan_values_setting(
    registry: CollectorRegistry,
    scan_values: str,
    kept: list[tuple[bytes, bytes]],
    findings: tuple[Finding, ...],
) -> None:
    guard, app = guard_for(registry, scan_values=scan_values)
    headers = [(b"accept", b"*/*"), (b"x-msisdn", UK_NUMBER), (b"x-contact", AU_NUMBER)]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == kept
    assert app.scope["privacy_guard"] == findings
    value_findings = [f for f in findings if f.rule == "value"]
    for f in value_findings:
        labels = {"header": "other", "kind": "msisdn", "action": f.action}
        assert sample(registry, "privacy_guard_identifiers_total", **labels) == 1
    assert total(registry, "privacy_guard_identifiers_total") == len(findings)


# --- extra and allow lists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "configured",
    [
        "x-acme-sub",
        "X_Acme_Sub",
        "x.acme.sub",
    ],
)
def test_extra_headers_are_removed_as_kind_other(
    registry: CollectorRegistry, configured: str
) -> None:
    guard, app = guard_for(registry, extra_headers=(configured,))
    headers = [(b"x-acme-sub", b"abc"), (b"accept", b"*/*"), (b"X.ACME_SUB", b"def")]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == [(b"accept", b"*/*")]
    assert app.scope["privacy_guard"] == (Finding("x-acme-sub", "other", "removed", "extra"),) * 2
    labels = {"header": "x-acme-sub", "kind": "other", "action": "removed"}
    assert sample(registry, "privacy_guard_identifiers_total", **labels) == 2


@pytest.mark.parametrize(
    "name",
    [
        "x-real-ip",  # never-scan
        "x-forwarded-for",  # low-risk catalog name
        "x-wap-profile",  # low-risk catalog name
    ],
)
def test_extra_headers_beat_never_scan_and_low_risk(registry: CollectorRegistry, name: str) -> None:
    guard, app = guard_for(registry, extra_headers=(name,))

    call(guard, http_scope([(name.encode(), b"203.0.113.9"), (b"accept", b"*/*")]))

    assert app.scope["headers"] == [(b"accept", b"*/*")]
    assert app.scope["privacy_guard"] == (Finding(name, "other", "removed", "extra"),)


def test_allow_headers_are_kept_and_never_scanned(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry, allow_headers=("X_MSISDN", "x-acme-contact"))
    headers = [
        (b"x-msisdn", UK_NUMBER),
        (b"X.Msisdn", UK_NUMBER),
        (b"x-acme-contact", AU_NUMBER),
        (b"accept", b"*/*"),
    ]

    call(guard, http_scope(headers))

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == ()
    assert sample(registry, "privacy_guard_requests_total", type="http", result="clean") == 1


@pytest.mark.parametrize(
    ("allowed", "warned"),
    [
        (("x-msisdn", "x-acme-contact"), ["x-msisdn"]),
        (("X_UP_CALLING_LINE_ID", "x-imsi"), ["x-imsi", "x-up-calling-line-id"]),
        (("x-acme-contact", "x-wap-profile"), None),  # not identifying: nothing to warn about
    ],
)
def test_allowing_an_identifying_header_logs_a_warning(
    registry: CollectorRegistry, allowed: tuple[str, ...], warned: list[str] | None
) -> None:
    guard, _ = guard_for(registry, allow_headers=allowed)

    with structlog.testing.capture_logs() as logs:
        call(guard, http_scope([(b"accept", b"*/*")]))

    warnings = [e for e in logs if e["event"] == EVENT_ALLOWED]
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"
        assert sorted(warnings[0]["headers"]) == warned


# --- nested guards -----------------------------------------------------------------------------

NESTED = [(b"x-msisdn", UK_NUMBER), (b"accept", b"*/*"), (b"x-contact", AU_NUMBER)]


@pytest.mark.parametrize(
    ("outer_mode", "inner_mode", "kept", "actions"),
    [
        ("strip", "strip", [(b"accept", b"*/*")], ["removed", "removed"]),
        ("strip", "report", [(b"accept", b"*/*")], ["removed", "removed"]),
        ("report", "report", NESTED, ["reported", "reported"]),
        # the inner guard removes what the outer one only reported, and says so
        ("report", "strip", [(b"accept", b"*/*")], ["removed", "removed"]),
    ],
)
def test_nested_guards_scan_and_count_once(
    outer_mode: str, inner_mode: str, kept: list[tuple[bytes, bytes]], actions: list[str]
) -> None:
    outer_registry, inner_registry = CollectorRegistry(), CollectorRegistry()
    app = RecordingApp()
    inner = PrivacyGuard(app, config=GuardConfig(mode=inner_mode), registry=inner_registry)
    outer = PrivacyGuard(inner, config=GuardConfig(mode=outer_mode), registry=outer_registry)
    headers = list(NESTED)
    scope = http_scope(headers)
    before = copy.deepcopy(scope)

    with structlog.testing.capture_logs() as logs:
        call(outer, scope)

    assert app.scope["headers"] == kept
    assert [f.action for f in app.scope["privacy_guard"]] == actions
    assert [f.header for f in app.scope["privacy_guard"]] == ["x-msisdn", "x-contact"]
    assert scope == before
    assert total(outer_registry, "privacy_guard_requests_total") == 1
    assert total(outer_registry, "privacy_guard_identifiers_total") == 2
    assert total(inner_registry, "privacy_guard_requests_total") == 0
    assert total(inner_registry, "privacy_guard_identifiers_total") == 0
    assert len([e for e in logs if e["event"] == EVENT_FOUND]) == 1


def test_inner_guard_does_not_scan_what_the_outer_found_clean() -> None:
    app = RecordingApp()
    inner = PrivacyGuard(
        app, config=GuardConfig(extra_headers=("x-acme-sub",)), registry=CollectorRegistry()
    )
    outer = PrivacyGuard(inner, config=GuardConfig(), registry=CollectorRegistry())
    headers = [(b"x-acme-sub", b"abc"), (b"accept", b"*/*")]

    call(outer, http_scope(headers))

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == ()


# What an outer guard in report mode finds by rules of its own, which a default inner guard in
# strip mode does not have: the inner one still removes every line of each header reported.
OUTER_ONLY = [
    pytest.param(
        {"extra_headers": ("x-account-no",)},
        [(b"x-account-no", b"AB-" + UK_NUMBER), (b"accept", b"*/*")],
        "x-account-no",
        id="outer extra name",
    ),
    pytest.param(
        {"default_region": "AU"},
        [(b"x-foo", b"0491 570 006"), (b"accept", b"*/*"), (b"x-foo", b"0491 570 156")],
        "x-foo",
        id="outer region, national numbers",
    ),
]


@pytest.mark.parametrize(("outer_config", "headers", "header"), OUTER_ONLY)
def test_an_inner_strip_guard_removes_what_only_the_outer_one_could_find(
    outer_config: dict[str, Any], headers: list[tuple[bytes, bytes]], header: str
) -> None:
    app = RecordingApp()
    inner = PrivacyGuard(app, config=GuardConfig(), registry=CollectorRegistry())
    outer = PrivacyGuard(
        inner, config=GuardConfig(mode="report", **outer_config), registry=CollectorRegistry()
    )

    call(outer, http_scope(list(headers)))

    assert app.scope["headers"] == [(b"accept", b"*/*")]
    assert {f.header for f in app.scope["privacy_guard"]} == {header}
    assert {f.action for f in app.scope["privacy_guard"]} == {"removed"}


@pytest.mark.parametrize(
    ("outer_config", "headers", "header"),
    [
        *OUTER_ONLY,
        pytest.param(
            {},
            [(b"cookie", b"session=abc; msisdn=" + UK_NUMBER), (b"accept", b"*/*")],
            "cookie:msisdn",
            id="cookie pair",
        ),
    ],
)
def test_an_inner_report_guard_removes_nothing_the_outer_one_reported(
    outer_config: dict[str, Any], headers: list[tuple[bytes, bytes]], header: str
) -> None:
    """Only an inner guard that strips acts on what an outer one reported: one in report mode
    keeps every line and every cookie pair, and the findings keep saying "reported"."""
    app = RecordingApp()
    inner = PrivacyGuard(app, config=GuardConfig(mode="report"), registry=CollectorRegistry())
    outer = PrivacyGuard(
        inner, config=GuardConfig(mode="report", **outer_config), registry=CollectorRegistry()
    )

    call(outer, http_scope(list(headers)))

    assert app.scope["headers"] == headers
    assert header in {f.header for f in app.scope["privacy_guard"]}
    assert {f.action for f in app.scope["privacy_guard"]} == {"reported"}


def test_an_inner_strip_guard_says_it_removed_the_cookie_pairs_the_outer_one_reported() -> None:
    """A cookie pair the outer guard reported and the inner one removes is marked removed: the
    finding must not claim the app still has what is gone from its Cookie line."""
    app = RecordingApp()
    inner = PrivacyGuard(app, config=GuardConfig(), registry=CollectorRegistry())
    outer = PrivacyGuard(inner, config=GuardConfig(mode="report"), registry=CollectorRegistry())
    headers = [(b"cookie", b"session=abc; msisdn=" + UK_NUMBER), (b"accept", b"*/*")]

    call(outer, http_scope(list(headers)))

    assert app.scope["headers"] == [(b"cookie", b"session=abc"), (b"accept", b"*/*")]
    assert [(f.header, f.action) for f in app.scope["privacy_guard"]] == [
        ("cookie:msisdn", "removed")
    ]


def test_an_inner_guard_keeps_what_it_allows_or_trusts() -> None:
    app = RecordingApp()
    inner = PrivacyGuard(
        app,
        config=GuardConfig(
            allow_headers=("x-up-calling-line-id",),
            trusted_sources=("192.0.2.0/24",),
            trusted_paths=("/partner",),
            trusted_headers=("x-msisdn",),
        ),
        registry=CollectorRegistry(),
    )
    outer = PrivacyGuard(inner, config=GuardConfig(mode="report"), registry=CollectorRegistry())
    headers = [
        (b"x-up-calling-line-id", UK_NUMBER),
        (b"x-msisdn", UK_NUMBER),
        (b"x-imsi", b"310150123456789"),
    ]
    scope = http_scope(list(headers), path="/partner/login")
    scope["client"] = ("192.0.2.7", 50000)

    call(outer, scope)

    assert app.scope["headers"] == headers[:2]
    actions = {f.header: f.action for f in app.scope["privacy_guard"]}
    assert actions == {
        "x-up-calling-line-id": "reported",
        "x-msisdn": "reported",
        "x-imsi": "removed",
    }


# --- scope types -------------------------------------------------------------------------------


def test_websocket_scope_is_filtered_like_http(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    headers = [(b"upgrade", b"websocket"), (b"x-msisdn", UK_NUMBER), (b"x-contact", AU_NUMBER)]
    scope = http_scope(headers, path="/ws", scope_type="websocket")
    before = copy.deepcopy(scope)

    call(guard, scope, [{"type": "websocket.connect"}])

    assert app.scope["headers"] == [(b"upgrade", b"websocket")]
    assert [f.header for f in app.scope["privacy_guard"]] == ["x-msisdn", "x-contact"]
    assert scope == before
    assert sample(registry, "privacy_guard_requests_total", type="websocket", result="flagged") == 1


def test_lifespan_messages_pass_through_unchanged(registry: CollectorRegistry) -> None:
    received: list[dict[str, Any]] = []
    scopes: list[dict[str, Any]] = []
    complete = {"type": "lifespan.startup.complete"}
    done = {"type": "lifespan.shutdown.complete"}

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        for reply in (complete, done):
            received.append(await receive())
            await send(reply)

    guard = PrivacyGuard(lifespan_app, config=GuardConfig(), registry=registry)
    startup = {"type": "lifespan.startup"}
    shutdown = {"type": "lifespan.shutdown"}
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    before = copy.deepcopy(scope)

    with structlog.testing.capture_logs() as logs:
        sent = call(guard, scope, [startup, shutdown])

    assert len(received) == 2
    assert received[0] is startup
    assert received[1] is shutdown
    assert received == [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    assert len(sent) == 2
    assert sent[0] is complete
    assert sent[1] is done
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert scopes[0] == before
    assert scope == before
    assert [e["event"] for e in logs].count(EVENT_STARTED) == 1
    assert total(registry, "privacy_guard_requests_total") == 0


def test_unknown_scope_type_passes_untouched(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    headers = [(b"x-msisdn", UK_NUMBER)]
    scope = {"type": "webtransport", "headers": headers}

    call(guard, scope)

    assert app.scope is scope
    assert scope == {"type": "webtransport", "headers": [(b"x-msisdn", UK_NUMBER)]}
    assert total(registry, "privacy_guard_requests_total") == 0


# --- metrics -----------------------------------------------------------------------------------


def test_requests_are_counted_clean_or_flagged(registry: CollectorRegistry) -> None:
    guard, _ = guard_for(registry)

    for _ in range(3):
        call(guard, http_scope([(b"accept", b"*/*")]))
    for _ in range(2):
        call(guard, http_scope([(b"x-msisdn", UK_NUMBER)]))
    call(guard, http_scope([(b"x-msisdn", UK_NUMBER)], scope_type="websocket"))

    assert sample(registry, "privacy_guard_requests_total", type="http", result="clean") == 3
    assert sample(registry, "privacy_guard_requests_total", type="http", result="flagged") == 2
    assert sample(registry, "privacy_guard_requests_total", type="websocket", result="flagged") == 1
    info = {"version": __version__, "mode": "strip", "catalog_version": CATALOG_VERSION}
    assert sample(registry, "privacy_guard_info", **info) == 1


@pytest.mark.parametrize(
    ("headers", "counted"),
    [
        # one count per flagged line, whatever it holds
        ([(b"x-msisdn", b"447700900123,447700900124")], {("x-msisdn", "msisdn"): 1}),
        ([(b"x-contact", b"+61 491 570 006, +61 491 570 007")], {("other", "msisdn"): 1}),
        (
            [(b"x-msisdn", UK_NUMBER), (b"x-msisdn", UK_NUMBER), (b"x-imsi", b"234150999999999")],
            {("x-msisdn", "msisdn"): 2, ("x-imsi", "imsi"): 1},
        ),
        # a client-chosen name is never a label value
        (
            [(b"x-447700900123-msisdn", b"1"), (b"x-a-imsi", b"2")],
            {("other", "msisdn"): 1, ("other", "imsi"): 1},
        ),
    ],
)
def test_identifiers_count_one_per_flagged_line(
    registry: CollectorRegistry,
    headers: list[tuple[bytes, bytes]],
    counted: dict[tuple[str, str], int],
) -> None:
    guard, _ = guard_for(registry)

    call(guard, http_scope(headers))

    for (header, kind), count in counted.items():
        labels = {"header": header, "kind": kind, "action": "removed"}
        assert sample(registry, "privacy_guard_identifiers_total", **labels) == count
    assert total(registry, "privacy_guard_identifiers_total") == sum(counted.values())
    assert sample(registry, "privacy_guard_requests_total", type="http", result="flagged") == 1


def test_many_guards_on_one_registry_all_count(registry: CollectorRegistry) -> None:
    guards = [guard_for(registry, mode=mode)[0] for mode in ["strip", "report"] * 5]

    for guard in guards:
        call(guard, http_scope([(b"x-msisdn", UK_NUMBER)]))

    assert sample(registry, "privacy_guard_requests_total", type="http", result="flagged") == 10
    for action in ("removed", "reported"):
        labels = {"header": "x-msisdn", "kind": "msisdn", "action": action}
        assert sample(registry, "privacy_guard_identifiers_total", **labels) == 5
    for mode in ("strip", "report"):
        info = {"version": __version__, "mode": mode, "catalog_version": CATALOG_VERSION}
        assert sample(registry, "privacy_guard_info", **info) == 1


def test_metrics_off_registers_nothing(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry, metrics=False)

    call(guard, http_scope([(b"x-msisdn", UK_NUMBER), (b"accept", b"*/*")]))

    assert list(registry.collect()) == []
    assert app.scope["headers"] == [(b"accept", b"*/*")]


# --- the metrics path --------------------------------------------------------------------------


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def header_of(sent: list[Message], name: bytes) -> bytes | None:
    start = next(m for m in sent if m["type"] == "http.response.start")
    values = [v for k, v in start["headers"] if k.lower() == name]
    return values[0] if values else None


def test_metrics_path_get_and_head(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry, metrics_path="/metrics")
    call(guard, http_scope([(b"x-msisdn", UK_NUMBER)]))

    got = call(guard, http_scope([(b"x-msisdn", UK_NUMBER)], path="/metrics"))
    head = call(guard, http_scope([], path="/metrics", method="HEAD"))

    assert status_of(got) == 200
    assert (header_of(got, b"content-type") or b"").startswith(b"text/plain")
    exposition = body_of(got).decode()
    flagged = re.search(
        r'^privacy_guard_requests_total\{result="flagged",type="http"\} (\S+)$', exposition, re.M
    )
    assert flagged is not None
    assert float(flagged.group(1)) == 1, "the scrape itself must not be counted"
    assert status_of(head) == 200
    assert body_of(head) == b""
    assert len(app.scopes) == 1, "a metrics request reached the app"
    assert total(registry, "privacy_guard_requests_total") == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_metrics_path_refuses_other_methods(registry: CollectorRegistry, method: str) -> None:
    guard, app = guard_for(registry, metrics_path="/metrics")

    sent = call(guard, http_scope([], path="/metrics", method=method))

    assert status_of(sent) == 405
    assert b"GET" in (header_of(sent, b"allow") or b"")
    assert app.scopes == []


def test_metrics_path_answers_500_when_the_exposition_fails(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scrape that cannot be built is a server error (500, counted under stage exposition),
    never a 200 that a scraper would store as an empty target, nor a request for the app."""
    guard, app = guard_for(registry, metrics_path="/metrics")

    def broken(registry: CollectorRegistry) -> tuple[bytes, str]:
        raise OSError("the multiprocess directory is gone")

    monkeypatch.setattr("guard.middleware.exposition", broken)

    sent = call(guard, http_scope([], path="/metrics"))

    assert status_of(sent) == 500
    assert body_of(sent) == b"metrics unavailable\n"
    assert app.scopes == []
    assert sample(registry, "privacy_guard_errors_total", stage="exposition") == 1


@pytest.mark.parametrize(
    ("path", "scope_type"),
    [
        ("/", "http"),
        ("/metrics/", "http"),
        ("/metricsx", "http"),
        ("/Metrics", "http"),
        ("/internal/metrics", "http"),
        ("/metrics", "websocket"),  # http only
    ],
)
def test_other_paths_pass_to_the_app(
    registry: CollectorRegistry, path: str, scope_type: str
) -> None:
    guard, app = guard_for(registry, metrics_path="/metrics")

    call(guard, http_scope([(b"x-msisdn", UK_NUMBER)], path=path, scope_type=scope_type))

    assert app.scope["path"] == path
    assert app.scope["headers"] == []
    assert sample(registry, "privacy_guard_requests_total", type=scope_type, result="flagged") == 1


# --- bad input ---------------------------------------------------------------------------------

BAD_LINES = [
    # (line, removed?)
    # upper case and other foldings from non-conforming servers
    ((b"X-MSISDN", UK_NUMBER), True),
    ((b"X_UP_CALLING_LINE_ID", UK_NUMBER), True),
    ((b"x.uidh", b"T0RBd01EQXdNREF3"), True),
    ((b"\tX-Msisdn ", UK_NUMBER), True),
    # any bytes in the value of a catalog header
    ((b"x-msisdn", b"\x00\xff\xfe447700900123\r\n"), True),
    ((b"x-msisdn", b""), True),
    ((b"x-imsi", b"\x80" * 300), True),
    # digits and odd bytes inside identifier-shaped names
    ((b"x-2-msisdn", b"1"), True),
    ((b"x-imsi-9", b"1"), True),
    ((b"X_ACME\xffMSISDN", b"1"), True),
    # kept: odd names and values that are not identifying
    ((b"x-\x00", b"\x00"), False),
    ((b"\xff\xfe\xfd", b"\x80\x81\x82"), False),
    ((b"", b""), False),
    ((b"x-\r\n-injected", b"a\r\nb"), False),
    ((b"ACCEPT", b"*/*"), False),
    ((b"x-build-2024", b"2024.06.10"), False),
    ((b"x-blob", b"a" * 65536), False),
    ((b"x-digits", b"1" * 65536), False),
    ((b"content-length", b"9" * 65536), False),
]


@pytest.mark.parametrize(("line", "removed"), BAD_LINES)
def test_bad_input_goes_through(
    registry: CollectorRegistry, line: tuple[bytes, bytes], removed: bool
) -> None:
    guard, app = guard_for(registry)
    headers = [(b"accept", b"*/*"), line, (b"accept", b"*/*"), line, (b"x-tail", b"end")]

    assert status_of(call(guard, http_scope(headers))) == 204

    if removed:
        assert app.scope["headers"] == without(headers, 1, 3)
        assert len(app.scope["privacy_guard"]) == 2
    else:
        assert app.scope["headers"] is headers
        assert app.scope["privacy_guard"] == ()
    assert total(registry, "privacy_guard_errors_total") == 0


def test_duplicate_names_are_each_removed(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    headers = [
        (b"x-msisdn", b"447700900123"),
        (b"accept", b"1"),
        (b"x-msisdn", b"447700900124"),
        (b"accept", b"1"),
        (b"X-MSISDN", b"447700900125"),
        (b"accept", b"2"),
    ]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == [(b"accept", b"1"), (b"accept", b"1"), (b"accept", b"2")]
    labels = {"header": "x-msisdn", "kind": "msisdn", "action": "removed"}
    assert sample(registry, "privacy_guard_identifiers_total", **labels) == 3


def test_thousand_headers_spend_the_budget_but_names_are_still_checked(
    registry: CollectorRegistry,
) -> None:
    guard, app = guard_for(registry)
    # Ten-digit values that no rule matches, but each costs a value check.
    headers = [(f"x-field-{i}".encode(), b"%010d" % i) for i in range(1000)]
    headers[500] = (b"x-msisdn", UK_NUMBER)
    headers[998] = (b"X_ACME_IMSI", b"1")
    headers[999] = (b"x-late-contact", AU_NUMBER)  # after the budget: not scanned

    call(guard, http_scope(headers))

    assert app.scope["headers"] == without(headers, 500, 998)
    assert [f.rule for f in app.scope["privacy_guard"]] == ["catalog", "name"]
    assert sample(registry, "privacy_guard_scan_budget_exhausted_total", type="http") == 1


def test_value_bytes_budget(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    long_candidate = b"1 " * 20000  # 40 KB of number-shaped bytes: looked at, never a number
    headers = [
        (b"x-a", long_candidate),
        (b"x-b", long_candidate),
        (b"x-contact", AU_NUMBER),  # past the byte budget: not scanned
        (b"x-up-calling-line-id", UK_NUMBER),
    ]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == headers[:3]
    assert sample(registry, "privacy_guard_scan_budget_exhausted_total", type="http") == 1


def test_budget_is_per_request(registry: CollectorRegistry) -> None:
    guard, app = guard_for(registry)
    spend = [(f"x-field-{i}".encode(), b"%010d" % i) for i in range(100)]

    call(guard, http_scope(spend))
    call(guard, http_scope([(b"x-contact", AU_NUMBER)]))

    assert app.scopes[1]["headers"] == []
    assert sample(registry, "privacy_guard_scan_budget_exhausted_total", type="http") == 1


def test_a_request_that_only_spent_the_budget_is_counted_clean(registry: CollectorRegistry) -> None:
    """Running out of value checks is counted as exhausted; with nothing found, the request is
    still a clean one, not a flagged one."""
    guard, app = guard_for(registry)
    spend = [(f"x-field-{i}".encode(), b"%010d" % i) for i in range(100)]

    call(guard, http_scope(spend))

    assert app.scope["headers"] == spend
    assert app.scope["privacy_guard"] == ()
    assert sample(registry, "privacy_guard_scan_budget_exhausted_total", type="http") == 1
    assert sample(registry, "privacy_guard_requests_total", type="http", result="clean") == 1
    assert sample(registry, "privacy_guard_requests_total", type="http", result="flagged") == 0


@pytest.mark.parametrize(("spent", "scanned"), [(31, True), (32, False)])
def test_the_budget_is_the_documented_32_checks(
    registry: CollectorRegistry, spent: int, scanned: bool
) -> None:
    """The README promises 32 value checks and 64 KiB per request: the 32nd check still runs."""
    assert (GuardConfig().scan_budget, GuardConfig().scan_bytes) == (32, 64 * 1024)
    guard, app = guard_for(registry)
    headers = [(f"x-field-{i}".encode(), b"%010d" % i) for i in range(spent)]  # one check each
    headers.append((b"x-contact", AU_NUMBER))

    call(guard, http_scope(headers))

    assert app.scope["headers"] == (headers[:-1] if scanned else headers)
    exhausted = sample(registry, "privacy_guard_scan_budget_exhausted_total", type="http")
    assert exhausted == (0 if scanned else 1)


# --- the guard's own log events ----------------------------------------------------------------

SECRETS = [b"447700900123", b"61491570006", b"491 570 006", b"2015550123", b"234150999999999"]
LEAKY = [
    (b"x-msisdn", b"447700900123"),
    (b"x-contact", b"+61 491 570 006"),
    (b"x-other", b"+1 201 555 0123"),
    (b"x-imsi", b"234150999999999"),
    (b"x-447700900123-msisdn", b"1"),
    (b"accept", b"*/*"),
]


@pytest.mark.parametrize("log_level", ["debug", "info"])
def test_log_events_never_contain_a_value(registry: CollectorRegistry, log_level: str) -> None:
    guard, _ = guard_for(registry, log_level=log_level, allow_headers=("x-imsi",))

    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            call(guard, http_scope(list(LEAKY), path="/users/447700900123/profile"))
        guard._events.flush()

    assert any(e["event"] == EVENT_FOUND for e in logs)
    text = repr(logs)
    for secret in SECRETS:
        digits = secret.replace(b" ", b"").decode()
        assert digits not in text.replace(" ", "")


def test_first_occurrence_at_info_then_a_summary(registry: CollectorRegistry) -> None:
    guard, _ = guard_for(registry)

    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            call(guard, http_scope([(b"x-msisdn", UK_NUMBER)]))
        call(guard, http_scope([(b"accept", b"*/*")]))
        call(guard, http_scope([(b"x-msisdn", UK_NUMBER), (b"x-uidh", b"T0RB")]))
        before_flush = list(logs)
        guard._events.flush()

    found = [e for e in before_flush if e["event"] == EVENT_FOUND]
    assert [e["log_level"] for e in found] == ["info", "info"]
    assert [f["header"] for f in found[0]["findings"]] == ["x-msisdn"]
    assert [f["header"] for f in found[1]["findings"]] == ["x-uidh"], "only what is new"
    assert not [e for e in before_flush if e["log_level"] == "debug"]
    summaries = [e for e in logs if e["event"] == EVENT_SUMMARY]
    assert len(summaries) == 1
    assert summaries[0]["log_level"] == "info"
    assert summaries[0]["requests"] == 6
    counts = {(i["header"], i["action"]): i["count"] for i in summaries[0]["identifiers"]}
    assert counts == {("x-msisdn", "removed"): 6, ("x-uidh", "removed"): 1}


def test_flush_with_nothing_found_logs_nothing(registry: CollectorRegistry) -> None:
    guard, _ = guard_for(registry)

    with structlog.testing.capture_logs() as logs:
        call(guard, http_scope([(b"accept", b"*/*")]))
        guard._events.flush()

    assert [e for e in logs if e["event"] in (EVENT_FOUND, EVENT_SUMMARY)] == []


def test_debug_level_logs_every_flagged_request(registry: CollectorRegistry) -> None:
    guard, _ = guard_for(registry, log_level="debug")

    with structlog.testing.capture_logs() as logs:
        for _ in range(4):
            call(guard, http_scope([(b"x-msisdn", UK_NUMBER)], path="/a", method="POST"))
        call(guard, http_scope([(b"accept", b"*/*")]))

    found = [e for e in logs if e["event"] == EVENT_FOUND]
    assert len(found) == 4
    assert {e["log_level"] for e in found} == {"debug"}
    assert {(e["type"], e["method"], e["path"]) for e in found} == {("http", "POST", "/a")}


@pytest.mark.parametrize(
    "inner_config",
    [
        {"mode": "strip"},
        {"mode": "strip", "allow_headers": ("x-msisdn",)},
        {"mode": "strip", "scan_values": "report"},
        {"mode": "strip", "scan_values": "off"},
        {"mode": "strip", "extra_headers": ("x-acme-sub",)},
    ],
)
def test_nested_findings_say_what_happened(inner_config: dict[str, Any]) -> None:
    app = RecordingApp()
    inner = PrivacyGuard(app, config=GuardConfig(**inner_config), registry=CollectorRegistry())
    outer = PrivacyGuard(inner, config=GuardConfig(mode="report"), registry=CollectorRegistry())
    headers = [*NESTED, (b"x-acme-sub", b"abc")]

    call(outer, http_scope(headers))

    seen = app.scope["headers"]
    findings = app.scope["privacy_guard"]
    assert [f.header for f in findings] == ["x-msisdn", "x-contact"]
    for finding in findings:
        present = any(shown(name.decode("latin-1")) == finding.header for name, _ in seen)
        assert present == (finding.action == "reported"), finding
    removed = sum(f.action == "removed" for f in findings)
    assert len(seen) == len(headers) - removed, "a line went without a finding"
