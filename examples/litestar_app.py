"""Litestar: wrap the Litestar app object itself; its `middleware=[...]` runs per route.

Run from examples/:   uvicorn litestar_app:app
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'

Litestar builds a separate middleware stack for each route handler, *after* routing. A guard in
`Litestar(middleware=[PrivacyGuard])` therefore sees only requests that matched a route: a 404 or
405 — and the `after_exception` hooks error reporters use for it — gets the raw headers; it never
sees the lifespan; and its `/metrics` path is never reached. `route_level_app` below shows that
form for comparison; serve `app`.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, WebSocket, get, websocket

from guard import PrivacyGuard


def echo(scope: Any) -> dict[str, Any]:
    return {
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
    }


@get("/")
async def headers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return echo(request.scope)


@websocket("/ws")
async def headers_ws(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_json(echo(socket.scope))
    await socket.close()


def create_app(**options: Any) -> Litestar:
    return Litestar(route_handlers=[headers, headers_ws], **options)


# The way to use: every request, routed or not, passes the guard before Litestar sees it.
app = PrivacyGuard(create_app())

# For comparison only: the guard runs per route, after routing (see the module docstring).
route_level_app = create_app(middleware=[PrivacyGuard])
