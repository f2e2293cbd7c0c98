"""Shared fixtures: a fresh Prometheus registry, and a way to call an ASGI app in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

import pytest
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

# A browser's request with nothing to find (the cookie has no marker word).
BROWSER: tuple[tuple[bytes, bytes], ...] = (
    (b"host", b"example.test"),
    (b"user-agent", b"Mozilla/5.0 (Linux; Android 10; K)"),
    (b"accept", b"text/html"),
    (b"cookie", b"session=3f9c2a7b; theme=dark"),
)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of the test's own, so that guards never touch prometheus-client's default."""
    return CollectorRegistry()


def http_scope(
    headers: Headers, *, path: str = "/", method: str = "GET", scope_type: str = "http"
) -> Scope:
    """A minimal ASGI http (or websocket) scope, as a server would build it."""
    scope: Scope = {
        "type": scope_type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http" if scope_type == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if scope_type == "http":
        scope["method"] = method
    return scope


class RecordingApp:
    """An ASGI app that records every scope and received message, and answers http with 204."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    @property
    def scope(self) -> Scope:
        assert len(self.scopes) == 1, f"the app was called {len(self.scopes)} times"
        return self.scopes[0]


def call(app: ASGIApp, scope: Scope, messages: Iterable[Message] = ()) -> list[Message]:
    """Run one ASGI call to completion; `messages` feed `receive`. Returns what was sent."""
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(scope, receive, send)

    asyncio.run(main())
    return sent


def status_of(sent: Sequence[Message]) -> int | None:
    """The status of the `http.response.start` among `sent`, if any."""
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return int(starts[0]["status"]) if starts else None
