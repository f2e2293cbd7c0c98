"""FastAPI: two ways to add the guard, and a route that tells the user what was removed.

Run from examples/:   uvicorn fastapi_app:app                    (outermost: the documented way)
                      uvicorn fastapi_app:app_add_middleware     (app.add_middleware)
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'
                      curl -s localhost:8000/privacy -H 'x-msisdn: 447700900123'

Both keep the headers from your routes, dependencies and `add_middleware` middleware. Only the
outermost form also keeps them from tools that patch FastAPI/Starlette itself, such as sentry-sdk's
integration, and from Starlette's own error middleware: prefer it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from guard import PrivacyGuard

router = APIRouter()


def echo(scope: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
    }


@router.get("/")
async def headers(request: Request) -> dict[str, Any]:
    return echo(request.scope)


@router.get("/privacy")
async def privacy_notice(request: Request) -> dict[str, Any]:
    # Names and kinds only: the guard never keeps the values it removed.
    removed = [f for f in request.scope.get("privacy_guard", ()) if f.action == "removed"]
    if not removed:
        return {"notice": "Your network sent no identifying headers with this request."}
    kinds = sorted({f.kind for f in removed})
    return {
        "notice": f"Your mobile network added {len(removed)} identifying header(s) "
        f"({', '.join(kinds)}) to this request. We removed them before our service read it; "
        "they were not stored or logged.",
        "removed": sorted(f.header for f in removed),
    }


def create_api() -> FastAPI:
    api = FastAPI(title="privacy-guard example")
    api.include_router(router)
    return api


# The documented way: the guard wraps the finished app, so it runs before anything else.
app = PrivacyGuard(create_api())

# Also works for your own middleware (the guard is the outermost one added last), but not for
# tools that patch FastAPI itself: they see the request before the guard does.
app_add_middleware = create_api()
app_add_middleware.add_middleware(PrivacyGuard)
