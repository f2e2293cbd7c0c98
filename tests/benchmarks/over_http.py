"""Over-HTTP suite: every stack served by uvicorn at once, short wrk runs interleaved.

Identical servers on this kind of machine differ by ±20% from one minute to the next, so one long
run per stack proves nothing. All servers stay up together; each round runs every stack once per
header set, in a shuffled order, and the ratio to the bare app is taken within the round. The
servers are restarted a few times (new processes, new memory layout). Server CPU time per request
(from /proc) is steadier than requests/s: it is summed over all runs of a stack.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import headersets, loadgen, stacks
from .report import Goals, Spread, machine, table

__all__ = ["Options", "run"]

# `noop`, `reference` and the busy-waits are yardsticks: what one layer, the crudest names-only
# filter, and 2 or 5 µs of pure CPU in the server cost over HTTP on this machine in the same rounds.
_COMPARED = (
    "reference",
    "busy2",
    "busy5",
    "guard",
    "exporter",
    "fastapi_bare",
    "fastapi_instrumentator",
    "fastapi_guard",
)
PLAN: dict[str, tuple[str, ...]] = {
    "clean": ("bare", "noop", *_COMPARED),
    "carrier": ("bare", *_COMPARED),
    "hidden": ("bare", "guard"),
}
RATE_TARGETS = {("clean", "guard"): 0.95, ("carrier", "guard"): 0.90}
CPU_TARGET = ("clean", "guard", 4.0)


@dataclass
class Options:
    restarts: int = 3
    pairs: int = 6
    duration: int = 2
    connections: int = 16
    seed: int = 6


def run(options: Options, progress: Callable[[str], None] = print) -> tuple[str, Goals]:
    loadgen.wrk_path()
    started = time.monotonic()
    names = sorted({name for chosen in PLAN.values() for name in chosen})
    targets = {name: f"tests.benchmarks.stacks:{name}" for name in names}
    runs: dict[tuple[str, str], list[loadgen.Run]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    cpu_deltas: dict[tuple[str, str], list[float]] = {}
    shuffle = random.Random(options.seed).shuffle
    for restart in range(options.restarts):
        progress(f"http: start-up {restart + 1}/{options.restarts}, {len(names)} servers")
        with loadgen.servers(targets) as running:
            for set_name, chosen in PLAN.items():  # warm-up, not recorded
                for name in chosen:
                    loadgen.wrk(running[name], set_name, 1, options.connections)
            for pair in range(options.pairs):
                for set_name, chosen in PLAN.items():
                    order = list(chosen)
                    shuffle(order)
                    this_round = {
                        name: loadgen.wrk(
                            running[name], set_name, options.duration, options.connections
                        )
                        for name in order
                    }
                    for name, result in this_round.items():
                        runs.setdefault((set_name, name), []).append(result)
                        ref = this_round[stacks.STACKS[name][2]]
                        if ref is not result:
                            ratios.setdefault((set_name, name), []).append(result.rate / ref.rate)
                            cpu_deltas.setdefault((set_name, name), []).append(
                                result.cpu_us - ref.cpu_us
                            )
                progress(f"  pair {pair + 1}/{options.pairs}")
    return _report(options, runs, ratios, cpu_deltas, time.monotonic() - started)


def _cpu(results: list[loadgen.Run]) -> float:
    return sum(r.cpu for r in results) / sum(r.requests for r in results) * 1e6


def _report(
    options: Options,
    runs: dict[tuple[str, str], list[loadgen.Run]],
    ratios: dict[tuple[str, str], list[float]],
    cpu_deltas: dict[tuple[str, str], list[float]],
    elapsed: float,
) -> tuple[str, Goals]:
    goals = Goals()
    out = [
        "## Over HTTP (uvicorn + wrk on 127.0.0.1)",
        "",
        f"Machine: {machine()}",
        "",
        f"uvicorn, 1 worker, `--http httptools --loop uvloop --no-access-log`; "
        f"`wrk -t1 -c{options.connections} -d{options.duration}s`; every server up at once, "
        f"{options.restarts} start-ups × {options.pairs} interleaved rounds = "
        f"{options.restarts * options.pairs} pairs per row. Ratio: requests/s over the bare "
        f"app's in the same round, median (min–max). Server CPU: process utime+stime over "
        f"requests, all runs summed; Δ: paired per round, median (min–max). "
        f"Took {elapsed:.0f} s.",
        "",
        "The busy-wait rows spin for a fixed time inside the server and do nothing else: they "
        "show what that much in-server time alone does to requests/s and server CPU on this "
        "machine, to read the guard's rows against (its in-server time is in the probe suite).",
        "",
    ]
    rows = []
    for set_name, chosen in PLAN.items():
        for name in chosen:
            results = runs[set_name, name]
            ref_name = stacks.STACKS[name][2]
            rate = Spread([r.rate for r in results])
            cpu = _cpu(results)
            if ref_name == name:
                ratio_text, delta_text, paired, goal = "—", "—", "—", ""
            else:
                ratio = Spread(ratios[set_name, name])
                delta = Spread(cpu_deltas[set_name, name])
                ratio_text = ratio.fmt(3)
                added = _added(runs, set_name, name)
                delta_text = f"{added:+.1f}"
                paired = delta.fmt(1)
                checked = []
                target = RATE_TARGETS.get((set_name, name))
                if target is not None:
                    result = goals.check(
                        f"requests/s ÷ bare, {headersets.LABELS[set_name]}",
                        ratio.fmt(3),
                        ratio.median,
                        target,
                        at_least=True,
                    )
                    checked.append(f"ratio >= {target}: {result}")
                if (set_name, name) == CPU_TARGET[:2]:
                    result = goals.check(
                        f"server CPU over bare, {headersets.LABELS[set_name]}, µs/request",
                        delta_text,
                        added,
                        CPU_TARGET[2],
                    )
                    checked.append(f"CPU <= +{CPU_TARGET[2]:g} µs: {result}")
                goal = "; ".join(checked)
            rows.append(
                [
                    headersets.LABELS[set_name],
                    stacks.STACKS[name][0],
                    f"{rate.median:,.0f} ({rate.lo:,.0f}–{rate.hi:,.0f})",
                    ratio_text,
                    f"{cpu:.1f}",
                    delta_text,
                    paired,
                    goal,
                ]
            )
    out.append(
        table(
            [
                "request",
                "stack",
                "requests/s",
                "ratio to its bare app",
                "server CPU µs/request",
                "Δ CPU, all runs",
                "Δ CPU, paired",
                "target",
            ],
            rows,
        )
    )
    out += _ratios(runs, goals)
    return "\n".join(out), goals


def _ratios(runs: dict[tuple[str, str], list[loadgen.Run]], goals: Goals) -> list[str]:
    """The metrics middlewares' server CPU per request over the guard's, each over its own bare
    app (Δ CPU, all runs): the in-process suite's ratio target, measured inside a server.

    The guard's figure is the larger of its two (over Starlette, over FastAPI), as in-process; a
    figure at or below zero is noise, not a guard that costs nothing, and is not judged.
    """
    rows = []
    for set_name, target in stacks.RATIO_TARGETS.items():
        guards = [(set_name, guard) for _, guard, _ in stacks.METRICS_PAIRS]
        if not all(key in runs for key in guards):
            continue
        ours = max(_added(runs, *key) for key in guards)
        for other, _, label in stacks.METRICS_PAIRS:
            if (set_name, other) not in runs:
                continue
            theirs = _added(runs, set_name, other)
            what = f"{label} server CPU added ÷ guard's, {headersets.LABELS[set_name]}"
            if ours > 0:
                ratio = f"{theirs / ours:.0f}x"
                result = goals.check(what, ratio, theirs / ours, target, at_least=True)
            else:
                ratio, result = "—", "not judged: the guard's Δ is within noise"
            row = [headersets.LABELS[set_name], label, f"{theirs:+.1f}", f"{ours:+.1f}", ratio]
            rows.append([*row, f">= {target:g}x", result])
    if not rows:
        return []
    header = ["request", "compared with", "its Δ CPU, µs", "guard's Δ CPU (larger), µs", "ratio"]
    return [
        "",
        "### Overhead ratios by server CPU (how many times the guard's)",
        "",
        "Server CPU per request over the bare app's, all runs: starlette-exporter over Starlette, "
        "the instrumentator over FastAPI; the guard's is the larger of its figures over each.",
        "",
        table([*header, "target", ""], rows),
    ]


def _added(runs: dict[tuple[str, str], list[loadgen.Run]], set_name: str, name: str) -> float:
    """Server CPU µs per request a stack adds to its bare app, over all runs."""
    return _cpu(runs[set_name, name]) - _cpu(runs[set_name, stacks.STACKS[name][2]])
