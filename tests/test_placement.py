"""Where the guard sits decides who sees the headers: outermost, nothing before it does.

- Starlette/FastAPI middleware order: a recording middleware (a stand-in for a request logger,
  tracer or error reporter) placed inside the guard never sees a carrier header; placed outside,
  it does. `add_middleware` puts the middleware added *last* outermost.
- sentry-sdk's Starlette/FastAPI integration patches the framework itself, outside every
  `add_middleware` layer: with `app = PrivacyGuard(app)` an error event holds no carrier header;
  with `add_middleware(PrivacyGuard)` (or `Middleware(PrivacyGuard)`) the event carries them.
  Events are captured by a test transport; nothing is sent anywhere.
- `privacy-guard run` wraps outermost too: checked live, with sentry-sdk initialised inside the
  served module.
- Litestar runs its `middleware=[...]` per route, after routing: an `after_exception` hook sees
  the raw headers of a request that matched no route unless the guard wraps the Litestar app.
- Quart: with the guard in `app.asgi_app` (Quart's place for middleware) or around the app,
  `before_request` hooks and error handlers see no carrier header, on 404, 405 and 500 too; and
  sentry-sdk's QuartIntegration, though it patches `Quart.__call__` outside `asgi_app`, reads
  headers from Quart's request, so its events hold none either.
- OpenTelemetry's Starlette/FastAPI instrumentation (`instrument_app`) does the same as
  sentry-sdk's: with request headers captured on spans, `add_middleware(PrivacyGuard)` leaves the
  numbers in span attributes and `PrivacyGuard(app)` does not (spans kept in memory).
- Django: sentry-sdk's DjangoIntegration patches Django's ASGI handler, which
  `PrivacyGuard(get_asgi_application())` wraps, so its events hold no carrier header; without
  the guard they do (the control that shows the capture looks).
- The guard's own start-up check (`privacy_guard.not_outermost`): it warns, naming the layers,
  exactly where a layer in front of it sees the headers — every order above, the sentry-sdk and
  OpenTelemetry integrations, a route-level Litestar guard — and stays quiet everywhere else.

sentry-sdk patches Starlette, FastAPI and every middleware class it meets, for the life of the
process, so each sentry case runs in a forked child: the app is still called in-process
(httpx.ASGITransport), and the rest of the suite keeps unpatched classes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from prometheus_client import CollectorRegistry
from quart import Quart
from quart import request as quart_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from support import BIN, clean_env, free_port, serve

from guard import GuardConfig, PrivacyGuard

CARRIER = {"x-up-calling-line-id": "447700900123", "x-msisdn": "447700900456"}
ORDINARY = {"x-request-id": "req-7f3a", "origin": "https://shop.example"}
DIGITS = ("447700900123", "447700900456")


REGISTRIES: list[CollectorRegistry] = []  # every guard's, in the order they were built


def guard_options() -> dict[str, Any]:
    # Defaults (strip mode) regardless of the environment, counted in a registry of the test's own.
    registry = CollectorRegistry()
    REGISTRIES.append(registry)
    return {"config": GuardConfig(), "registry": registry}


def request(app: ASGIApp, path: str = "/", method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.request(method, path, headers={**CARRIER, **ORDINARY})

    return asyncio.run(go())


def carrier_in(names: set[str]) -> bool:
    return bool(names & CARRIER.keys())


# --- Starlette / FastAPI middleware order ---


class Recorder:
    """Records the header names of every http request: a request logger, tracer or reporter."""

    def __init__(self, app: ASGIApp, seen: list[set[str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({name.decode("latin-1") for name, _ in scope["headers"]})
        await self.app(scope, receive, send)


class Seen:
    """What the recording middleware and the endpoint saw, per request."""

    def __init__(self) -> None:
        self.middleware: list[set[str]] = []
        self.endpoint: list[set[str]] = []

    async def endpoint_route(self, request: Request) -> Response:
        self.endpoint.append(set(request.headers))
        return JSONResponse({})


def starlette(seen: Seen, middleware: list[Middleware] | None = None) -> Starlette:
    return Starlette(routes=[Route("/", seen.endpoint_route)], middleware=middleware)


def fastapi(seen: Seen) -> FastAPI:
    api = FastAPI()
    api.add_api_route("/", seen.endpoint_route)
    return api


def list_guard_first(seen: Seen) -> ASGIApp:
    return starlette(
        seen,
        [Middleware(PrivacyGuard, **guard_options()), Middleware(Recorder, seen=seen.middleware)],
    )


def list_recorder_first(seen: Seen) -> ASGIApp:
    return starlette(
        seen,
        [Middleware(Recorder, seen=seen.middleware), Middleware(PrivacyGuard, **guard_options())],
    )


def list_guard_before_cors_gzip(seen: Seen) -> ASGIApp:
    return starlette(
        seen,
        [
            Middleware(PrivacyGuard, **guard_options()),
            Middleware(CORSMiddleware, allow_origins=["https://shop.example"]),
            Middleware(GZipMiddleware),
            Middleware(Recorder, seen=seen.middleware),
        ],
    )


def add_recorder_then_guard(seen: Seen) -> ASGIApp:
    app = starlette(seen)
    app.add_middleware(Recorder, seen=seen.middleware)
    app.add_middleware(PrivacyGuard, **guard_options())  # added last: outermost
    return app


def add_guard_then_recorder(seen: Seen) -> ASGIApp:
    app = starlette(seen)
    app.add_middleware(PrivacyGuard, **guard_options())
    app.add_middleware(Recorder, seen=seen.middleware)  # added last: outermost, sees everything
    return app


def wrap_around_any_order(seen: Seen) -> ASGIApp:
    return PrivacyGuard(add_guard_then_recorder(seen), **guard_options())


def http_logger(seen: Seen, api: FastAPI) -> None:
    @api.middleware("http")
    async def log_headers(request: Request, call_next: Callable[..., Any]) -> Any:
        seen.middleware.append(set(request.headers.keys()))
        return await call_next(request)


def fastapi_add_guard_then_logger(seen: Seen) -> ASGIApp:
    api = fastapi(seen)
    api.add_middleware(PrivacyGuard, **guard_options())
    http_logger(seen, api)  # @app.middleware("http") is add_middleware: outermost
    return api


def fastapi_logger_then_add_guard(seen: Seen) -> ASGIApp:
    api = fastapi(seen)
    http_logger(seen, api)
    api.add_middleware(PrivacyGuard, **guard_options())
    return api


def fastapi_wrapped(seen: Seen) -> ASGIApp:
    api = fastapi(seen)
    api.add_middleware(Recorder, seen=seen.middleware)
    http_logger(seen, api)
    return PrivacyGuard(api, **guard_options())


ORDERS = [
    # build, does the recording middleware see carrier headers?
    # Starlette(middleware=[...]): the first entry is the outermost.
    pytest.param(list_guard_first, False, id="list: guard, recorder"),
    pytest.param(list_recorder_first, True, id="list: recorder, guard"),
    pytest.param(list_guard_before_cors_gzip, False, id="list: guard, CORS, GZip, recorder"),
    # add_middleware: the last one added is the outermost.
    pytest.param(add_recorder_then_guard, False, id="add recorder, add guard"),
    pytest.param(add_guard_then_recorder, True, id="add guard, add recorder"),
    pytest.param(wrap_around_any_order, False, id="PrivacyGuard(app) around any order"),
    # FastAPI's @app.middleware("http") (BaseHTTPMiddleware) follows add_middleware's rule.
    pytest.param(fastapi_add_guard_then_logger, True, id="fastapi: add guard, http logger"),
    pytest.param(fastapi_logger_then_add_guard, False, id="fastapi: http logger, add guard"),
    pytest.param(fastapi_wrapped, False, id="fastapi: PrivacyGuard(app)"),
]


@pytest.mark.parametrize(("build", "middleware_sees_carrier"), ORDERS)
def test_middleware_inside_the_guard_never_sees_carrier_headers(
    build: Callable[[Seen], ASGIApp], middleware_sees_carrier: bool
) -> None:
    seen = Seen()
    response = request(build(seen))
    assert response.status_code == 200
    assert seen.middleware, "the recording middleware did not run"
    assert all(ORDINARY.keys() <= names for names in seen.middleware)
    assert {carrier_in(names) for names in seen.middleware} == {middleware_sees_carrier}
    # Wherever the guard sits, the endpoint itself never sees them.
    assert len(seen.endpoint) == 1
    assert ORDINARY.keys() <= seen.endpoint[0]
    assert not carrier_in(seen.endpoint[0])


# --- sentry-sdk's Starlette / FastAPI integration ---


async def boom(request: Request) -> Response:
    raise RuntimeError("the app failed")


def django_app(placement: str) -> ASGIApp:
    """Django's ASGI handler with one failing view; settings made here, in the forked child."""
    import sys
    import types

    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.urls import path

    def failing(request: Any) -> Any:
        raise RuntimeError("the app failed")

    urls = types.ModuleType("placement_urls")
    urls.urlpatterns = [path("boom", failing)]  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-a-secret",
        ALLOWED_HOSTS=["test"],
        ROOT_URLCONF=urls.__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
    )
    app = get_asgi_application()
    return PrivacyGuard(app, **guard_options()) if placement == "wrap" else app


