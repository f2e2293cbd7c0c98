"""Shared helpers: summary statistics, the machine description and Markdown tables."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from guard import speedups

__all__ = [
    "RESULTS",
    "Goals",
    "Spread",
    "machine",
    "spread",
    "table",
    "verdict",
    "write_results",
]

RESULTS = Path(__file__).resolve().parent / "results"
SUITES = ("inprocess", "http", "probe", "memory")


class Spread:
    """Median with min and max of repeated measurements."""

    __slots__ = ("hi", "lo", "median", "n")

    def __init__(self, values: Sequence[float]) -> None:
        self.n = len(values)
        self.median = statistics.median(values)
        self.lo = min(values)
        self.hi = max(values)

    def fmt(self, digits: int = 1, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit} ({self.lo:.{digits}f}–{self.hi:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    return Spread(values)


def verdict(value: float, limit: float, *, at_least: bool = False) -> str:
    ok = value >= limit if at_least else value <= limit
    return "met" if ok else "**missed**"


class Goals(list[list[str]]):
    """The targets a suite checked: rows of the summary table at the top of latest.md."""

    def check(
        self, what: str, measured: str, value: float, limit: float, *, at_least: bool = False
    ) -> str:
        result = verdict(value, limit, at_least=at_least)
        self.append([what, measured, f"{'>=' if at_least else '<='} {limit:g}", result])
        return result


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def code_version() -> str:
    """The commit, a digest of guard's sources (the working tree may differ from the commit), and
    which clean path ran: the C one (`guard._speedups`) or its Python definition."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted([*(root / "guard").rglob("*.py"), *(root / "guard").rglob("*.c")]):
        digest.update(path.read_bytes())
    clean_path = "C" if speedups.compiled is not None else "Python (speedups off or not built)"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"commit {commit}, guard/*.py and *.c sha256 {digest.hexdigest()[:12]}, "
        f"clean path in {clean_path}"
    )


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · nproc {len(os.sched_getaffinity(0))}"
        f" · {_cpu_model()} · Python {platform.python_version()} ({sys.implementation.name})"
        f" · {platform.system()} {platform.release()}"
        f" · load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        f" · {code_version()}"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(suite: str, markdown: str, goals: Goals) -> None:
    """Store one suite's section and targets; rebuild latest.md from every suite's latest."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{suite}.md").write_text(markdown + "\n", encoding="utf-8")
    (RESULTS / f"{suite}.goals.json").write_text(json.dumps(goals, indent=1), encoding="utf-8")
    rows = []
    sections = []
    for name in SUITES:
        path = RESULTS / f"{name}.md"
        if not path.exists():
            continue
        sections += ["", path.read_text(encoding="utf-8").rstrip()]
        goals_path = RESULTS / f"{name}.goals.json"
        if goals_path.exists():
            rows += [[name, *row] for row in json.loads(goals_path.read_text(encoding="utf-8"))]
    parts = [
        "# privacy-guard benchmark results",
        "",
        "Reproduce: `python -m tests.benchmarks` from the repository root (see "
        "`tests/benchmarks/run.py --help`). Each section states when and on what machine it ran.",
        "",
        "## Targets",
        "",
        table(["suite", "target", "measured", "limit", ""], rows),
        *sections,
    ]
    (RESULTS / "latest.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
