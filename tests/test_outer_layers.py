"""`guard.placement.outer_layers` on hand-built call stacks: what counts as a layer in front."""

from __future__ import annotations

import asyncio
import sys
from types import FrameType
from typing import Any

import pytest

from guard.placement import outer_layers

SCOPE = {"type": "http", "headers": [(b"x-msisdn", b"447700900123")]}


class Target:
    """Stands in for the guard: records the layers in front of it when called."""

    def __init__(self) -> None:
        self.found: list[str] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.found = outer_layers(sys._getframe(), CALL, self)


CALL = Target.__call__.__code__


class Layer:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


async def helper_closing_over_a_scope(app: Any) -> None:
    scope = dict(SCOPE)  # a caller, not a layer: scope is not its parameter

    async def main() -> None:
        await app(scope, None, None)

    await main()


def run(app: Any, target: Target, via_helper: bool = False) -> list[str] | None:
    asyncio.run(helper_closing_over_a_scope(app) if via_helper else app(SCOPE, None, None))
    return target.found


def test_nothing_in_front() -> None:
    target = Target()
    assert run(target, target) == []


def test_a_layer_in_front_is_named_once_by_module_and_function() -> None:
    target = Target()
    found = run(Layer(Layer(target)), target)
    assert found == [f"{__name__}:Layer.__call__"]  # the same function is named once
    assert "447700900123" not in repr(found)


def test_a_coroutine_that_only_closes_over_a_scope_is_not_a_layer() -> None:
    target = Target()
    assert run(target, target, via_helper=True) == []
    assert run(Layer(target), target, via_helper=True) == [f"{__name__}:Layer.__call__"]


def test_a_frame_whose_scope_is_not_a_scope_is_not_a_layer() -> None:
    target = Target()

    async def odd(scope: Any, receive: Any, send: Any) -> None:
        await target(SCOPE, receive, send)

    asyncio.run(odd("not a scope", None, None))
    assert target.found == []


def test_not_on_the_stack() -> None:
    frame: FrameType | None = sys._getframe()
    assert outer_layers(frame, CALL, Target()) == []


# --- whose frames stop the walk, are skipped, or end it -------------------------------------------

LAYER_SOURCE = """
class Layer:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)
"""


def layer_in(module: str) -> type:
    """A layer class whose frames belong to `module`: a server's, a framework's, a guard's."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(LAYER_SOURCE, namespace)
    return namespace["Layer"]


class Outer:
    """A layer further out than the module under test (a tracer, an error reporter)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


LAYER = f"{__name__}:Layer.__call__"
OUTER = f"{__name__}:Outer.__call__"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        # The server (any of its modules) and the test client: where the walk stops.
        ("uvicorn.middleware.proxy_headers", [LAYER]),
        ("hypercorn.app_wrappers", [LAYER]),
        ("starlette.testclient", [LAYER]),
        # A framework's own entry layers: skipped, and the walk goes on past them.
        ("starlette.applications", [LAYER, OUTER]),
        ("starlette.middleware.errors", [LAYER, OUTER]),
        ("fastapi._body_limit", [LAYER, OUTER]),
        # Another guard further out: what is between the two saw only what it let by.
        ("guard.middleware", []),
        # Anything else is a layer in front, named by its module.
        ("myapp.tracing", [LAYER, "myapp.tracing:Layer.__call__", OUTER]),
    ],
)
def test_what_a_frames_module_makes_of_it(module: str, expected: list[str]) -> None:
    target = Target()
    assert run(Outer(layer_in(module)(Layer(target))), target) == expected


class Reentrant:
    """A guard stand-in that calls its app once (which may lead back to it), recording each time."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.found: list[list[str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.found.append(outer_layers(sys._getframe(), REENTRANT, self))
        if len(self.found) == 1 and self.app is not None:
            await self.app(scope, receive, send)


REENTRANT = Reentrant.__call__.__code__


def test_the_walk_starts_at_the_outermost_call_of_this_guard() -> None:
    """The same guard reached again (mounted inside itself) is outermost all the same; another
    guard object of the same class further out is a layer in front of it."""
    guard = Reentrant()
    guard.app = Layer(guard)
    asyncio.run(guard(SCOPE, None, None))
    assert guard.found == [[], []]

    inner = Reentrant()
    asyncio.run(Reentrant(Layer(inner))(SCOPE, None, None))
    assert inner.found == [[LAYER, f"{__name__}:Reentrant.__call__"]]


def test_a_layer_is_known_by_its_parameters() -> None:
    """`scope` and either channel make a layer (a linter's `_receive` too); locals named so
    (a test helper or a server building the call) do not."""
    target = Target()

    class Quiet:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, _receive: Any, send: Any) -> None:
            await self.app(scope, _receive, send)

    async def helper() -> None:
        scope, receive, send = dict(SCOPE), None, None
        await Quiet(target)(scope, receive, send)

    asyncio.run(helper())
    assert target.found == [f"{__name__}:{Quiet.__qualname__}.__call__"]


@pytest.mark.parametrize(
    ("scope", "layer"),
    [
        ({"type": "lifespan"}, True),  # how a layer running the app in a task shows itself
        ({"type": "websocket"}, True),
        ({"type": "task", "headers": []}, False),  # a mapping, but no ASGI scope
    ],
)
def test_which_scopes_make_a_layer(scope: dict[str, Any], layer: bool) -> None:
    target = Target()
    asyncio.run(Layer(target)(scope, None, None))
    assert target.found == ([LAYER] if layer else [])
