"""Trusted partner flows: named headers pass only from the carrier's gateways, on named paths.

A carrier-billing or age-verification partner receives x-msisdn from the carrier's own gateway.
Everyone else — other sources, other paths, requests without a peer address — still gets it
removed, so a client cannot spoof its way through. Addresses are documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32); numbers are fictional.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry
from support import clean_env, free_port, serve

from guard import ConfigError, Finding, GuardConfig, PrivacyGuard

NUMBER = b"447700900123"
TRUSTED = {
    "trusted_sources": ("192.0.2.0/24", "2001:db8:40::/48"),
    "trusted_paths": ("/billing/", "/age-check"),
    "trusted_headers": ("x-msisdn", "X_UP_CALLING_LINE_ID"),
}


def run(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    path: str,
    scope_type: str = "http",
    **config: Any,
) -> tuple[dict[str, Any], CollectorRegistry]:
    app = RecordingApp()
    registry = CollectorRegistry()
    guard = PrivacyGuard(app, config=GuardConfig(**(TRUSTED | config)), registry=registry)
    scope = http_scope(headers, path=path, scope_type=scope_type)
    scope["client"] = client
    call(guard, scope, [{"type": "websocket.connect"}] if scope_type == "websocket" else [])
    return app.scope, registry


def count(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("privacy_guard_identifiers_total", labels) or 0.0


# --- who gets through ------------------------------------------------------------------------

PASSES = [
    (("192.0.2.10", 40000), "/billing/charge"),
    (("192.0.2.255", 1), "/billing/"),
    (("192.0.2.10", 40000), "/age-check"),
    (("192.0.2.10", 40000), "/age-check/verify"),
    (("2001:db8:40::7", 40000), "/billing/charge"),
    (("2001:db8:40:ffff::1", 40000), "/age-check"),
    # a dual-stack server (bound to ::) reports IPv4 peers as IPv4-mapped IPv6 addresses
    (("::ffff:192.0.2.10", 40000), "/billing/charge"),
]
REMOVED = [
    # other sources
    (("198.51.100.7", 40000), "/billing/charge"),
    (("192.0.3.10", 40000), "/billing/charge"),
    (("2001:db8:41::7", 40000), "/billing/charge"),
    (("::ffff:198.51.100.7", 40000), "/billing/charge"),
    (("127.0.0.1", 40000), "/billing/charge"),
    # other paths
    (("192.0.2.10", 40000), "/"),
    (("192.0.2.10", 40000), "/billing"),  # the prefix is "/billing/"
    (("192.0.2.10", 40000), "/Billing/charge"),
    (("192.0.2.10", 40000), "/shop/billing/charge"),
    (("192.0.2.10", 40000), "/age-checker"),  # a prefix is a path segment, not a string
    (("192.0.2.10", 40000), "/age-check-admin/export"),
    (("192.0.2.10", 40000), "/billing/../admin/export"),  # dot segments leave the prefix
    (("192.0.2.10", 40000), "/billing/./../admin"),
    # no usable peer address (unix socket, or a server that does not report one)
    (None, "/billing/charge"),
    (("", 0), "/billing/charge"),
    (("not-an-address", 0), "/billing/charge"),
]


def ids(cases: list[tuple[tuple[str, int] | None, str]]) -> list[str]:
    return [f"{client[0] if client else None}{path}" for client, path in cases]


@pytest.mark.parametrize(("client", "path"), PASSES, ids=ids(PASSES))
def test_named_header_passes_for_a_trusted_source_on_a_trusted_path(
    client: tuple[str, int], path: str
) -> None:
    headers = [(b"accept", b"*/*"), (b"x-msisdn", NUMBER)]

    scope, registry = run(headers, client, path)

    assert scope["headers"] is headers
    assert scope["privacy_guard"] == (Finding("x-msisdn", "msisdn", "reported", "catalog"),)
    assert count(registry, header="x-msisdn", kind="msisdn", action="reported") == 1
    assert count(registry, header="x-msisdn", kind="msisdn", action="removed") == 0


@pytest.mark.parametrize(("client", "path"), REMOVED, ids=ids(REMOVED))
def test_named_header_is_removed_everywhere_else(client: tuple[str, int] | None, path: str) -> None:
    scope, registry = run([(b"accept", b"*/*"), (b"x-msisdn", NUMBER)], client, path)

    assert scope["headers"] == [(b"accept", b"*/*")]
    assert scope["privacy_guard"] == (Finding("x-msisdn", "msisdn", "removed", "catalog"),)
    assert count(registry, header="x-msisdn", kind="msisdn", action="removed") == 1


def test_other_identifying_headers_are_still_removed_on_trusted_requests() -> None:
    headers = [
        (b"x-msisdn", NUMBER),
        (b"x-imsi", b"001010123456789"),
        (b"x-acme-contact", b"+61 491 570 006"),
        (b"X-Up-Calling-Line-Id", b"447700900456"),
        (b"cookie", b"a=1; msisdn=" + NUMBER),
    ]

    scope, _ = run(headers, ("192.0.2.10", 1), "/billing/charge")

    assert scope["headers"] == [
        (b"x-msisdn", NUMBER),
        (b"X-Up-Calling-Line-Id", b"447700900456"),
        (b"cookie", b"a=1"),
    ]
    assert scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "reported", "catalog"),
        Finding("x-imsi", "imsi", "removed", "catalog"),
        Finding("x-acme-contact", "msisdn", "removed", "value"),
        Finding("x-up-calling-line-id", "msisdn", "reported", "catalog"),
        Finding("cookie:msisdn", "msisdn", "removed", "catalog"),
    )


def test_trusted_name_only_a_value_rule_would_catch_passes_too() -> None:
    # The operator named the header: whether the catalog knows it or only its value gives it
    # away, the partner flow must receive it.
    headers = [(b"x-partner-subscriber", b"+61 491 570 006")]
    config = TRUSTED | {"trusted_headers": ("x-partner-subscriber",)}

    scope, _ = run(headers, ("192.0.2.10", 1), "/billing/charge", **config)

    assert scope["headers"] == headers
    assert scope["privacy_guard"] == (
        Finding("x-partner-subscriber", "msisdn", "reported", "value"),
    )


def test_trusted_name_only_a_value_rule_catches_is_removed_for_others() -> None:
    headers = [(b"x-partner-subscriber", b"+61 491 570 006")]
    config = TRUSTED | {"trusted_headers": ("x-partner-subscriber",)}

    scope, _ = run(headers, ("198.51.100.7", 1), "/billing/charge", **config)

    assert scope["headers"] == []


def test_a_name_rule_header_can_be_trusted() -> None:
    headers = [(b"x-partner-msisdn", NUMBER)]
    config = TRUSTED | {"trusted_headers": ("x-partner-msisdn",)}

    passed, _ = run(headers, ("192.0.2.10", 1), "/billing/x", **config)
    removed, _ = run(headers, ("198.51.100.7", 1), "/billing/x", **config)

    assert passed["headers"] == headers
    assert removed["headers"] == []


def test_the_guards_own_header_cannot_be_trusted() -> None:
    headers = [(b"x-privacy-guard-pseudonym", b"v1.AAAAAAAAAAAAAAAAAAAAAA")]
    config = TRUSTED | {"trusted_headers": ("x-privacy-guard-pseudonym",)}

    scope, _ = run(headers, ("192.0.2.10", 1), "/billing/x", **config)

    assert scope["headers"] == []


def test_trusted_websocket() -> None:
    headers = [(b"x-msisdn", NUMBER)]

    passed, _ = run(headers, ("192.0.2.10", 1), "/billing/ws", scope_type="websocket")
    removed, _ = run(headers, ("198.51.100.7", 1), "/billing/ws", scope_type="websocket")

    assert passed["headers"] == headers
    assert removed["headers"] == []


def test_report_mode_reports_whoever_sends_it() -> None:
    headers = [(b"x-msisdn", NUMBER)]

    scope, _ = run(headers, ("198.51.100.7", 1), "/", mode="report")

    assert scope["headers"] is headers
    assert scope["privacy_guard"] == (Finding("x-msisdn", "msisdn", "reported", "catalog"),)


def test_trusted_header_is_not_turned_into_a_token() -> None:
    key = bytes(range(32)).hex()
    headers = [(b"x-msisdn", NUMBER), (b"x-imsi", b"001010123456789")]

    scope, _ = run(headers, ("192.0.2.10", 1), "/billing/x", pseudonym_key=key)

    names = [name for name, _ in scope["headers"]]
    assert names == [b"x-msisdn", b"x-privacy-guard-pseudonym"]
    assert scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "reported", "catalog"),
        Finding("x-imsi", "imsi", "replaced", "catalog"),
    )


# --- configuration ---------------------------------------------------------------------------

SOURCES = "PRIVACY_GUARD_TRUSTED_SOURCES"
PATHS = "PRIVACY_GUARD_TRUSTED_PATHS"
HEADERS = "PRIVACY_GUARD_TRUSTED_HEADERS"


def test_environment_sets_all_three() -> None:
    config = GuardConfig.from_env(
        {
            SOURCES: " 192.0.2.0/24 , 2001:db8::/32 ",
            PATHS: "/billing/, /age-check",
            HEADERS: "X_MSISDN, x-up-calling-line-id",
        }
    )

    assert [str(n) for n in config.trusted_sources] == ["192.0.2.0/24", "2001:db8::/32"]
    assert config.trusted_paths == ("/billing/", "/age-check")
    assert config.trusted_headers == ("x-msisdn", "x-up-calling-line-id")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({SOURCES: "192.0.2.0/24"}, PATHS),
        ({PATHS: "/billing/"}, SOURCES),
        ({HEADERS: "x-msisdn"}, SOURCES),
        ({SOURCES: "192.0.2.0/24", PATHS: "/billing/"}, HEADERS),
        ({SOURCES: "192.0.2.0/24", HEADERS: "x-msisdn"}, PATHS),
        ({PATHS: "/billing/", HEADERS: "x-msisdn"}, SOURCES),
        ({SOURCES: " , ", PATHS: "/billing/", HEADERS: "x-msisdn"}, SOURCES),
    ],
)
def test_trusted_variables_go_together(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ)

    assert caught.value.variable == variable


COMPLETE = {SOURCES: "192.0.2.0/24", PATHS: "/billing/", HEADERS: "x-msisdn"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (SOURCES, "192.0.2.0/33"),
        (SOURCES, "192.0.2.1/24"),  # host bits set: probably a typo for a narrower range
        (SOURCES, "gateway.example"),
        (SOURCES, "192.0.2.0/24, 2001:db8::/129"),
        (SOURCES, "192.0.2.0/24;198.51.100.0/24"),
        (PATHS, "billing/"),
        (PATHS, "/billing/?x=1"),
        (PATHS, "/billing/ charge"),
        (HEADERS, "x msisdn"),
        (HEADERS, "x-msisdn: 1"),
    ],
)
def test_invalid_trusted_values_are_errors(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(COMPLETE | {variable: value})

    assert caught.value.variable == variable


def test_none_of_them_is_fine() -> None:
    config = GuardConfig.from_env({})

    assert (config.trusted_sources, config.trusted_paths, config.trusted_headers) == ((), (), ())


# --- real server ------------------------------------------------------------------------------


def echo(url: str) -> list[list[str]]:
    headers = {"x-msisdn": NUMBER.decode(), "x-imsi": "001010123456789"}
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200
    return [h for h in response.json()["headers"] if h[0] in ("x-msisdn", "x-imsi")]


SERVERS = [
    pytest.param(
        lambda port: [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)],
        id="uvicorn-127.0.0.1",
    ),
    # gunicorn bound to [::] is dual-stack: it reports 127.0.0.1 as ::ffff:127.0.0.1.
    # (uvicorn's own --host :: is IPv6-only: asyncio sets IPV6_V6ONLY.)
    pytest.param(
        lambda port: [
            *(sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker"),
            *("-b", f"[::]:{port}", "guard.demo:app"),
        ],
        id="gunicorn-dual-stack",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", SERVERS)
def test_real_server_peer_address_decides(argv: Callable[[int], list[str]]) -> None:
    # guard.demo serves "/" only, so the trusted prefix is "/": the source decides.
    trusting = clean_env(
        PRIVACY_GUARD_TRUSTED_SOURCES="127.0.0.0/8",
        PRIVACY_GUARD_TRUSTED_PATHS="/",
        PRIVACY_GUARD_TRUSTED_HEADERS="x-msisdn",
    )
    port = free_port()
    with serve(argv(port), port=port, env=trusting) as server:
        assert echo(server.url + "/") == [["x-msisdn", NUMBER.decode()]]

    others = trusting | {"PRIVACY_GUARD_TRUSTED_SOURCES": "192.0.2.0/24"}
    port = free_port()
    with serve(argv(port), port=port, env=others) as server:
        assert echo(server.url + "/") == []
