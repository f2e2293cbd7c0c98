"""The `privacy-guard` command line: run, demo, check, scan-logs, catalog.

Every command prints identifiers only as a kind and a length, never their digits. Exit status:
0 success (`check`/`scan-logs`: nothing found), 1 identifiers found, 2 a usage, configuration or
input error — for `scan-logs` 2 wins when one file could not be read and another had findings.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import ipaddress
import json
import os
import shutil
import sys
import tempfile
import textwrap
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp

from .captures import CheckFinding, InputError, Request, check_all, parse_requests, read_input
from .catalog import CATALOG, CATALOG_VERSION, LOW_RISK
from .config import ENV_PREFIX, ConfigError, GuardConfig, port_number
from .droplists import SNIPPETS
from .events import safe_path
from .logs import Redactor, configure_logging, redact_text
from .logscan import FileScan, scan_file
from .middleware import PrivacyGuard, __version__

__all__ = ["main", "serve_app"]

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_ERROR = 2

# How `run` hands its target to the app factory that every uvicorn worker imports. Not
# PRIVACY_GUARD_* names: the guard rejects unknown variables of its own prefix.
TARGET_ENV = "GUARD_RUN_APP"
APP_DIR_ENV = "GUARD_RUN_APP_DIR"
FACTORY_ENV = "GUARD_RUN_FACTORY"
LOG_LEVEL_ENV = "GUARD_RUN_LOG_LEVEL"


def _environment_help() -> str:
    """Every variable GuardConfig reads, so the help cannot fall behind the configuration."""
    names = [
        ENV_PREFIX + f.name.upper()
        for f in dataclasses.fields(GuardConfig)
        if f.metadata.get("env", True)
    ]
    listed = textwrap.fill(
        ", ".join([names[0], *(name.removeprefix("PRIVACY_GUARD") for name in names[1:])]),
        width=96,
        initial_indent="  ",
        subsequent_indent="  ",
    )
    return (
        f"environment:\n{listed}\n  configure the guard (see the README); an unknown "
        "PRIVACY_GUARD_* variable or a bad\n  value is an error (exit status 2)."
    )


_ENVIRONMENT = _environment_help()


class UsageError(Exception):
    """A problem the operator can fix; the message says how. Exit status 2."""


# --- run and demo ------------------------------------------------------------------------------


def _import_target(target: str, app_dir: str, factory: bool) -> Any:
    """The object `MODULE:ATTRIBUTE` names, imported from `app_dir`; UsageError says what to fix."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(
            f"{target!r} is not MODULE:ATTRIBUTE; write it as uvicorn does, e.g. myapp:app "
            "or package.module:application"
        )
    directory = os.path.abspath(app_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UsageError(
                f"no module named {exc.name!r} in {directory} or on the Python path; run "
                "privacy-guard from the directory that contains it, or pass --app-dir DIR"
            ) from None
        raise UsageError(_import_failure(module_name)) from None
    except ConfigError:
        raise
    except Exception:
        raise UsageError(_import_failure(module_name)) from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageError(
                f"module {module_name!r} has no attribute {attribute!r}; name the ASGI "
                f"application object, e.g. {module_name}:app"
            ) from None
    if factory:
        try:
            found = found()
        except Exception:
            raise UsageError(_import_failure(f"{target} (the factory)")) from None
    if not callable(found):
        raise UsageError(
            f"{target!r} is not callable ({type(found).__name__}), so not an ASGI "
            "application; name the application object, or a function that builds it with "
            "--factory"
        )
    return found


def _import_failure(what: str) -> str:
    # The traceback is redacted: an import-time error can quote a configuration value.
    return redact_text(
        f"importing {what} failed:\n{traceback.format_exc().rstrip()}\n"
        f"fix the error above (try: python -c 'import {what.split()[0]}')"
    )


def serve_app() -> ASGIApp:
    """The app factory every uvicorn worker of `privacy-guard run` imports (factory=True).

    Configures the redacting log pipeline in the worker, imports the target named in
    GUARD_RUN_APP and wraps it with the guard (unless it already is one).
    """
    configure_logging(level=os.environ.get(LOG_LEVEL_ENV) or None)
    app = _import_target(
        os.environ[TARGET_ENV],
        os.environ.get(APP_DIR_ENV, "."),
        os.environ.get(FACTORY_ENV) == "1",
    )
    return app if isinstance(app, PrivacyGuard) else PrivacyGuard(app)


def _serve(args: argparse.Namespace, target: str, *, factory: bool = False) -> int:
    """Validate configuration and target, then hand over to uvicorn (reload off)."""
    config = GuardConfig.from_env()  # a bad environment stops here, before any worker starts
    level = args.log_level or config.log_level
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    owned = None  # a metrics directory made here, removed when the server stops
    if args.workers > 1 and config.metrics and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several workers need shared metric files, or each scrape sees one worker's counts.
        owned = tempfile.mkdtemp(prefix="privacy-guard-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned
    try:
        _start_uvicorn(args, target, factory=factory, level=level)
    finally:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
    return EXIT_CLEAN


def _start_uvicorn(args: argparse.Namespace, target: str, *, factory: bool, level: str) -> None:
    """Import the target once in this process, then run uvicorn until it stops."""
    import uvicorn

    os.environ[TARGET_ENV] = target
    os.environ[APP_DIR_ENV] = os.path.abspath(args.app_dir)
    os.environ[FACTORY_ENV] = "1" if factory else "0"
    os.environ[LOG_LEVEL_ENV] = level
    # Imported here, so a bad module path fails now with a clear message (exit 2) rather than in
    # every worker. Several workers each build the app again through `serve_app`.
    app = serve_app()
    uvicorn.run(
        app if args.workers == 1 else "guard.cli:serve_app",
        factory=args.workers > 1,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=False,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        root_path=args.root_path,
        access_log=args.access_log,
        # None: uvicorn keeps the handlers configure_logging installed (its own would print
        # request lines unredacted); it only sets its loggers' levels.
        log_config=None,
        log_level=level,
    )


def _run(args: argparse.Namespace) -> int:
    return _serve(args, args.app, factory=args.factory)


DEMO_CURLS = """\
privacy-guard demo on http://{host}:{port}  (metrics: http://{host}:{port}/metrics)

Try (all numbers are fictional):
  curl -s http://{host}:{port}/ -H 'x-up-calling-line-id: 447700900123'
  curl -s http://{host}:{port}/ -H 'X_MSISDN: 447700900456' -H 'x-uidh: T0RBd01EQXdNREF3'
  curl -s http://{host}:{port}/ -H 'x-anything: +61 491 570 006'
  curl -s 'http://{host}:{port}/?msisdn=61491570006'   # the access log shows msisdn=[msisdn]
  curl -s http://{host}:{port}/metrics | grep privacy_guard_identifiers_total
"""


def _demo(args: argparse.Namespace) -> int:
    if GuardConfig.from_env().metrics:  # with PRIVACY_GUARD_METRICS=false, a path is an error
        os.environ.setdefault("PRIVACY_GUARD_METRICS_PATH", "/metrics")
    config = GuardConfig.from_env()
    curls = DEMO_CURLS.format(host=args.host, port=args.port)
    if config.metrics_path != "/metrics":
        curls = "\n".join(line for line in curls.split("\n") if "/metrics" not in line)
    print(curls, flush=True)
    return _serve(args, "guard.demo:app")


# --- check -------------------------------------------------------------------------------------


def _address(text: str) -> str:
    """`--client`: an IP address, as a server reports a peer; a typo would silently test an
    untrusted client instead of the gateway the operator meant."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IP address (e.g. 192.0.2.1 or 2001:db8::1)"
        ) from None


def _port(text: str) -> int:
    """`--port`: 1-65535. uvicorn would bind 99999 as 34463 (it wraps), or 0 as any port."""
    port = port_number(text)
    if port is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _check(args: argparse.Namespace) -> int:
    config = GuardConfig.from_env()
    # In-process and quiet: no metrics registered or served, only the guard's errors logged.
    config = dataclasses.replace(config, metrics=False, metrics_path=None, metrics_port=None)
    configure_logging(level="error")
    config = dataclasses.replace(config, check_path=None)
    kind_of_input, requests = parse_requests(read_input(args.file))
    results = asyncio.run(check_all(config, requests, args.client))
    total = sum(len(found) for found in results)
    if args.json:
        _check_json(config, kind_of_input, requests, results)
    else:
        _check_table(config, kind_of_input, requests, results)
    return EXIT_FOUND if total else EXIT_CLEAN


_TARGET_NAMES_MAX = 20


def shown_target(target: str) -> str:
    """A request target fit to print: the path as the guard's own events show paths (long digit
    runs masked) and the query's parameter names without their values.

    The findings already say which parameters hold an identifier; a value is never printed,
    whatever its encoding (`ms%69sdn=…`, `61%20491…`, `next=%2Fpay%3Fmsisdn%3D…`), so no value
    rule has to recognise every form first. Path and names are shown percent-decoded.
    """
    path, question, query = target.partition("?")
    if not question:
        return _shown_part(path)
    parts = [part for part in query.split("&") if part]
    names = [
        _shown_part(part.partition("=")[0]) + ("=…" if "=" in part else "")
        for part in parts[:_TARGET_NAMES_MAX]
    ]
    if len(parts) > _TARGET_NAMES_MAX:
        names.append("…")
    return f"{_shown_part(path)}?{'&'.join(names)}"


def _shown_part(text: str) -> str:
    """A path or parameter name decoded (`%36%31…` is digits too), then masked like a path."""
    return safe_path(unquote(text, errors="replace"))


def _check_json(
    config: GuardConfig,
    kind_of_input: str,
    requests: list[Request],
    results: list[list[CheckFinding]],
) -> None:
    findings = [f for found in results for f in found]
    out = {
        "schema": "privacy-guard/check/1",
        "input": kind_of_input,
        "mode": config.mode,
        "scan_values": config.scan_values,
        "catalog_version": CATALOG_VERSION,
        "requests": [
            {
                "source": request.source,
                "method": request.method,
                "target": None if request.target is None else shown_target(request.target),
                "header_lines": len(request.lines),
                "findings": [
                    {
                        "where": f.where,
                        "position": f.position,
                        "line": f.line,
                        "name": f.name,
                        "kind": f.kind,
                        "length": f.length,
                        "action": f.action,
                        "rule": f.rule,
                    }
                    for f in found
                ],
            }
            for request, found in zip(requests, results, strict=True)
        ],
        "summary": {
            "requests": len(requests),
            "requests_with_findings": sum(1 for found in results if found),
            "findings": len(findings),
            "by_kind": dict(Counter(f.kind for f in findings).most_common()),
            "by_action": dict(Counter(f.action for f in findings).most_common()),
        },
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _check_table(
    config: GuardConfig,
    kind_of_input: str,
    requests: list[Request],
    results: list[list[CheckFinding]],
) -> None:
    count = sum(len(found) for found in results)
    print(
        f"privacy-guard check: {len(requests)} request(s) from {_INPUT_NAMES[kind_of_input]}, "
        f"mode {config.mode}, value rules {config.scan_values}, catalog {CATALOG_VERSION}"
    )
    for request, found in zip(requests, results, strict=True):
        title = request.source
        if request.target is not None:
            title += f": {request.method or ''} {shown_target(request.target)}".rstrip()
        print(f"\n{title}")
        if not found:
            print(f"  clean: nothing in its {len(request.lines)} header line(s) would be removed")
            continue
        print(f"  {'where':8} {'name':34} {'kind':17} {'value':10} {'action':9} rule")
        for f in found:
            where = f"line {f.line}" if f.line is not None else f.where
            if f.where == "header" and f.line is None:
                where = f"#{f.position}"
            value = f"{f.length} chars"
            print(f"  {where:8} {f.name:34} {f.kind:17} {value:10} {f.action:9} {f.rule}")
    actions = Counter(f.action for found in results for f in found)
    replaced = actions["replaced"]  # removed too, with a token in the number's place
    print(
        f"\n{count} identifier(s) found, {actions['removed'] + replaced} would be removed"
        + (f" ({replaced} replaced by a pseudonymous token)" if replaced else "")
        + (
            "; query-string findings are only reported: the guard does not rewrite URLs, "
            "and its logs redact them"
            if any(f.where == "query" for found in results for f in found)
            else ""
        )
    )


_INPUT_NAMES = {"har": "a HAR file", "http": "raw HTTP", "lines": "header lines"}


# --- scan-logs ---------------------------------------------------------------------------------


def _scan_logs(args: argparse.Namespace) -> int:
    config = GuardConfig.from_env()
    redactor = Redactor(config.default_region, config.extra_headers)
    if args.max_locations < 0:
        raise UsageError("--max-locations must be 0 or more")
    scans = []
    for path in args.files:
        scan = scan_file(path, redactor, args.max_locations)
        scans.append(scan)
        if not args.json:
            _print_scan(scan)
    if args.json:
        _scan_json(scans)
    else:
        _print_total(scans)
    if any(scan.error for scan in scans):
        return EXIT_ERROR
    return EXIT_FOUND if any(scan.count for scan in scans) else EXIT_CLEAN


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.most_common())


def _print_scan(scan: FileScan) -> None:
    name = scan.path
    if scan.error:
        print(f"{name}: error: {scan.error}", file=sys.stderr)
    if scan.count:
        print(
            f"{name}: {scan.count} identifier(s) on {scan.lines_with_findings} of {scan.lines} "
            f"line(s): {_kinds(scan.by_kind)}"
        )
        for line, labels in scan.locations:
            print(f"  {name}:{line}: {', '.join(labels)}")
        hidden = scan.lines_with_findings - len(scan.locations)
        if hidden > 0:
            print(f"  … and {hidden} more line(s) (--max-locations N lists more)")
    elif not scan.error:
        print(f"{name}: clean ({scan.lines} line(s))")


def _print_total(scans: list[FileScan]) -> None:
    total: Counter[str] = Counter()
    for scan in scans:
        total.update(scan.by_kind)
    found = sum(1 for scan in scans if scan.count)
    errors = sum(1 for scan in scans if scan.error)
    summary = f"total: {sum(total.values())} identifier(s) in {found} of {len(scans)} file(s)"
    if total:
        summary += f" ({_kinds(total)})"
    if errors:
        summary += f"; {errors} file(s) could not be scanned"
    print(summary)


def _scan_json(scans: list[FileScan]) -> None:
    total: Counter[str] = Counter()
    for scan in scans:
        total.update(scan.by_kind)
    out = {
        "schema": "privacy-guard/scan-logs/1",
        "files": [
            {
                "path": scan.path,
                "status": scan.status,
                "error": scan.error,
                "compression": scan.compression,
                "lines": scan.lines,
                "identifiers": scan.count,
                "lines_with_identifiers": scan.lines_with_findings,
                "by_kind": dict(scan.by_kind.most_common()),
                "locations": [{"line": line, "found": labels} for line, labels in scan.locations],
                "locations_truncated": scan.lines_with_findings > len(scan.locations),
            }
            for scan in scans
        ],
        "total": {
            "files": len(scans),
            "files_with_identifiers": sum(1 for scan in scans if scan.count),
            "files_with_errors": sum(1 for scan in scans if scan.error),
            "identifiers": sum(total.values()),
            "by_kind": dict(total.most_common()),
        },
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- catalog -----------------------------------------------------------------------------------


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
    elif args.format in SNIPPETS:
        sys.stdout.write(SNIPPETS[args.format]())
    else:
        print(
            f"catalog {CATALOG_VERSION}: {len(rows)} identifying headers, {len(LOW_RISK)} low-risk"
        )
        print(f"{'header':34} {'kind':17} {'risk':7} {'conf.':7} sources")
        for e in rows:
            print(f"{e.name:34} {e.kind:17} {e.risk:7} {e.confidence:7} {e.sources}")
    return EXIT_CLEAN


# --- the parser --------------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _server_options(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    server = parser.add_argument_group("server (uvicorn)")
    server.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    server.add_argument(
        "--port", type=_port, default=default_port, help=f"port (default: {default_port})"
    )
    server.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default: 1); with more than one, metrics are shared through "
        "PROMETHEUS_MULTIPROC_DIR (unless set, a temporary directory removed at exit)",
    )
    server.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips, as uvicorn does "
        "(default: on)",
    )
    server.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated addresses/networks to trust proxy headers from, or '*' "
        "(default: uvicorn's: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
    )
    server.add_argument(
        "--root-path",
        default="",
        metavar="PATH",
        help="ASGI root_path when mounted below a path prefix (default: none)",
    )
    server.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one redacted line per request (default: on)",
    )
    server.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="default: $PRIVACY_GUARD_LOG_LEVEL or info",
    )
    server.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory to import the application from (default: the current directory)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privacy-guard",
        formatter_class=_Formatter,
        description="Keep carrier-injected subscriber identifiers (MSISDN, IMSI, IMEI, tracking "
        "tokens) away from ASGI applications and their logs.",
        epilog="exit status:\n  0 success or nothing found, 1 identifiers found (check, "
        "scan-logs), 2 usage, configuration or input error\n\n"
        "Run `privacy-guard COMMAND --help` for a command's manual.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        formatter_class=_Formatter,
        help="serve an ASGI application behind the guard (uvicorn)",
        description="""\
Serve the ASGI application MODULE:APP behind the guard with uvicorn (reload off).

The application is wrapped as `PrivacyGuard(app)`, outermost, so nothing in it sees an
identifying header (an app that already is a PrivacyGuard is served as it is). Logging is
configured before the server starts: structlog and the stdlib go through one pipeline that
redacts identifiers (`guard.logs.configure_logging`), and the redacting filter sits on
uvicorn's access and error loggers — the access log prints `GET /pay?msisdn=[msisdn]`.
Configuration comes from PRIVACY_GUARD_* variables and is validated before the server
starts. The module is imported once before serving, so a bad path fails at once.""",
        epilog=f"""\
examples:
  privacy-guard run myapp:app
  privacy-guard run myproject.asgi:application --host 0.0.0.0 --port 8000 --workers 4
  PRIVACY_GUARD_MODE=report privacy-guard run main:app --forwarded-allow-ips 10.0.0.0/8
  privacy-guard run --factory myapp:create_app

{_ENVIRONMENT}

exit status:
  2  bad configuration, module not found, missing attribute, import error; otherwise uvicorn's
""",
    )
    run.add_argument("app", metavar="MODULE:APP", help="the application, as uvicorn names it")
    run.add_argument(
        "--factory",
        action="store_true",
        help="APP is a function that returns the application; call it (in each worker)",
    )
    _server_options(run, default_port=8000)
    run.set_defaults(func=_run)

    demo = commands.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="serve a bundled echo app behind the guard, with metrics at /metrics",
        description="""\
Serve a bundled app that echoes the request headers it received, behind the guard (uvicorn),
and print curl lines to try. Metrics are served at /metrics unless PRIVACY_GUARD_METRICS_PATH
says otherwise. Logs go through the same redacting pipeline as `run`.""",
        epilog=_ENVIRONMENT,
    )
    _server_options(demo, default_port=8000)
    demo.set_defaults(func=_demo)

    check = commands.add_parser(
        "check",
        formatter_class=_Formatter,
        help="show what the guard would remove from request headers, and why",
        description="""\
Read request headers and print what the guard would remove, with the rule that decides:
catalog (a known carrier header), name (an identifier-shaped name), extra
(PRIVACY_GUARD_EXTRA_HEADERS) or value (a phone number, IMSI or IMEI in another header).
The requests run through the middleware itself, in-process, with this environment's
configuration — the result is what a server would do. Values are shown only as their kind
and length, never their digits. Identifying cookie pairs and query parameters are listed as
the guard reports them; query parameters are only reported (the guard does not rewrite
URLs; its logs redact them).

The input format is detected:
  - a HAR file (browser developer tools: Save all as HAR; log.entries[].request.headers),
  - a raw HTTP/1.1 request (a request line such as `GET /path HTTP/1.1`, then headers),
  - `Name: value` lines; a blank line separates requests, `#` starts a comment.""",
        epilog="""\
examples:
  printf 'x-up-calling-line-id: 447700900123\\nx-foo: +61 491 570 006\\n' | privacy-guard check
  privacy-guard check capture.har --json | jq .summary
  PRIVACY_GUARD_MODE=report privacy-guard check request.txt

exit status:
  0 nothing found, 1 identifiers found, 2 unreadable input or bad configuration""",
    )
    check.add_argument(
        "file", nargs="?", metavar="FILE", help="input file (default: standard input; '-' too)"
    )
    check.add_argument(
        "--client",
        default="192.0.2.1",
        type=_address,
        metavar="ADDRESS",
        help="the client address the requests come from (default: 192.0.2.1, an untrusted "
        "documentation address); matters only with PRIVACY_GUARD_TRUSTED_SOURCES",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print JSON (schema privacy-guard/check/1, described in the README)",
    )
    check.set_defaults(func=_check)

    scan = commands.add_parser(
        "scan-logs",
        formatter_class=_Formatter,
        help="find identifiers in existing log files (plain, JSON lines, gzip)",
        description="""\
Find subscriber identifiers in stored logs: phone numbers, IMSIs and IMEIs anywhere in a line
(the guard's value rules), and the value of any identifying name (`msisdn=…`,
`"x-up-calling-line-id": "…"`). Prints counts by kind and file:line locations — never a
value. Plain text and JSON lines are read as text; gzip, bzip2 and xz are recognised by
their magic bytes. Files are streamed in 1 MiB blocks: memory stays constant on multi-GB
files. A binary file (NUL bytes in its first 8 KiB) is not scanned and is an error.""",
        epilog="""\
examples:
  privacy-guard scan-logs /var/log/app/*.log /var/log/app/*.gz
  journalctl -u app -o cat | privacy-guard scan-logs -
  privacy-guard scan-logs --json access.log | jq .total

exit status:
  0 nothing found, 1 identifiers found, 2 a file could not be read (wins over 1)""",
    )
    scan.add_argument("files", nargs="+", metavar="FILE", help="log files ('-': standard input)")
    scan.add_argument(
        "--max-locations",
        type=int,
        default=20,
        metavar="N",
        help="file:line locations listed per file (default: 20); counts are always complete",
    )
    scan.add_argument(
        "--json", action="store_true", help="print JSON (schema privacy-guard/scan-logs/1)"
    )
    scan.set_defaults(func=_scan_logs)

    catalog = commands.add_parser(
        "catalog",
        formatter_class=_Formatter,
        help="list the header catalog, or emit drop-lists for a reverse proxy",
        description="""\
List the identifying headers the guard removes by name (table, json), or emit a drop-list for
a reverse proxy in front of the app, as defence in depth: nginx `proxy_set_header NAME "";`
lines, an Envoy `request_headers_to_remove` list, HAProxy `http-request del-header` lines,
Caddy `request_header -NAME` lines or Apache `RequestHeader unset` lines. Each starts with
comments on where it goes and which spellings that proxy lets through.""",
        epilog="""\
examples:
  privacy-guard catalog
  privacy-guard catalog --format nginx > /etc/nginx/snippets/privacy-guard.conf && nginx -t
  privacy-guard catalog --format caddy > /etc/caddy/privacy-guard.caddy
  privacy-guard catalog --format apache > /etc/apache2/conf-available/privacy-guard.conf
  privacy-guard catalog --format haproxy   # paste into the backend section
  privacy-guard catalog --format envoy""",
    )
    catalog.add_argument(
        "--format",
        choices=["table", "json", *SNIPPETS],
        default="table",
        help="output format (default: table)",
    )
    catalog.set_defaults(func=_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except ConfigError as exc:
        print(f"privacy-guard: configuration error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (UsageError, InputError) as exc:
        print(f"privacy-guard {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `privacy-guard check … | head`: the reader went away; not an error of ours.
        sys.stderr.close()
        return EXIT_CLEAN
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.command not in ("check", "scan-logs"):
            raise
        # 1 means "identifiers found": a failure must not look like a result. Its message
        # could quote what was read, so only its type is shown.
        print(
            f"privacy-guard {args.command}: internal error ({type(exc).__name__}); "
            "the input was not fully checked",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
