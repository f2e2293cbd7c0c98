"""Is the guard outermost? Every ASGI layer that runs before it receives the headers it removes.

The rule is "wrap the app" (`app = PrivacyGuard(app)`), and the ways to break it are easy to
miss: `add_middleware` puts the middleware added last outermost, sentry-sdk and OpenTelemetry
patch the framework outside its middleware list, Litestar runs `middleware=[...]` per route. So
the guard checks once, at start-up, on the call stack it is running in: the frames between it
and the server that belong to ASGI callables (`scope`, `receive`/`send` parameters) are layers in
front of it. Only their module and function names are reported; no frame's data is read beyond
whether its `scope` looks like a scope.

Not reported: the server and its event loop (the stack ends there), a framework's own entry
layers that every list-placed middleware has around it (`Starlette.__call__` and its error
middleware, `FastAPI.__call__` and its body limit and telemetry, `Quart.__call__`), which the
README covers. Nor is anything when another guard is further out: the layers between the two
see only what the outer one let by, and it checks its own place.

A layer that runs the rest of the app in a task of its own (`BaseHTTPMiddleware`, FastAPI's
`@app.middleware("http")`) leaves no frames on a request's stack, but passes the lifespan on in
its own: a server that runs the lifespan (uvicorn, hypercorn, granian by default) shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import CodeType, FrameType

__all__ = ["outer_layers"]

# Where the walk stops: the server, its event loop and the test transports that stand in for it.
_SERVERS = frozenset(
    {
        "anyio",
        "asgiref",
        "asyncio",
        "concurrent",
        "daphne",
        "granian",
        "gunicorn",
        "httpx",
        "hypercorn",
        "threading",
        "twisted",
        "uvicorn",
        "uvicorn_worker",
        "uvloop",
    }
)
_TEST_CLIENT = "starlette.testclient"
# What a framework always puts around its own middleware list (FastAPI's body-size limit and
# its telemetry, which reads trace context, not identifying headers). Modules, and the packages
# under them.
_ENTRIES = (
    "starlette.applications",
    "starlette.middleware.errors",
    "fastapi.applications",
    "fastapi._body_limit",
    "fastapi.telemetry",
    "quart.app",
)
_GUARD = "guard.middleware"
_SCOPE_TYPES = frozenset({"http", "websocket", "lifespan"})


def outer_layers(frame: FrameType | None, guard_call: CodeType, guard: object) -> list[str]:
    """The ASGI layers that called `guard`, innermost first, as `module:function`.

    `frame` is where the walk starts (the caller's frame); `guard_call` is the code object of the
    guard's own `__call__`, found on the stack by identity with `self` bound to `guard`.
    """
    # The guard's own `__call__` frame (the outermost, should it be on the stack more than once).
    start = None
    walk = frame
    while walk is not None:
        if walk.f_code is guard_call and walk.f_locals.get("self") is guard:
            start = walk
        walk = walk.f_back
    if start is None:
        return []
    layers: list[str] = []
    walk = start.f_back
    while walk is not None:
        module = str(walk.f_globals.get("__name__", "?"))
        if module.partition(".")[0] in _SERVERS or module == _TEST_CLIENT:
            break
        if module == _GUARD:
            return []  # another guard is further out: what is in between sees what it let by
        if not _entry(module) and _holds_scope(walk):
            name = f"{module}:{walk.f_code.co_qualname}"
            if name not in layers:
                layers.append(name)
        walk = walk.f_back
    return layers


def _entry(module: str) -> bool:
    return any(module == entry or module.startswith(entry + ".") for entry in _ENTRIES)


def _holds_scope(frame: FrameType) -> bool:
    """Is this frame an ASGI callable's: `scope` and `send` or `receive` among its parameters,
    and a scope in `scope`? (A coroutine that merely closes over a scope is a caller, not a
    layer: test helpers and servers' own wrappers.)"""
    code = frame.f_code
    parameters = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    if "scope" not in parameters or not {"send", "receive"} & set(parameters):
        return False
    scope = frame.f_locals.get("scope")
    return isinstance(scope, Mapping) and scope.get("type") in _SCOPE_TYPES
