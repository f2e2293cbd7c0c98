"""Run the benchmark suites and write tests/benchmarks/results/latest.md.

    python -m tests.benchmarks                      # every suite (~12 min on 2 cores)
    python -m tests.benchmarks --suite inprocess    # one suite: inprocess, http, probe, memory
    python -m tests.benchmarks --quick              # short runs, to check the suite itself

Run from the repository root with the project's virtualenv. The http and probe suites need
`wrk` (Debian/Ubuntu: `apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python tests/benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.benchmarks"

from tests.benchmarks import inprocess, memory, over_http, probe, report

SUITES = ("inprocess", "http", "probe", "memory")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="short runs: check the suite works")
    group = parser.add_argument_group("in-process")
    group.add_argument("--rounds", type=int, help="interleaved rounds (default 40; quick 6)")
    group.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: the thread's CPU time, robust on a shared machine (default); wall: perf_counter",
    )
    group.add_argument("--batch-ms", type=float, default=4.0, help="target ms per batch")
    group = parser.add_argument_group("http and probe")
    group.add_argument("--restarts", type=int, help="server start-ups (http 3, probe 2; quick 1)")
    group.add_argument(
        "--pairs", type=int, help="interleaved rounds per start-up (http 6, probe 5; quick 2)"
    )
    group.add_argument("--duration", type=int, help="seconds per wrk run (default 2; quick 1)")
    group.add_argument("--connections", type=int, default=16, help="wrk connections")
    group = parser.add_argument_group("memory")
    group.add_argument("--requests", type=int, help="requests for the growth check (200000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = SUITES if args.suite == "all" else (args.suite,)
    for suite in chosen:
        if suite == "inprocess":
            options = inprocess.Options(
                rounds=args.rounds or (6 if args.quick else 40),
                batch_ms=args.batch_ms,
                clock=args.clock,
                cold_rounds=3 if args.quick else 15,
                cold_requests=50 if args.quick else 200,
            )
            markdown, goals = inprocess.run(options)
        elif suite == "http":
            markdown, goals = over_http.run(
                over_http.Options(
                    restarts=args.restarts or (1 if args.quick else 3),
                    pairs=args.pairs or (2 if args.quick else 6),
                    duration=args.duration or (1 if args.quick else 2),
                    connections=args.connections,
                )
            )
        elif suite == "probe":
            markdown, goals = probe.run(
                probe.Options(
                    restarts=args.restarts or (1 if args.quick else 2),
                    pairs=args.pairs or (2 if args.quick else 5),
                    duration=args.duration or (1 if args.quick else 2),
                    connections=args.connections,
                )
            )
        else:
            markdown, goals = memory.run(args.requests or (20_000 if args.quick else 200_000))
        print(markdown, flush=True)
        report.write_results(suite, markdown, goals)
    print(f"\nwritten: {report.RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
