"""Quart: wrap `app.asgi_app`, Quart's own place for ASGI middleware.

Run from examples/:   uvicorn quart_app:app
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'

`app.asgi_app = PrivacyGuard(app.asgi_app)` keeps `app` a Quart object (its CLI and test client
keep working) and puts the guard before everything Quart does with a request: routing, the
`before_request` hooks, error handlers and the `got_request_exception` signal all get the headers
the guard let through, on 404s and 405s too.

sentry-sdk's `QuartIntegration` patches `Quart.__call__`, which runs before `asgi_app`, but it
takes an event's headers from Quart's request object, built inside the guard: its error events
and transactions hold none of the removed headers (tests/test_placement.py checks both forms).
Anything else that wraps the Quart object from outside needs the guard around it instead:
`PrivacyGuard(app)`.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request, websocket

from guard import PrivacyGuard


def echo(scope: Any) -> dict[str, Any]:
    return {
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
    }


app = Quart(__name__)


@app.get("/")
async def headers() -> dict[str, Any]:
    return echo(request.scope)


@app.websocket("/ws")
async def headers_ws() -> None:
    await websocket.accept()
    await websocket.send_json(echo(websocket.scope))


# `app` stays the Quart object, and every request passes the guard first. (mypy wants the
# ignore: Quart types `asgi_app` as a method.)
app.asgi_app = PrivacyGuard(app.asgi_app)  # type: ignore[method-assign,assignment]
