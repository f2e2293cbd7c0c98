"""Benchmark for `privacy-guard scan-logs`: throughput (MB/s) and peak memory on a large log.

Not a test. Generates a log of a realistic mix — uvicorn access lines, structlog JSON lines,
stdlib console lines with timestamps, trace IDs, prices, versions, UUIDs and epoch times — with
one identifier in every 1000 lines (fictional numbers, written in several ways), then runs
`privacy-guard scan-logs --json` on it in a fresh process, plain and gzipped, and on a file a
tenth of the size to show that memory does not grow with the file.

    python tests/benchmarks/scan_logs_bench.py              # 200 MB
    python tests/benchmarks/scan_logs_bench.py --size-mb 50 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
EVERY = 1000  # one identifier line in this many

CLEAN = [
    '{ip}:{port} - "GET /api/v1/orders/{order}?page={page}&size=50 HTTP/1.1" 200',
    '{ip}:{port} - "POST /api/v1/cart/{uuid}/items HTTP/1.1" 201',
    '{{"timestamp": "2024-06-10T14:{mm}:{ss}.{us}Z", "level": "info", "logger": "app", '
    '"event": "order created", "order_id": {order}, "amount": {price}, '
    '"trace_id": "{trace}", "span_id": "{span}"}}',
    '{{"timestamp": "2024-06-10T14:{mm}:{ss}.{us}Z", "level": "debug", "event": "cache hit", '
    '"key": "product:{order}", "ttl_s": 300, "version": "2.31.{page}"}}',
    "2024-06-10 14:{mm}:{ss},{ms} INFO [worker-{page}] processed {page} items in 0.{ms}s "
    "(batch {epoch})",
    "2024-06-10 14:{mm}:{ss},{ms} WARNING slow query took {ms}ms on 10.0.{page}.{page}:5432 "
    "id {uuid}",
]
DIRTY = [
    '{ip}:{port} - "GET /pay?msisdn=61491570{n:03d}&amount={price} HTTP/1.1" 200',
    '{{"timestamp": "2024-06-10T14:{mm}:{ss}.{us}Z", "level": "info", "event": "request", '
    '"headers": {{"x-up-calling-line-id": "4477009001{n2:02d}", "host": "shop.example"}}}}',
    "2024-06-10 14:{mm}:{ss},{ms} INFO callback to +61 491 570 {n:03d} scheduled",
    "2024-06-10 14:{mm}:{ss},{ms} INFO device 490154203237518 attached",
]


def generate(path: Path, size: int, seed: int = 7) -> int:
    """Write about `size` bytes of log to `path`; the number of identifiers written."""
    rng = random.Random(seed)
    written = identifiers = lines = 0
    with path.open("w", encoding="utf-8") as out:
        batch: list[str] = []
        while written < size:
            lines += 1
            dirty = lines % EVERY == 0
            template = rng.choice(DIRTY if dirty else CLEAN)
            line = template.format(
                ip=f"203.0.113.{rng.randrange(1, 255)}",
                port=rng.randrange(1024, 65535),
                order=rng.randrange(10**5, 10**9),
                page=rng.randrange(1, 99),
                uuid=f"{rng.getrandbits(128):032x}",
                mm=f"{rng.randrange(60):02d}",
                ss=f"{rng.randrange(60):02d}",
                us=f"{rng.randrange(10**6):06d}",
                ms=f"{rng.randrange(1000):03d}",
                price=f"{rng.randrange(100, 99999) / 100:.2f}",
                trace=f"{rng.getrandbits(128):032x}",
                span=f"{rng.getrandbits(64):016x}",
                epoch=1718032456000 + rng.randrange(10**6),
                n=rng.randrange(6, 160),
                n2=rng.randrange(0, 100),
            )
            identifiers += dirty
            batch.append(line + "\n")
            written += len(line) + 1
            if len(batch) >= 10000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return identifiers


def scan(path: Path) -> dict[str, float]:
    """Run scan-logs on `path` in a fresh process: seconds, peak RSS and what it found."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(BIN / "privacy-guard"), "scan-logs", "--json", "--max-locations", "0", str(path)],
        stdout=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_GUARD_")},
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads(output)
    return {
        "seconds": seconds,
        "rss_mb": usage.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
        "found": report["total"]["identifiers"],
        "exit": process.returncode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the big log (MB)")
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="scan-logs-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        big, small = work / "big.log", work / "small.log"
        sizes = {big: args.size_mb * 10**6, small: args.size_mb * 10**5}
        expected = {}
        for path, size in sizes.items():
            started = time.perf_counter()
            expected[path] = generate(path, size)
            took = time.perf_counter() - started
            print(f"generated {path.name}: {size / 1e6:.0f} MB in {took:.1f}s")
        packed = work / "big.log.gz"
        with big.open("rb") as source, gzip.open(packed, "wb", compresslevel=1) as target:
            shutil.copyfileobj(source, target, 1 << 20)
        expected[packed] = expected[big]

        print(
            f"\n{'file':12} {'MB':>8} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12} found/expected"
        )
        for path in (small, big, packed):
            result = scan(path)
            text_mb = sizes.get(path, sizes[big]) / 1e6
            print(
                f"{path.name:12} {text_mb:8.0f} {result['seconds']:8.1f} "
                f"{text_mb / result['seconds']:7.1f} {result['rss_mb']:12.1f} "
                f"{result['found']:.0f}/{expected[path]} (exit {result['exit']:.0f})"
            )
        print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; MB are of text.")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
