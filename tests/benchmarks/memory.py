"""Memory and start-up suite: RSS of a fresh process at each stage, and the import time of guard.

The measurements run in child processes (`tests/benchmarks/memory_child.py`), so that
nothing the parent imported is counted.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from tests.support import ROOT, clean_env

from .memory_child import SAMPLES
from .report import Goals, machine, table

__all__ = ["run"]


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=clean_env(),
    )


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def _guard_subtree(stderr: str) -> dict[str, int]:
    """Cumulative µs of `guard` and of each top-level package imported while importing it."""
    subtree: dict[str, tuple[int, int]] = {}
    for match in _IMPORTTIME.finditer(stderr):
        name, level, total = match.group(4), len(match.group(3)) // 2, int(match.group(2))
        if level == 0:
            if name == "guard":
                found = {package: total for package, (_, total) in subtree.items()}
                found["guard"] = total
                return found
            subtree = {}
            continue
        package = name.split(".")[0]
        if package != "guard" and (package not in subtree or level < subtree[package][0]):
            subtree[package] = (level, total)
    raise RuntimeError("no `guard` line in -X importtime output")


def _import_times(runs: int) -> tuple[dict[str, float], float]:
    """Cumulative `-X importtime` µs of guard and what it imports; wall-clock delta, s."""
    cumulative: dict[str, list[float]] = {}
    for _ in range(runs):
        found = _guard_subtree(_python("-X", "importtime", "-c", "import guard").stderr)
        for name, total in found.items():
            cumulative.setdefault(name, []).append(total)
    walls: dict[str, list[float]] = {"pass": [], "import guard": []}
    for _ in range(runs):
        for code in walls:
            begun = time.perf_counter()
            _python("-c", code)
            walls[code].append(time.perf_counter() - begun)
    medians = {name: statistics.median(values) for name, values in cumulative.items()}
    wall = statistics.median(walls["import guard"]) - statistics.median(walls["pass"])
    return medians, wall


GROWTH_LIMIT_MIB = 1.0  # "no growth": allocator noise stays well below this


def run(requests: int, progress: Callable[[str], None] = print) -> tuple[str, Goals]:
    started = time.monotonic()
    progress(f"memory: {requests:,} requests in a child process")
    child = _python("-m", "tests.benchmarks.memory_child", str(requests))
    data = json.loads(child.stdout.strip().splitlines()[-1])
    stages: dict[str, int] = data["stages"]
    progress("memory: import times")
    imports, wall = _import_times(5)

    rows = []
    previous = None
    for stage, kib in stages.items():
        delta = "—" if previous is None else f"{(kib - previous) / 1024:+.1f}"
        rows.append([stage, f"{kib / 1024:.1f}", delta])
        previous = kib
    baseline = stages["starlette imported (the app's baseline)"]
    steady = list(stages.values())[-1] - baseline
    growth = data["growth"]
    step = requests // SAMPLES
    after_first_sample = (growth[-1] - growth[0]) / 1024
    goals = Goals()
    goals.check(
        f"RSS growth from request {step:,} to {requests:,}, MiB",
        f"{after_first_sample:+.2f}",
        after_first_sample,
        GROWTH_LIMIT_MIB,
    )
    heavy = sorted(imports, key=imports.__getitem__, reverse=True)[:8]
    import_rows = [[name, f"{imports[name] / 1000:.1f}"] for name in heavy]
    markdown = "\n".join(
        [
            "## Memory and start-up",
            "",
            f"Machine: {machine()}",
            "",
            "RSS (VmRSS) of one fresh process at each stage; requests call the guard around a "
            "no-op app with carrier headers, a number in an unknown header and a new unknown "
            f"name on each of 20,000 requests (beyond the name cache). Took "
            f"{time.monotonic() - started:.0f} s.",
            "",
            table(["stage", "RSS, MiB", "Δ, MiB"], rows),
            "",
            f"- Steady RSS cost of the guard (import, phonenumbers metadata, state after "
            f"{requests:,} requests) over the app's baseline: **{steady / 1024:.1f} MiB**.",
            f"- Growth from request {step:,} to {requests:,}: **{after_first_sample:+.2f} MiB** "
            f"(samples every {step:,}: "
            + ", ".join(f"{kib / 1024:.1f}" for kib in growth)
            + " MiB).",
            f"- First request (compiles phonenumbers metadata; with lifespan this happens at "
            f"start-up instead): {data['first_request_s'] * 1000:.0f} ms. "
            f"`import guard` in-process: {data['import_s'] * 1000:.0f} ms; as a process "
            f"(`python -c 'import guard'` minus `python -c pass`, median of 5): "
            f"{wall * 1000:.0f} ms.",
            "",
            "`python -X importtime -c 'import guard'`: cumulative ms of guard and of the packages "
            "imported first by it (the largest 8), median of 5 runs:",
            "",
            table(["module", "ms"], import_rows),
        ]
    )
    return markdown, goals