def sentry_app(framework: str, placement: str) -> ASGIApp:
    if framework == "quart":
        return quart_app(placement)
    if framework == "django":
        return django_app(placement)
    app: Starlette
    if framework == "fastapi":
        app = FastAPI()
        app.add_api_route("/boom", boom)
    else:
        middleware = [Middleware(PrivacyGuard, **guard_options())] if placement == "list" else []
        app = Starlette(routes=[Route("/boom", boom)], middleware=middleware)
    if placement == "add_middleware":
        app.add_middleware(PrivacyGuard, **guard_options())
    if placement == "wrap":
        return PrivacyGuard(app, **guard_options())
    return app


def sentry_events(framework: str, placement: str, send_default_pii: bool) -> dict[str, Any]:
    """In a forked child: init sentry-sdk, raise in the app, return what would have been sent."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.quart import QuartIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration
    from sentry_sdk.transport import Transport

    envelopes: list[Any] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            envelopes.append(envelope)

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # a closed port, and the transport never sends
        transport=Capture,
        default_integrations=False,
        integrations={
            "quart": [QuartIntegration()],
            "django": [DjangoIntegration()],
        }.get(framework, [StarletteIntegration(), FastApiIntegration()]),
        send_default_pii=send_default_pii,
        traces_sample_rate=1.0,  # transactions carry request data too
    )
    with structlog.testing.capture_logs() as logs:
        status = request(sentry_app(framework, placement), "/boom").status_code
    sentry_sdk.flush()
    events = [item.payload.json for e in envelopes for item in e.items if item.type == "event"]
    return {
        "warned": [e["outside"] for e in logs if e["event"] == "privacy_guard.not_outermost"],
        "status": status,
        "requests": [event.get("request", {}) for event in events],
        "serialized": b"".join(e.serialize() for e in envelopes).decode("utf-8", "replace"),
    }


SENTRY = [
    # framework, placement, send_default_pii, does the event carry the carrier headers?
    pytest.param("starlette", "wrap", True, False, id="starlette-wrap"),
    pytest.param("starlette", "list", True, True, id="starlette-middleware-list"),
    pytest.param("starlette", "add_middleware", True, True, id="starlette-add_middleware"),
    pytest.param("fastapi", "wrap", True, False, id="fastapi-wrap"),
    pytest.param("fastapi", "wrap", False, False, id="fastapi-wrap-no-pii"),
    pytest.param("fastapi", "add_middleware", True, True, id="fastapi-add_middleware"),
    pytest.param("fastapi", "add_middleware", False, True, id="fastapi-add_middleware-no-pii"),
    # sentry-sdk patches Quart.__call__, which runs before `asgi_app`, but the event's request
    # comes from Quart's own request object, which is built inside the guard.
    pytest.param("quart", "asgi_app", True, False, id="quart-asgi_app"),
    pytest.param("quart", "asgi_app", False, False, id="quart-asgi_app-no-pii"),
    pytest.param("quart", "wrap", True, False, id="quart-wrap"),
    # DjangoIntegration patches Django's ASGI handler, which the guard wraps: inside it.
    pytest.param("django", "wrap", True, False, id="django-wrap"),
    pytest.param("django", "wrap", False, False, id="django-wrap-no-pii"),
    pytest.param("django", "none", True, True, id="django-no-guard"),  # the spy looks
]


@pytest.mark.parametrize(("framework", "placement", "send_default_pii", "leaks"), SENTRY)
def test_sentry_event_holds_carrier_headers_only_when_guard_is_not_outermost(
    framework: str, placement: str, send_default_pii: bool, leaks: bool
) -> None:
    # A fresh interpreter per case: sentry-sdk patches frameworks process-wide. (Not fork: the
    # test process has threads, and a forked child can inherit a lock held by one of them.)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as child:
        sent = child.submit(sentry_events, framework, placement, send_default_pii).result(60)
    assert sent["status"] == 500
    assert len(sent["requests"]) == 1, "sentry captured no error event"
    # The guard names sentry-sdk's layer when it runs in front of it. Quart's does, though its
    # events hold no carrier header: it receives the raw request all the same.
    in_front = placement in ("list", "add_middleware", "asgi_app")
    assert [any(n.startswith("sentry_sdk.") for n in w) for w in sent["warned"]] == (
        [True] if in_front else []
    )
    headers = {name.lower(): value for name, value in sent["requests"][0]["headers"].items()}
    assert headers["x-request-id"] == ORDINARY["x-request-id"]
    if leaks:
        # The integration read the request before any guard ran (Starlette's: it wraps
        # Starlette.__call__, outside every add_middleware layer), and scrubs none of these names.
        assert {k: headers.get(k) for k in CARRIER} == CARRIER
    else:
        assert not carrier_in(set(headers))
        assert not [d for d in DIGITS if d in sent["serialized"]]


SENTRY_MODULE = """
import os
import uuid

