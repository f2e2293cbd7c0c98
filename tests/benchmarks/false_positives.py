"""False-positive rate of the value rules on random digit strings (a measurement, not a test).

    python tests/benchmarks/false_positives.py [--n 200000] [--seed 2024]

Draws N uniformly random 10-, 11- and 12-digit strings (every digit uniform, leading zeros
included) and scans each one as a header value the guard knows nothing about, bare and with a
leading `+`, with the default configuration and with PRIVACY_GUARD_DEFAULT_REGION set to US, GB
and IN. Random digits are what an unknown numeric header (an order number, an account ID, a
timestamp-like counter) looks like to the value rules: every hit is a false positive. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter

import phonenumbers

from guard import phone
from guard.detect import Budget, scan_value

LENGTHS = (10, 11, 12)
FORMS = ("bare", "+")
REGIONS = (None, "US", "GB", "IN")
CHECKS = 1_000  # per value: far more than one value can spend, so the budget never interferes
BYTES = 1 << 20


def _draw(rng: random.Random, length: int, n: int) -> list[bytes]:
    return [f"{rng.randrange(10**length):0{length}d}".encode() for _ in range(n)]


def _measure(
    values: list[bytes], region: str | None
) -> tuple[int, int, Counter[str], Counter[str]]:
    """Values flagged, of those how many start with 0 (no calling code does), kinds, regions."""
    flagged = zero = 0
    kinds: Counter[str] = Counter()
    regions: Counter[str] = Counter()
    for value in values:
        hit = scan_value(value, Budget(CHECKS, BYTES), region)
        if hit is not None:
            flagged += 1
            zero += value.lstrip(b"+").startswith(b"0")
            kinds[hit.kind] += 1
            if hit.kind == "msisdn":
                regions[hit.region] += 1
    return flagged, zero, kinds, regions


def _shares(counter: Counter[str], total: int, top: int) -> str:
    if not total:
        return "–"
    return ", ".join(f"{key} {count / total:.0%}" for key, count in counter.most_common(top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="strings per length (200000)")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    phone.warm()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    rows = []
    for length in LENGTHS:
        digits = _draw(rng, length, args.n)
        for form in FORMS:
            values = digits if form == "bare" else [b"+" + value for value in digits]
            for region in REGIONS:
                flagged, zero, kinds, regions = _measure(values, region)
                rows.append((length, form, region, flagged, zero, kinds, regions))
                print(
                    f"  {length} digits, {form}, region {region or '-'}: {flagged} flagged",
                    file=sys.stderr,
                )
    elapsed = time.perf_counter() - started

    print(
        f"N = {args.n:,} uniformly random strings per length (seed {args.seed}); "
        f"phonenumbers {phonenumbers.__version__}; {elapsed:.0f} s\n"
    )
    print(
        "| length | form | default region | flagged | as which kind "
        "| regions of the numbers | flagged, starting with 0 |"
    )
    print("| ---: | --- | --- | ---: | --- | --- | ---: |")
    for length, form, region, flagged, zero, kinds, regions in rows:
        print(
            f"| {length} | {'bare digits' if form == 'bare' else 'leading +'} "
            f"| {region or '(unset)'} | {flagged / args.n:.2%} ({flagged:,}) "
            f"| {_shares(kinds, flagged, 3)} | {_shares(regions, kinds['msisdn'], 4)} "
            f"| {zero / args.n:.2%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
