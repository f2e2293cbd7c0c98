"""The app `privacy-guard demo` serves: it echoes the headers it received, behind the guard."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .middleware import PrivacyGuard


def _echo(scope_headers: list[tuple[bytes, bytes]], findings: object) -> dict[str, object]:
    return {
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope_headers],
        "privacy_guard": [f._asdict() for f in findings or ()],  # type: ignore[attr-defined]
    }


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(_echo(request.scope["headers"], request.scope.get("privacy_guard")))


async def echo_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        _echo(websocket.scope["headers"], websocket.scope.get("privacy_guard"))
    )
    await websocket.close()


app = PrivacyGuard(Starlette(routes=[Route("/", echo), WebSocketRoute("/ws", echo_ws)]))
