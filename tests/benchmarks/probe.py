"""In-server probe: the guard's own time per request inside a running uvicorn under load.

    Shim -> PrivacyGuard -> Marker -> Starlette app        (`guarded`)
    Shim ->                 Marker -> Starlette app        (`empty`)

The shim takes `perf_counter_ns()` as it calls the next layer, the marker as it is entered; the
guard does all its work before it calls the app, so `guarded` minus `empty` is the guard's time.
In a server every header bytes object is new and caches are cold: this is the figure that counts.
GET /__probe returns the samples' summary as JSON and clears them.
"""

from __future__ import annotations

import json
import statistics
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from urllib.request import urlopen

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from guard import GuardConfig, PrivacyGuard

from . import headersets, loadgen, stacks
from .report import Goals, Spread, machine, table

__all__ = ["Options", "empty", "guarded", "run"]

PROBE_PATH = "/__probe"
TARGETS = {"clean": 4.0, "carrier": 10.0}
SETS = ("clean", "carrier", "hidden")

_entered = 0
_samples = array("q")


class _Shim:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        global _entered
        if scope["type"] == "http" and scope["path"] == PROBE_PATH:
            await _summary(send)
            return
        _entered = time.perf_counter_ns()
        await self.app(scope, receive, send)


class _Marker:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _samples.append(time.perf_counter_ns() - _entered)
        await self.app(scope, receive, send)


async def _summary(send: Send) -> None:
    values = sorted(_samples)
    del _samples[:]
    body = json.dumps(
        {
            "count": len(values),
            "median_ns": statistics.median(values) if values else None,
            "mean_ns": statistics.fmean(values) if values else None,
            "p10_ns": values[len(values) // 10] if values else None,
            "p90_ns": values[len(values) * 9 // 10] if values else None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def empty() -> ASGIApp:
    return _Shim(_Marker(stacks.bare()))


def guarded() -> ASGIApp:
    guard = PrivacyGuard(_Marker(stacks.bare()), config=GuardConfig(), registry=CollectorRegistry())
    return _Shim(guard)


def _collect(url: str) -> dict[str, float]:
    with urlopen(url + PROBE_PATH, timeout=10) as response:
        data: dict[str, float] = json.load(response)
    return data


def run(options: Options, progress: Callable[[str], None] = print) -> tuple[str, Goals]:
    loadgen.wrk_path()
    started = time.monotonic()
    medians: dict[tuple[str, str], list[float]] = {}
    p90: dict[tuple[str, str], list[float]] = {}
    guard_us: dict[str, list[float]] = {}
    guard_mean_us: dict[str, list[float]] = {}
    flip = False
    for restart in range(options.restarts):
        progress(f"probe: start-up {restart + 1}/{options.restarts}")
        targets = {
            "empty": "tests.benchmarks.probe:empty",
            "guarded": "tests.benchmarks.probe:guarded",
        }
        with loadgen.servers(targets) as running:
            for server in running.values():
                for set_name in SETS:
                    loadgen.wrk(server, set_name, 1, options.connections)
                _collect(server.url)
            for _ in range(options.pairs):
                for set_name in SETS:
                    order = ["empty", "guarded"][:: -1 if flip else 1]
                    flip = not flip
                    found = {}
                    for name in order:
                        loadgen.wrk(running[name], set_name, options.duration, options.connections)
                        found[name] = _collect(running[name].url)
                        medians.setdefault((set_name, name), []).append(
                            found[name]["median_ns"] / 1000
                        )
                        p90.setdefault((set_name, name), []).append(found[name]["p90_ns"] / 1000)
                    guard_us.setdefault(set_name, []).append(
                        (found["guarded"]["median_ns"] - found["empty"]["median_ns"]) / 1000
                    )
                    guard_mean_us.setdefault(set_name, []).append(
                        (found["guarded"]["mean_ns"] - found["empty"]["mean_ns"]) / 1000
                    )
    return _report(options, medians, p90, guard_us, guard_mean_us, time.monotonic() - started)


@dataclass
class Options:
    restarts: int = 2
    pairs: int = 5
    duration: int = 2
    connections: int = 16


def _report(
    options: Options,
    medians: dict[tuple[str, str], list[float]],
    p90: dict[tuple[str, str], list[float]],
    guard_us: dict[str, list[float]],
    guard_mean_us: dict[str, list[float]],
    elapsed: float,
) -> tuple[str, Goals]:
    goals = Goals()
    rows = []
    for set_name in SETS:
        guard = Spread(guard_us[set_name])
        target = TARGETS.get(set_name)
        rows.append(
            [
                headersets.LABELS[set_name],
                Spread(medians[set_name, "empty"]).fmt(2),
                Spread(medians[set_name, "guarded"]).fmt(2),
                Spread(p90[set_name, "guarded"]).fmt(2),
                guard.fmt(2),
                Spread(guard_mean_us[set_name]).fmt(2),
                f"<= {target:g} µs" if target else "—",
                goals.check(
                    f"in-server guard time, {headersets.LABELS[set_name]}, µs",
                    guard.fmt(2),
                    guard.median,
                    target,
                )
                if target
                else "—",
            ]
        )
    markdown = "\n".join(
        [
            "## In-server probe (the guard's own time inside uvicorn under wrk load)",
            "",
            f"Machine: {machine()}",
            "",
            f"`perf_counter_ns` from the shim's call to the marker's entry, per request; "
            f"{options.restarts} start-ups × {options.pairs} rounds of "
            f"`wrk -t1 -c{options.connections} -d{options.duration}s` per request set, the two "
            f"servers alternating. Per run the median over its requests; the table shows the "
            f"median (min–max) over runs. Guard = guarded − empty, paired per round; its mean "
            f"takes the runs' means instead of their medians (the tail included). "
            f"Took {elapsed:.0f} s.",
            "",
            table(
                [
                    "request",
                    "empty shim, µs",
                    "shim + guard, µs",
                    "shim + guard p90, µs",
                    "guard's own time, µs",
                    "its mean, µs",
                    "target",
                    "",
                ],
                rows,
            ),
        ]
    )
    return markdown, goals
