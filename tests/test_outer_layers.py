"""`guard.placement.outer_layers` on hand-built call stacks: what counts as a layer in front."""

from __future__ import annotations

import asyncio
import sys
from types import FrameType
from typing import Any

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