import sentry_sdk
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.transport import Transport
from starlette.applications import Starlette
from starlette.routing import Route


class FileTransport(Transport):
    def capture_envelope(self, envelope):  # one file per envelope, renamed once complete
        path = os.path.join(os.environ["SENTRY_CAPTURE_DIR"], uuid.uuid4().hex)
        with open(path + ".tmp", "wb") as sink:
            sink.write(envelope.serialize())
        os.replace(path + ".tmp", path + ".envelope")


sentry_sdk.init(
    dsn="http://public@127.0.0.1:9/1",
    transport=FileTransport,
    default_integrations=False,
    integrations=[StarletteIntegration()],
    send_default_pii=True,
)


async def boom(request):
    raise RuntimeError("the app failed")


app = Starlette(routes=[Route("/boom", boom)])
"""


def envelopes(directory: Path) -> str:
    return "".join(p.read_text("utf-8", "replace") for p in sorted(directory.glob("*.envelope")))


@pytest.mark.slow
def test_sentry_event_holds_no_carrier_header_under_privacy_guard_run(tmp_path: Path) -> None:
    """An unmodified app that initialises sentry-sdk itself, served by `privacy-guard run`."""
    (tmp_path / "reported_app.py").write_text(SENTRY_MODULE)
    capture = tmp_path / "envelopes"
    capture.mkdir()
    port = free_port()
    argv = [str(BIN / "privacy-guard"), "run", "reported_app:app", "--port", str(port)]
    env = clean_env(SENTRY_CAPTURE_DIR=str(capture))
    with serve(argv, port=port, env=env, cwd=tmp_path, timeout=60) as server:
        with httpx.Client(base_url=server.url, timeout=20) as http:
            response = http.get("/boom", headers={**CARRIER, **ORDINARY})
        assert response.status_code == 500
        # The event is captured as the exception leaves the app, just after the 500 is sent.
        deadline = time.monotonic() + 20
        while '"x-request-id":"req-7f3a"' not in (sent := envelopes(capture)).replace(" ", ""):
            assert time.monotonic() < deadline, f"no error event captured: {sent}"
            time.sleep(0.05)
    assert not [d for d in DIGITS if d in sent], sent
    assert not [name for name in CARRIER if name in sent], sent
    assert not [d for d in DIGITS if d in server.output()], server.output()


# --- OpenTelemetry's Starlette / FastAPI instrumentation ---
# `instrument_app` puts OpenTelemetry's ASGI middleware outermost in the framework's own stack,
# like sentry-sdk. With request-header capture on, a header becomes a span attribute
# (`http.request.header.x_msisdn`), which goes to whatever backend the traces are exported to.


def otel_app(framework: str, placement: str, provider: Any) -> ASGIApp:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.starlette import StarletteInstrumentor

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app: Starlette
    if framework == "fastapi":
        app = FastAPI()
        app.add_api_route("/", ok)
    else:
        app = Starlette(routes=[Route("/", ok)])
    if placement == "add_middleware":
        app.add_middleware(PrivacyGuard, **guard_options())
    if isinstance(app, FastAPI):
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    else:
        StarletteInstrumentor.instrument_app(app, tracer_provider=provider)
    return PrivacyGuard(app, **guard_options()) if placement == "wrap" else app


OTEL = [
    # framework, placement, do the spans carry the carrier headers?
    pytest.param("fastapi", "wrap", False, id="fastapi-wrap"),
    pytest.param("fastapi", "add_middleware", True, id="fastapi-add_middleware"),
    pytest.param("fastapi", "none", True, id="fastapi-no-guard"),
    pytest.param("starlette", "wrap", False, id="starlette-wrap"),
    pytest.param("starlette", "add_middleware", True, id="starlette-add_middleware"),
]


@pytest.mark.parametrize(("framework", "placement", "leaks"), OTEL)
def test_otel_spans_hold_carrier_headers_only_when_guard_is_not_outermost(
    monkeypatch: pytest.MonkeyPatch, framework: str, placement: str, leaks: bool
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    # What an operator sets to record request headers on spans: here, every header.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert request(otel_app(framework, placement, provider)).status_code == 200
    attributes = [dict(span.attributes or {}) for span in exporter.get_finished_spans()]
    captured = {
        key.removeprefix("http.request.header.").replace("_", "-"): value
        for span in attributes
        for key, value in span.items()
        if key.startswith("http.request.header.")
    }
    assert captured.get("x-request-id") == (ORDINARY["x-request-id"],), "no header was captured"
    if leaks:
        assert {name: captured.get(name) for name in CARRIER} == {
            name: (value,) for name, value in CARRIER.items()
        }
    else:
        assert not carrier_in(set(captured))
        assert not [d for d in DIGITS if d in repr(attributes)]


# --- Litestar: route middleware runs after routing ---


@get("/")
async def litestar_ok() -> dict[str, str]:
    return {}


@get("/boom")
async def litestar_boom() -> None:
    raise RuntimeError("the app failed")


def litestar(placement: str, hook_saw: list[set[str]]) -> ASGIApp:
    async def after_exception(exc: Exception, scope: Any) -> None:  # what error reporters use
        hook_saw.append({name.decode("latin-1") for name, _ in scope["headers"]})

    route_level = [DefineMiddleware(PrivacyGuard, **guard_options())]
    app = Litestar(
        route_handlers=[litestar_ok, litestar_boom],
        after_exception=[after_exception],
        middleware=route_level if placement == "route middleware" else [],
    )
    return PrivacyGuard(app, **guard_options()) if placement == "wrap" else app


LITESTAR = [
    # placement, method, path, status, does the after_exception hook see carrier headers?
    pytest.param("route middleware", "GET", "/nowhere", 404, True, id="route-middleware-404"),
    pytest.param("route middleware", "POST", "/", 405, True, id="route-middleware-405"),
    pytest.param("route middleware", "GET", "/boom", 500, False, id="route-middleware-500"),
    pytest.param("wrap", "GET", "/nowhere", 404, False, id="wrap-404"),
    pytest.param("wrap", "POST", "/", 405, False, id="wrap-405"),
    pytest.param("wrap", "GET", "/boom", 500, False, id="wrap-500"),
]


@pytest.mark.parametrize(("placement", "method", "path", "status", "hook_sees_carrier"), LITESTAR)
def test_litestar_route_middleware_misses_unrouted_requests(
    placement: str, method: str, path: str, status: int, hook_sees_carrier: bool
) -> None:
    hook_saw: list[set[str]] = []
    response = request(litestar(placement, hook_saw), path, method)
    assert response.status_code == status
    assert len(hook_saw) >= 1, "the after_exception hook did not run"
    assert all(ORDINARY.keys() <= names for names in hook_saw)
    assert any(carrier_in(names) for names in hook_saw) is hook_sees_carrier


# --- Quart: the guard in `app.asgi_app` (or around the app) runs before routing ---


def quart_app(placement: str, hook_saw: list[set[str]] | None = None) -> ASGIApp:
    app = Quart("placement")

    @app.get("/")
    async def quart_ok() -> dict[str, str]:
        return {}

    @app.get("/boom")
    async def quart_boom() -> None:
        raise RuntimeError("the app failed")

    if hook_saw is not None:

        def saw() -> None:
            hook_saw.append({name.lower() for name, _ in quart_request.headers.items()})

        @app.before_request
        async def before() -> None:  # where request loggers and tracers hook in
            saw()

        @app.errorhandler(Exception)  # where error reporters do; Quart's 404 and 405 land here
        async def failed(error: Exception) -> tuple[str, int]:
            saw()
            return "failed", getattr(error, "code", 500)

    if placement == "asgi_app":
        app.asgi_app = PrivacyGuard(app.asgi_app, **guard_options())
    return PrivacyGuard(app, **guard_options()) if placement == "wrap" else app


QUART = [
    # placement, method, path, status
    pytest.param(placement, method, path, status, id=f"{placement}-{status}")
    for placement in ("none", "asgi_app", "wrap")
    for method, path, status in (
        ("GET", "/", 200),
        ("GET", "/nowhere", 404),
        ("POST", "/", 405),
        ("GET", "/boom", 500),
    )
]


@pytest.mark.parametrize(("placement", "method", "path", "status"), QUART)
def test_quart_hooks_and_error_handlers_never_see_carrier_headers(
    placement: str, method: str, path: str, status: int
) -> None:
    """With the guard in `asgi_app` (or around the app) routing errors are guarded too; without
    it, the same hooks see the headers (so the hooks are really looking)."""
    hook_saw: list[set[str]] = []
    response = request(quart_app(placement, hook_saw), path, method)
    assert response.status_code == status
    assert hook_saw, "neither the before_request hook nor the error handler ran"
    assert all(ORDINARY.keys() <= names for names in hook_saw)
    assert {carrier_in(names) for names in hook_saw} == {placement == "none"}


# --- the guard says when it is not outermost ---
# At start-up it logs `privacy_guard.not_outermost`, naming every ASGI layer in front of it
# (`module:function`). Checked the way a server runs an app: lifespan start-up, then a request.


def layers_gauges() -> list[float]:
    """`privacy_guard_layers_in_front` of every guard built since REGISTRIES was cleared (a
    registry made for a guard that was never built has no such series)."""
    values = [r.get_sample_value("privacy_guard_layers_in_front") for r in REGISTRIES]
    return [value for value in values if value is not None]


def served_warnings(app: ASGIApp) -> list[list[str]]:
    """Run the lifespan start-up (when the app has one) and one request; the warnings' layers."""

    async def lifespan() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup."):
                started.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        task = asyncio.ensure_future(app(scope, inbox.get, send))
        waiter = asyncio.ensure_future(started.wait())
        await asyncio.wait([task, waiter], timeout=20, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        inbox.put_nowait({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):  # apps without a lifespan raise: as servers allow
            await asyncio.wait_for(task, 20)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(lifespan())
        request(app)
    found = [event for event in logs if event["event"] == "privacy_guard.not_outermost"]
    assert len(found) <= 1, found  # once per guard: one guard here
    return [event["outside"] for event in found]


@pytest.mark.parametrize("asgi_shaped", [True, False])
def test_only_a_caller_shaped_like_an_asgi_app_counts_as_a_layer(asgi_shaped: bool) -> None:
    """A coroutine that holds a scope but takes no `receive` or `send` (a test helper, a server's
    own wrapper) is a caller, not a layer that sees the headers before the guard."""
    REGISTRIES.clear()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    guard = PrivacyGuard(app, **guard_options())

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def layer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await guard(scope, receive, send)

    async def helper(scope: dict[str, Any]) -> None:
        await guard(scope, receive, send)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    with structlog.testing.capture_logs() as logs:
        if asgi_shaped:
            asyncio.run(layer(scope, receive, send))
        else:
            asyncio.run(helper(scope))
    warned = [e["outside"] for e in logs if e["event"] == "privacy_guard.not_outermost"]
    if asgi_shaped:
        assert [len(outside) for outside in warned] == [1], warned
        assert warned[0][0].endswith(".layer")
        assert layers_gauges() == [1]
    else:
        assert warned == []
        assert layers_gauges() == [0]


# The recording layers of ORDERS, as the warning names them.
RECORDERS = {
    f"{__name__}:Recorder.__call__",
    "starlette.middleware.base:BaseHTTPMiddleware.__call__",  # FastAPI's @app.middleware("http")
}


@pytest.mark.parametrize(("build", "middleware_sees_carrier"), ORDERS)
def test_guard_warns_exactly_when_a_middleware_runs_before_it(
    build: Callable[[Seen], ASGIApp], middleware_sees_carrier: bool
) -> None:
    REGISTRIES.clear()
    warnings = served_warnings(build(Seen()))
    assert bool(warnings) is middleware_sees_carrier
    # The gauge says the same, per guard: how many layers that guard found in front of it.
    in_front = layers_gauges()
    assert in_front, "no guard was built"
    assert max(in_front) == sum(len(layers) for layers in warnings), in_front
    for layers in warnings:
        assert set(layers) & RECORDERS, layers


def otel_wrapped(placement: str) -> ASGIApp:
    from opentelemetry.sdk.trace import TracerProvider

    return otel_app("fastapi", placement, TracerProvider())


WARNS = [
    # build, the module of a layer the warning must name (None: no warning)
    pytest.param(
        lambda: otel_wrapped("add_middleware"),
        "opentelemetry.instrumentation.asgi",
        id="otel-add_middleware",
    ),
    pytest.param(lambda: otel_wrapped("wrap"), None, id="otel-wrap"),
    pytest.param(
        lambda: litestar("route middleware", []), "litestar.", id="litestar-route-middleware"
    ),
    pytest.param(lambda: litestar("wrap", []), None, id="litestar-wrap"),
    pytest.param(lambda: quart_app("asgi_app"), None, id="quart-asgi_app"),
    pytest.param(lambda: quart_app("wrap"), None, id="quart-wrap"),
]


@pytest.mark.parametrize(("build", "names"), WARNS)
def test_guard_warns_about_layers_in_front_of_it(
    build: Callable[[], ASGIApp], names: str | None
) -> None:
    REGISTRIES.clear()
    warnings = served_warnings(build())
    in_front = layers_gauges()
    if names is None:
        assert warnings == []
        assert in_front == [0.0]
    else:
        assert len(warnings) == 1
        assert any(layer.startswith(names) for layer in warnings[0]), warnings
        assert in_front == [len(warnings[0])]
