"""The long fuzz run, outside the test suite. From the repository root:

    python -m tests.fuzz --examples 200000            # hypothesis, the properties of test_fuzz.py
    python -m tests.fuzz --atheris --runs 2000000     # coverage-guided (libFuzzer), if installed

Both drive the guard in-process with hostile header lists and check every invariant of
`harness.check_strip` (nothing identifying survives strip mode, nothing else is altered, no value
in a finding or a log event) on every execution, and print how many executions ran. A failure
stops the run with the failing input (hypothesis shrinks it first; atheris writes a crash-* file
that `python -m tests.fuzz --atheris crash-…` replays). `pip install atheris` for the second form;
libFuzzer options (`-max_total_time=600`, a corpus directory) pass through.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


class _Run:
    """Runs one input through a guard per configuration and keeps count."""

    def __init__(self) -> None:
        from . import harness

        self.harness = harness
        self.executions = 0
        self.guards: dict[Any, Any] = {}
        self.started = time.monotonic()

    def one(self, config: Any, headers: list[tuple[bytes, bytes]], scope: str) -> None:
        guard = self.guards.get(config)
        if guard is None:
            guard = self.guards[config] = self.harness.guard_for(config)
        outcome = self.harness.call(guard, headers, scope_type=scope)
        self.harness.check_strip(config, headers, outcome)
        self.executions += 1
        if self.executions % 10_000 == 0:
            self.report()

    def report(self) -> None:
        elapsed = time.monotonic() - self.started
        rate = self.executions / elapsed if elapsed else 0.0
        print(f"{self.executions} executions in {elapsed:.0f} s ({rate:.0f}/s)", flush=True)


def run_hypothesis(examples: int, batch: int = 5_000) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    run = _Run()
    harness = run.harness

    def properties(config: Any, headers: list[tuple[bytes, bytes]], scope: str) -> None:
        run.one(config, headers, scope)

    strategies = (harness.configs(), harness.header_lists(), st.sampled_from(["http", "websocket"]))
    # In batches: hypothesis keeps every choice it made for the life of one run, which for
    # hundreds of thousands of examples (some with 64 KiB values) would grow to gigabytes.
    while run.executions < examples:
        before = run.executions
        batch_settings = settings(
            max_examples=min(batch, examples - before),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        batch_settings(given(*strategies)(properties))()
        if run.executions == before:
            break  # hypothesis found nothing new to try
    run.report()
    return run.executions


def run_atheris(argv: list[str]) -> None:
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris (or use --examples)")
    with atheris.instrument_imports(include=["guard"]):
        import guard  # noqa: F401  (instrumented for coverage feedback)
    run = _Run()
    from guard import GuardConfig

    configs = (
        GuardConfig(),
        GuardConfig(scan_values="off"),
        GuardConfig(scan_values="report", default_region="AU"),
        GuardConfig(allow_headers=("x-msisdn", "via"), extra_headers=("x-tenant", "x-ref")),
        GuardConfig(pseudonym_key=run.harness.PSEUDONYM_KEY, default_region="US"),
    )
    harness = run.harness
    pools = (
        harness.CATALOG_NAMES,
        harness.LOW_RISK_NAMES,
        list(harness.CONFIG_NAMES),
        list(harness.GUARD_NAMES),
        ["cookie", "host", "user-agent", "x-forwarded-for", "x-acme-msisdn", "x-op-imsi"],
    )
    values = (*harness.FICTIONAL_NUMBERS, *harness.VALID_NUMBERS, b"tel:+61491570006")

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        config = configs[fdp.ConsumeIntInRange(0, len(configs) - 1)]
        scope = "websocket" if fdp.ConsumeBool() else "http"
        headers = []
        for _ in range(fdp.ConsumeIntInRange(0, 48)):
            if fdp.ConsumeBool():
                pool = pools[fdp.ConsumeIntInRange(0, len(pools) - 1)]
                name = _spell(pool[fdp.ConsumeIntInRange(0, len(pool) - 1)], fdp.ConsumeInt(4))
            else:
                name = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
            if fdp.ConsumeBool():
                value = values[fdp.ConsumeIntInRange(0, len(values) - 1)]
                value = value * fdp.ConsumeIntInRange(1, 3) + fdp.ConsumeBytes(4)
            else:
                value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
            headers.append((name, value))
        run.one(config, headers, scope)

    # libFuzzer ends the process itself; its last line ("Done N runs in T second(s)") is the count.
    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()


def _spell(name: str, bits: int) -> bytes:
    """`name` with case and separators chosen by `bits` (folding must undo all of it)."""
    out = []
    for position, char in enumerate(name):
        bit = (bits >> (position % 32)) & 1
        if char in "-_.":
            out.append("_" if bit else ("." if position % 3 == 0 else "-"))
        else:
            out.append(char.upper() if bit else char)
    return "".join(out).encode("latin-1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--examples", type=int, default=20_000, help="hypothesis examples")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided run with atheris")
    parser.add_argument("--runs", type=int, default=1_000_000, help="atheris executions")
    args, rest = parser.parse_known_args(argv)
    if args.atheris:
        run_atheris([f"-runs={args.runs}", *rest])
        return 0
    executions = run_hypothesis(args.examples)
    print(f"hypothesis: {executions} executions, every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
