"""Requests captured elsewhere, and what the guard does with each: the work behind
`privacy-guard check`.

An operator holds header lines copied from a log, a raw HTTP request or a browser's HAR file and
asks: what would the guard remove here? The answer comes from the middleware itself, run
in-process on each request as a server would hand it over (names lower-cased, values stripped),
so `check` can never disagree with what is deployed. Findings carry a value's length, never the
value.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

from starlette.types import Message, Receive, Scope, Send

from .catalog import shown
from .config import GuardConfig
from .events import Finding
from .middleware import SCOPE_KEY, PrivacyGuard

__all__ = [
    "CheckFinding",
    "InputError",
    "Line",
    "Request",
    "check_all",
    "parse_requests",
    "read_input",
]


class InputError(ValueError):
    """The input cannot be read as header lines, raw HTTP or HAR; the message says how to fix it."""


_REQUEST_LINE = re.compile(rb"^([A-Z][A-Z0-9-]{0,31}) (\S+) HTTP/(\d(?:\.\d)?)\r?$")
_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MAX_INPUT = 256 * 1024 * 1024


class Line(NamedTuple):
    name: bytes
    value: bytes
    line: int | None  # line number in the input, for text inputs
    position: int | None = None  # 1-based index in a HAR entry's request.headers


class Request(NamedTuple):
    source: str  # where it came from: "lines 1-9", "HAR entry 3"
    method: str | None
    target: str | None  # path and query (redacted before it is shown)
    lines: list[Line]


class CheckFinding(NamedTuple):
    where: str  # header, cookie (a pair in a Cookie line), query
    position: int | None  # 1-based position of its line (in a HAR entry: in request.headers)
    line: int | None
    name: str  # shown: folded, digits masked
    kind: str
    length: int
    action: str  # removed, reported, replaced (as the middleware's Finding)
    rule: str


def read_input(path: str | None) -> bytes:
    """The bytes of `path` (standard input for None or "-"), refused when empty or too large."""
    if path is None or path == "-":
        data = sys.stdin.buffer.read(_MAX_INPUT + 1)
        where = "standard input"
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read(_MAX_INPUT + 1)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        where = path
    if len(data) > _MAX_INPUT:
        raise InputError(f"{where} is larger than 256 MiB; split it (one HAR per page)")
    if not data.strip():
        raise InputError(
            f"{where} is empty; give `Name: value` header lines, a raw HTTP request or a HAR file"
        )
    return data


def parse_requests(data: bytes) -> tuple[str, list[Request]]:
    """The requests in `data` and its format: "har", "http" or "lines" (detected, in that order)."""
    text = data.removeprefix(b"\xef\xbb\xbf")
    if text.lstrip()[:1] == b"{":
        return "har", _parse_har(text)
    first = text.lstrip(b"\r\n").split(b"\n", 1)[0]
    if _REQUEST_LINE.match(first):
        return "http", _parse_http(text)
    return "lines", _parse_lines(text)


def _parse_har(data: bytes) -> list[Request]:
    try:
        har = json.loads(data)
        entries = har["log"]["entries"]
    except (ValueError, UnicodeDecodeError):
        raise InputError(
            "input starts with '{' but is not valid JSON (expected a HAR file)"
        ) from None
    except RecursionError:
        raise InputError("JSON input is nested too deeply to be a HAR file") from None
    except (KeyError, TypeError):
        raise InputError("JSON input is not a HAR file: it has no log.entries list") from None
    if not isinstance(entries, list):
        raise InputError("JSON input is not a HAR file: log.entries is not a list")
    requests = []
    for number, entry in enumerate(entries, 1):
        try:
            request = entry["request"]
            headers = request["headers"]
            lines = [
                Line(str(h["name"]).encode("latin-1", "replace").lower(), _har_value(h), None, i)
                for i, h in enumerate(headers, 1)
                # HTTP/2 pseudo-headers (:authority, :path) never reach an ASGI app as headers.
                if not str(h["name"]).startswith(":")
            ]
        except (KeyError, TypeError):
            raise InputError(
                f"HAR entry {number} has no request.headers list of {{name, value}} objects"
            ) from None
        url = str(request.get("url", ""))
        target = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", "", url) or "/"
        requests.append(
            Request(f"HAR entry {number}", str(request.get("method", "")), target, lines)
        )
    return requests


def _har_value(header: dict[str, Any]) -> bytes:
    value = str(header["value"])
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _parse_http(data: bytes) -> list[Request]:
    """One or more raw HTTP/1.1 requests; a body is skipped by its Content-Length or its chunked
    framing (a body with neither is taken for the next request, and refused if it is none)."""
    requests: list[Request] = []
    rows = data.split(b"\n")
    index = 0
    while index < len(rows):
        if not rows[index].strip():
            index += 1
            continue
        start = index
        match = _REQUEST_LINE.match(rows[index])
        if match is None:
            raise InputError(
                f"line {index + 1}: expected a request line such as `GET /path HTTP/1.1`"
                + (" (the previous request's body, without Content-Length?)" if requests else "")
            )
        index += 1
        lines: list[Line] = []
        while index < len(rows) and rows[index].rstrip(b"\r"):
            row = rows[index].rstrip(b"\r")
            if row[:1] in (b" ", b"\t") and lines:  # obsolete line folding
                last = lines[-1]
                lines[-1] = last._replace(value=last.value + b" " + row.strip())
            else:
                lines.append(_header_line(row, index + 1))
            index += 1
        index += 1  # the blank line ending the header section
        coding = b",".join(ln.value for ln in lines if ln.name == b"transfer-encoding")
        length = next((ln.value for ln in lines if ln.name == b"content-length"), b"0").strip()
        if b"chunked" in coding.lower():
            index = _skip_chunks(rows, index)
        elif length.isdigit() and len(length) <= 12 and int(length):
            index = _skip_bytes(rows, index, int(length))
        requests.append(
            Request(
                f"request at line {start + 1}",
                match.group(1).decode("ascii"),
                match.group(2).decode("latin-1"),
                lines,
            )
        )
    return requests


def _skip_bytes(rows: list[bytes], index: int, count: int) -> int:
    """The row after `count` bytes of body from `rows[index]` (each row had a newline)."""
    while count > 0 and index < len(rows):
        count -= len(rows[index]) + 1
        index += 1
    return index


def _skip_chunks(rows: list[bytes], index: int) -> int:
    """The row after a chunked body and its trailer section (RFC 9112 §7.1)."""
    while index < len(rows):
        size = rows[index].split(b";", 1)[0].strip()
        index += 1
        try:
            count = int(size, 16) if 0 < len(size) <= 16 else -1
        except ValueError:
            count = -1
        if count < 0:
            raise InputError(f"line {index}: expected a chunk size in a chunked request body")
        if count == 0:
            while index < len(rows) and rows[index].rstrip(b"\r"):
                index += 1  # trailer fields
            return index + 1
        index = _skip_bytes(rows, index, count)  # the chunk; its row's end is the CRLF
    return index


def _parse_lines(data: bytes) -> list[Request]:
    """`Name: value` lines; a blank line starts another request; `#` lines are comments."""
    requests = []
    lines: list[Line] = []
    first = 1
    for number, raw in enumerate(data.split(b"\n"), 1):
        row = raw.rstrip(b"\r")
        if not row.strip():
            if lines:
                requests.append(Request(f"lines {first}-{number - 1}", None, None, lines))
                lines = []
            first = number + 1
            continue
        if row.lstrip().startswith(b"#"):
            continue
        if row[:1] in (b" ", b"\t") and lines:
            last = lines[-1]
            lines[-1] = last._replace(value=last.value + b" " + row.strip())
            continue
        lines.append(_header_line(row, number))
    if lines:
        requests.append(Request(f"lines {first}-{number}", None, None, lines))
    return requests


def _header_line(row: bytes, number: int) -> Line:
    name, sep, value = row.partition(b":")
    if not sep or not _NAME.match(name.strip()) or name != name.rstrip():
        raise InputError(
            f"line {number} is not a `Name: value` header line; give header lines, a raw "
            "HTTP request (starting with a line like `GET / HTTP/1.1`) or a HAR file"
        )
    # As an HTTP/1.1 server hands them to ASGI: names lower-cased, values stripped.
    return Line(name.strip().lower(), value.strip(b" \t"), number)


class _Recorder:
    """The app behind the guard in `check`: remembers what the guard reported."""

    def __init__(self) -> None:
        self.findings: tuple[Finding, ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.findings = scope.get(SCOPE_KEY, ())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _through(
    guard: PrivacyGuard,
    recorder: _Recorder,
    request: Request,
    lines: list[Line],
    *,
    client: str,
    query: bool,
) -> list[Finding]:
    path, _, query_string = (request.target or "/").partition("?")
    path = path or "/"
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method or "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": query_string.encode("latin-1", "replace") if query else b"",
        "root_path": "",
        "headers": [(line.name, line.value) for line in lines],
        "client": (client, 50000),
        "server": ("127.0.0.1", 80),
    }
    recorder.findings = ()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    await guard(scope, receive, send)
    return list(recorder.findings)


async def check_all(
    config: GuardConfig, requests: list[Request], client: str
) -> list[list[CheckFinding]]:
    """What the middleware does with each request, line by line.

    The guard runs on the whole request (the authoritative findings, with the per-request
    budget) and on each header line alone, which tells which line each finding belongs to.
    What is left over belongs to the query string.
    """
    recorder = _Recorder()
    guard = PrivacyGuard(recorder, config=config)
    results = []
    for request in requests:
        whole = await _through(guard, recorder, request, request.lines, client=client, query=True)
        found: list[CheckFinding] = []
        for position, line in enumerate(request.lines, 1):
            position = line.position or position
            if not whole:
                break
            alone = await _through(guard, recorder, request, [line], client=client, query=False)
            if not alone or whole[: len(alone)] != alone:
                continue  # clean, or not reached in the whole request (value budget spent)
            del whole[: len(alone)]
            for finding in alone:
                where = finding.header.partition(":")[0] if ":" in finding.header else "header"
                length = (
                    _pair_length(line.value, b";", finding.header)
                    if where == "cookie"
                    else len(line.value)
                )
                found.append(
                    CheckFinding(
                        where,
                        position,
                        line.line,
                        finding.header,
                        finding.kind,
                        length,
                        finding.action,
                        finding.rule,
                    )
                )
        query = (request.target or "").partition("?")[2].encode("latin-1", "replace")
        for finding in whole:
            where = finding.header.partition(":")[0] if ":" in finding.header else "request"
            length = _pair_length(query, b"&", finding.header) if where == "query" else 0
            found.append(
                CheckFinding(
                    where,
                    None,
                    None,
                    finding.header,
                    finding.kind,
                    length,
                    finding.action,
                    finding.rule,
                )
            )
        results.append(found)
    return results


def _pair_length(raw: bytes, separator: bytes, header: str) -> int:
    """The length of the value of the first `name=value` pair shown as `header`
    (`cookie:x-msisdn`, `query:msisdn`); 0 when it cannot be told."""
    where = header.partition(":")[0]
    for pair in re.split(rb"[&;]" if where == "query" else separator, raw):
        name, _, value = pair.partition(b"=")
        if where == "query":  # decoded as `pairs.query_hits` decodes it, or the labels differ
            label = shown(unquote_to_bytes(name.replace(b"+", b" ")).decode("latin-1"))
            size = len(unquote_to_bytes(value.replace(b"+", b" ")))
        else:
            label, size = shown(name.decode("latin-1")), len(value.strip())
        if f"{where}:{label}" == header:
            return size
    return 0
