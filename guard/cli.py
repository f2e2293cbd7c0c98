"""The `privacy-guard` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from .catalog import CATALOG, CATALOG_VERSION, LOW_RISK
from .config import ConfigError, GuardConfig

__all__ = ["main"]

DEMO_CURLS = """\
privacy-guard demo on http://{host}:{port}  (metrics: http://{host}:{port}/metrics)

Try (all numbers are fictional):
  curl -s http://{host}:{port}/ -H 'x-up-calling-line-id: 447700900123'
  curl -s http://{host}:{port}/ -H 'X_MSISDN: 447700900456' -H 'x-uidh: T0RBd01EQXdNREF3'
  curl -s http://{host}:{port}/ -H 'x-anything: +61 491 570 006'
  curl -s http://{host}:{port}/metrics | grep privacy_guard_identifiers_total
"""


def _demo(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ.setdefault("PRIVACY_GUARD_METRICS_PATH", "/metrics")
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several workers need shared metric files, or each scrape sees one worker's counts.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="privacy-guard-metrics-")
    GuardConfig.from_env()  # a bad environment stops here, before any worker starts
    print(DEMO_CURLS.format(host=args.host, port=args.port), flush=True)
    uvicorn.run(
        "guard.demo:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        lifespan="on",
    )
    return 0


def _catalog(args: argparse.Namespace) -> int:
    rows = sorted(set(CATALOG.values()))
    if args.format == "json":
        out = {
            "version": CATALOG_VERSION,
            "identifying": [e._asdict() for e in rows],
            "low_risk": sorted(LOW_RISK),
        }
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"catalog {CATALOG_VERSION}: {len(rows)} identifying headers, {len(LOW_RISK)} low-risk")
    print(f"{'header':34} {'kind':17} {'risk':7} {'conf.':7} sources")
    for e in rows:
        print(f"{e.name:34} {e.kind:17} {e.risk:7} {e.confidence:7} {e.sources}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privacy-guard",
        description="Keep carrier-injected subscriber identifiers away from ASGI applications.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="serve a bundled echo app behind the guard, with metrics at /metrics",
        description="Serve an app that echoes its request headers, behind the guard (uvicorn). "
        "Metrics are served at /metrics. Configuration comes from PRIVACY_GUARD_* variables.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    demo.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    demo.set_defaults(func=_demo)

    catalog = commands.add_parser(
        "catalog",
        help="list the packaged header catalog",
        description="List the identifying headers the guard removes by name.",
    )
    catalog.add_argument("--format", choices=["table", "json"], default="table")
    catalog.set_defaults(func=_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"privacy-guard: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
