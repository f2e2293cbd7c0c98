"""Scopes as the ASGI spec allows them, not only as uvicorn builds them; and a start-up that fails.

The spec types `headers` as any iterable of pairs and lets a server mount the app below a
`root_path`. Each shape must be inspected as a list is: nothing identifying through, nothing else
lost. Numbers are UK drama numbers (+44 7700 900xxx), flagged here by their header names.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest
import structlog
from conftest import RecordingApp, call, http_scope, status_of
from prometheus_client import CollectorRegistry

from guard import GuardConfig, PrivacyGuard
from guard.events import EVENT_CONFIG, EVENT_STARTED
from guard.metrics import start_listener

UK_NUMBER = b"447700900123"
ORDINARY = [
    (b"host", b"shop.example"),
    (b"accept", b"*/*"),
    (b"x-request-id", b"r-17"),
    (b"accept", b"text/html"),  # a duplicate: kept, in its place
]
CARRIER = (b"x-msisdn", UK_NUMBER)


class Pairs(Sequence[tuple[bytes, bytes]]):
    """A read-only sequence whose iterator gives no length hint (a server's own container)."""

    def __init__(self, lines: list[tuple[bytes, bytes]]) -> None:
        self._lines = lines

    def __getitem__(self, index: Any) -> Any:
        return self._lines[index]

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self._lines


SHAPES = {
    "list": list,
    "tuple": tuple,
    "UserList": collections.UserList,
    "Sequence": Pairs,
    "generator": lambda lines: (line for line in lines),
    "deque": collections.deque,
}


def guarded(registry: CollectorRegistry, **config: Any) -> tuple[PrivacyGuard, RecordingApp]:
    app = RecordingApp()
    return PrivacyGuard(app, config=GuardConfig(**config), registry=registry), app


def flagged(registry: CollectorRegistry) -> float:
    labels = {"type": "http", "result": "flagged"}
    return registry.get_sample_value("privacy_guard_requests_total", labels) or 0.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("at", [0, 2, 4], ids=["first", "middle", "last"])
def test_every_iterable_of_headers_is_inspected_alike(
    registry: CollectorRegistry, shape: str, at: int
) -> None:
    guard, app = guarded(registry)
    lines = [*ORDINARY[:at], CARRIER, *ORDINARY[at:]]

    call(guard, http_scope(SHAPES[shape](lines)))

    assert list(app.scope["headers"]) == ORDINARY
    assert [finding.header for finding in app.scope["privacy_guard"]] == ["x-msisdn"]
    assert flagged(registry) == 1


@pytest.mark.parametrize("shape", SHAPES)
def test_a_clean_request_keeps_every_line_whatever_the_iterable(
    registry: CollectorRegistry, shape: str
) -> None:
    guard, app = guarded(registry)

    call(guard, http_scope(SHAPES[shape](list(ORDINARY))))

    assert list(app.scope["headers"]) == ORDINARY, "a one-shot iterable was used up"
    assert app.scope["privacy_guard"] == ()


def test_an_iterable_that_breaks_is_refused(registry: CollectorRegistry) -> None:
    def broken() -> Iterable[tuple[bytes, bytes]]:
        yield ORDINARY[0]
        raise OSError("the server's container broke")

    guard, app = guarded(registry)

    assert status_of(call(guard, http_scope(broken()))) == 500
    assert app.scopes == []


def test_a_scope_without_a_path_is_still_inspected(registry: CollectorRegistry) -> None:
    guard, app = guarded(registry)
    scope = http_scope([CARRIER, *ORDINARY])
    del scope["path"]

    call(guard, scope)

    assert app.scope["headers"] == ORDINARY


# --- mounted below a root_path ------------------------------------------------------------------


def mounted(path: str, root_path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    scope = http_scope(headers, path=path)
    scope["root_path"] = root_path
    return scope


@pytest.mark.parametrize(
    ("path", "root_path"),
    [
        ("/api/metrics", "/api"),  # uvicorn ≥ 0.26: the prefix in both
        ("/metrics", "/api"),  # older servers: the prefix in root_path alone
        ("/metrics", ""),
    ],
)
def test_the_metrics_path_is_the_apps_route_path(
    registry: CollectorRegistry, path: str, root_path: str
) -> None:
    guard, app = guarded(registry, metrics_path="/metrics", check_path="/privacy-check")

    sent = call(guard, mounted(path, root_path, [CARRIER]))
    check = call(guard, mounted(path.replace("metrics", "privacy-check"), root_path, [CARRIER]))

    assert status_of(sent) == 200
    assert b"privacy_guard_requests_total" in b"".join(m.get("body", b"") for m in sent)
    assert status_of(check) == 200
    assert b"x-msisdn" in b"".join(m.get("body", b"") for m in check)
    assert UK_NUMBER not in b"".join(m.get("body", b"") for m in check)
    assert app.scopes == []


@pytest.mark.parametrize(
    ("path", "root_path"),
    [
        ("/apimetrics", "/api"),  # the prefix must end at a segment
        ("/api/api/metrics", "/api"),
        ("/other/metrics", "/api"),
        ("/app/metrics", "/api"),  # not below the root: only a path that starts with it is
        ("/api", "/api"),
    ],
)
def test_other_mounted_paths_reach_the_app_inspected(
    registry: CollectorRegistry, path: str, root_path: str
) -> None:
    guard, app = guarded(registry, metrics_path="/metrics")

    call(guard, mounted(path, root_path, [CARRIER, *ORDINARY]))

    assert app.scope["headers"] == ORDINARY


def test_trusted_paths_are_route_paths_too(registry: CollectorRegistry) -> None:
    guard, app = guarded(
        registry,
        trusted_sources="127.0.0.0/8",
        trusted_paths="/billing",
        trusted_headers="x-msisdn",
    )

    call(guard, mounted("/api/billing/start", "/api", [CARRIER]))
    call(guard, mounted("/api/shop", "/api", [CARRIER]))

    assert app.scopes[0]["headers"] == [CARRIER], "the partner flow below the mount is trusted"
    assert app.scopes[1]["headers"] == []


# --- a metrics listener that cannot start ------------------------------------------------------


# 192.0.2.1 (TEST-NET-1) is never an address of this host: bind fails with EADDRNOTAVAIL.
# A name under .invalid never resolves (RFC 6761).
UNBINDABLE = ["192.0.2.1", "no-such-host.invalid"]


def _failing_config(host: str = UNBINDABLE[0]) -> dict[str, Any]:
    return {"metrics_host": host, "metrics_port": 9}


@pytest.mark.parametrize("host", UNBINDABLE)
def test_a_listener_that_cannot_start_fails_the_lifespan(
    registry: CollectorRegistry, host: str
) -> None:
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append((await receive())["type"])

    guard = PrivacyGuard(app, config=GuardConfig(**_failing_config(host)), registry=registry)
    with structlog.testing.capture_logs() as logs:
        sent = call(
            guard, {"type": "lifespan", "asgi": {"version": "3.0"}}, [{"type": "lifespan.startup"}]
        )

    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    message = sent[0]["message"]
    assert f"PRIVACY_GUARD_METRICS_HOST={host}" in message
    assert "PRIVACY_GUARD_METRICS_PORT=9" in message
    assert started == [], "the app started although the server will not serve"
    assert [e["event"] for e in logs].count(EVENT_CONFIG) == 1
    assert status_of(call(guard, http_scope(list(ORDINARY)))) == 500


def test_without_lifespan_a_listener_that_cannot_start_refuses_every_request(
    registry: CollectorRegistry,
) -> None:
    guard, app = guarded(registry, **_failing_config())

    for _ in range(2):
        assert status_of(call(guard, http_scope([CARRIER, *ORDINARY]))) == 500
    assert app.scopes == []


def test_a_port_another_worker_holds_is_not_a_failure(registry: CollectorRegistry) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        guard, app = guarded(registry, metrics_host="127.0.0.1", metrics_port=port)

        with structlog.testing.capture_logs() as logs:
            call(guard, http_scope([CARRIER, *ORDINARY]))

    assert app.scope["headers"] == ORDINARY
    started = [e for e in logs if e["event"] == EVENT_STARTED]
    assert len(started) == 1
    assert started[0]["metrics_listener"] is None, "this worker serves no listener"


def test_start_listener_says_whether_this_process_serves(registry: CollectorRegistry) -> None:
    """True only for the process that bound the port; a port held elsewhere is False."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert start_listener("127.0.0.1", held.getsockname()[1], registry) is False
