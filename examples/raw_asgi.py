"""A plain ASGI application, no framework: wrap it and serve the result.

Run from examples/:   uvicorn raw_asgi:app
Try:                  curl -s localhost:8000/ -H 'x-up-calling-line-id: 447700900123'
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from guard import PrivacyGuard

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def echo(scope: Scope) -> bytes:
    return json.dumps(
        {
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
        }
    ).encode()


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = echo(scope)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": echo(scope).decode()})
        await send({"type": "websocket.close", "code": 1000})


app = PrivacyGuard(echo_app)
