"""Starlette: the guard as the first entry of `middleware=[...]`.

Run from examples/:   uvicorn starlette_app:app
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'

The app echoes the request headers it received: the carrier header is not among them, and
`privacy_guard` lists what the guard removed (header name and kind, never the value).

`middleware=[...]` covers your middleware and routes. Tools that patch Starlette itself
(sentry-sdk's integration) run outside it: with those, wrap the app, `app = PrivacyGuard(app)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from guard import PrivacyGuard


def echo(scope: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
    }


async def headers(request: Request) -> JSONResponse:
    return JSONResponse(echo(request.scope))


async def headers_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(echo(websocket.scope))
    await websocket.close()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Open pools and clients here. The guard does its own start-up work (phone-number metadata)
    # on this same startup event, so the first request does not pay for it.
    yield


app = Starlette(
    routes=[Route("/", headers), WebSocketRoute("/ws", headers_ws)],
    # First in the list = outermost of your middleware: CORS, GZip, request loggers go after it.
    middleware=[Middleware(PrivacyGuard)],
    lifespan=lifespan,
)
