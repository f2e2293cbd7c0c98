"""An ordinary Starlette app that knows nothing about privacy-guard.

Serve it guarded, without changing a line, from examples/zero_code/:

    privacy-guard run plain_app:app

`privacy-guard run` wraps the app as the outermost layer, takes its configuration from the
PRIVACY_GUARD_* variables and puts the redacting log filter on every logger.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def headers(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "headers": dict(request.headers),
            "privacy_guard": [f._asdict() for f in request.scope.get("privacy_guard", ())],
        }
    )


app = Starlette(routes=[Route("/", headers)])
