"""The ASGI stacks under test, as zero-argument factories (also `uvicorn --factory` targets).

Every Starlette stack serves the same one-route app; middleware is added the way operators add
it (`middleware=[Middleware(...)]`), so each variant differs from `bare` by exactly one layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from guard import GuardConfig, PrivacyGuard
from guard.catalog import CATALOG

__all__ = [
    "BUSY",
    "FASTAPI",
    "METRICS_PAIRS",
    "RATIO_TARGETS",
    "STACKS",
    "BusyWait",
    "NoopASGI",
    "ReferenceGuard",
    "noop_app",
]


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


class NoopASGI:
    """The cheapest possible pure-ASGI layer: what any middleware costs before doing anything."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class ReferenceGuard:
    """A yardstick, not a guard: the crudest names-only filter (exact catalog names, nothing else
    — no name rules, values, cookies, metrics or logs), with the same one scope copy. What any
    header filter costs on this machine; the issue quotes one like it as its reference."""

    names = frozenset(name.encode("latin-1") for name in CATALOG)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" or scope["type"] == "websocket":
            names = self.names
            headers = scope["headers"]
            for name, _ in headers:
                if name in names:
                    headers = [line for line in headers if line[0] not in names]
                    break
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


class BusyWait:
    """A yardstick for the over-HTTP suite: a layer that spins for a fixed time per request.

    It touches no memory and calls nothing, so what it costs a server is its own time plus how
    the server reacts to being that much slower. Served beside the guard, it translates the
    guard's in-server time into what that time alone does to requests/s and server CPU here.
    """

    def __init__(self, app: ASGIApp, microseconds: float) -> None:
        self.app = app
        self.seconds = microseconds * 1e-6

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            until = time.perf_counter() + self.seconds
            while time.perf_counter() < until:
                pass
        await self.app(scope, receive, send)


class NoopBase(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


async def noop_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that does nothing: the guard around it is the guard's isolated cost."""


def _starlette(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/", _ok)], middleware=list(middleware))


def _guard(**config: str) -> Middleware:
    return Middleware(PrivacyGuard, config=GuardConfig(**config), registry=CollectorRegistry())


def bare() -> ASGIApp:
    return _starlette()


def noop() -> ASGIApp:
    return _starlette(Middleware(NoopASGI))


def guard() -> ASGIApp:
    return _starlette(_guard())


def reference() -> ASGIApp:
    return _starlette(Middleware(ReferenceGuard))


def busy2() -> ASGIApp:
    return _starlette(Middleware(BusyWait, microseconds=2))


def busy5() -> ASGIApp:
    return _starlette(Middleware(BusyWait, microseconds=5))


def guard_scan_off() -> ASGIApp:
    return _starlette(_guard(scan_values="off"))


def guard_report() -> ASGIApp:
    return _starlette(_guard(mode="report"))


def exporter() -> ASGIApp:
    from starlette_exporter import PrometheusMiddleware

    return _starlette(Middleware(PrometheusMiddleware))


def basehttp() -> ASGIApp:
    return _starlette(Middleware(NoopBase))


def _fastapi() -> ASGIApp:
    from fastapi import FastAPI

    app = FastAPI()
    app.add_api_route("/", _ok, methods=["GET"])
    return app


def fastapi_bare() -> ASGIApp:
    return _fastapi()


def fastapi_instrumentator() -> ASGIApp:
    from fastapi import FastAPI
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _fastapi()
    assert isinstance(app, FastAPI)
    Instrumentator().instrument(app)
    return app


def fastapi_guard() -> ASGIApp:
    app = _fastapi()
    app.add_middleware(PrivacyGuard, config=GuardConfig(), registry=CollectorRegistry())  # type: ignore[arg-type]
    return app


# name -> (label, factory, the stack it is compared with)
STACKS: dict[str, tuple[str, Callable[[], ASGIApp], str]] = {
    "bare": ("Starlette, bare", bare, "bare"),
    "noop": ("+ no-op pure-ASGI middleware", noop, "bare"),
    "reference": ("+ reference filter (catalog names only; a yardstick)", reference, "bare"),
    "guard": ("+ PrivacyGuard (default config)", guard, "bare"),
    "busy2": ("+ 2 µs busy-wait (a yardstick)", busy2, "bare"),
    "busy5": ("+ 5 µs busy-wait (a yardstick)", busy5, "bare"),
    "guard_scan_off": ("+ PrivacyGuard, value scan off", guard_scan_off, "bare"),
    "guard_report": ("+ PrivacyGuard, report mode", guard_report, "bare"),
    "exporter": ("+ starlette-exporter PrometheusMiddleware", exporter, "bare"),
    "basehttp": ("+ no-op BaseHTTPMiddleware", basehttp, "bare"),
    "fastapi_bare": ("FastAPI, bare", fastapi_bare, "fastapi_bare"),
    "fastapi_instrumentator": (
        "FastAPI + prometheus-fastapi-instrumentator",
        fastapi_instrumentator,
        "fastapi_bare",
    ),
    "fastapi_guard": ("FastAPI + PrivacyGuard", fastapi_guard, "fastapi_bare"),
}
FASTAPI = ("fastapi_bare", "fastapi_instrumentator", "fastapi_guard")
# The metrics middlewares operators run today, each beside the guard in the same framework, and how
# many times less overhead than theirs the guard must add, by request set (both suites check it).
METRICS_PAIRS = (
    ("exporter", "guard", "starlette-exporter"),
    ("fastapi_instrumentator", "fastapi_guard", "prometheus-fastapi-instrumentator"),
)
RATIO_TARGETS = {"clean": 20.0, "carrier": 10.0}
BUSY = ("busy2", "busy5")  # over HTTP only: in-process they would cost exactly what they say
