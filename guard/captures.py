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
from collections import Counter
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
    """One or more raw HTTP/1.1 requests. A body is skipped by its Content-Length or its chunked
    framing, counted in bytes; a body that runs past the input, is framed wrongly or is not framed
    at all is an error, never a guess: a guess could skip the next request and call it clean."""
    requests: list[Request] = []
    rows = _Rows(data)
    while not rows.done():
        row = rows.next()
        if not row.strip():
            continue
        start = rows.line
        match = _REQUEST_LINE.match(row)
        if match is None:
            raise InputError(
                f"line {start}: expected a request line such as `GET /path HTTP/1.1`"
                + (" (the previous request's body, without Content-Length?)" if requests else "")
            )
        lines: list[Line] = []
        while not rows.done():
            row = rows.next()
            if not row:
                break  # the blank line ending the header section
            if row[:1] in (b" ", b"\t") and lines:  # obsolete line folding
                last = lines[-1]
                lines[-1] = last._replace(value=last.value + b" " + row.strip())
            else:
                lines.append(_header_line(row, rows.line))
        coding = b",".join(ln.value for ln in lines if ln.name == b"transfer-encoding")
        length = next((ln.value for ln in lines if ln.name == b"content-length"), b"0").strip()
        if b"chunked" in coding.lower():
            _skip_chunks(rows)
        elif length.isdigit() and len(length) <= 12:
            rows.skip(int(length), "the body (by its Content-Length)")
        requests.append(
            Request(
                f"request at line {start}",
                match.group(1).decode("ascii"),
                match.group(2).decode("latin-1"),
                lines,
            )
        )
    return requests


class _Rows:
    """A cursor over a raw capture, by line or by a count of bytes, that keeps the line number."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.line = 0  # the number of the last line read

    def done(self) -> bool:
        return self.at >= len(self.data)

    def next(self) -> bytes:
        """The next line, without its line ending."""
        end = self.data.find(b"\n", self.at)
        end = len(self.data) if end < 0 else end
        row = self.data[self.at : end]
        self.at = end + 1
        self.line += 1
        return row[:-1] if row.endswith(b"\r") else row

    def skip(self, count: int, what: str) -> None:
        if self.at + count > len(self.data):
            raise InputError(f"line {self.line + 1}: {what} runs past the end of the input")
        self.line += self.data.count(b"\n", self.at, self.at + count)
        self.at += count


def _skip_chunks(rows: _Rows) -> None:
    """A chunked body and its trailer section (RFC 9112 §7.1), each chunk counted in bytes."""
    while True:
        if rows.done():
            raise InputError(f"line {rows.line}: the chunked body ends before its last chunk")
        size = rows.next().split(b";", 1)[0].strip()
        if not (0 < len(size) <= 16 and all(c in b"0123456789abcdefABCDEF" for c in size)):
            raise InputError(f"line {rows.line}: expected a chunk size in a chunked request body")
        count = int(size, 16)
        if count == 0:
            break
        rows.skip(count, "a chunk")
        if rows.next():
            raise InputError(f"line {rows.line}: a chunk is longer than its size says")
    while not rows.done():  # trailer fields, up to a blank line
        row = rows.next()
        if not row:
            return
        _header_line(row, rows.line)  # a trailer is a field line; anything else is an error


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
            earlier: Counter[str] = Counter()  # findings of each name so far on this line
            for finding in alone:
                where = finding.header.partition(":")[0] if ":" in finding.header else "header"
                length = (
                    _pair_length(line.value, b";", finding.header, earlier[finding.header])
                    if where == "cookie"
                    else len(line.value)
                )
                earlier[finding.header] += 1
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
        earlier = Counter()
        for finding in whole:
            where = finding.header.partition(":")[0] if ":" in finding.header else "request"
            nth = earlier[finding.header]  # as on a line: the middleware finds pairs in order
            length = _pair_length(query, b"&", finding.header, nth) if where == "query" else 0
            earlier[finding.header] += 1
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


def _pair_length(raw: bytes, separator: bytes, header: str, nth: int = 0) -> int:
    """The length of the value of the `nth` (from 0) `name=value` pair shown as `header`
    (`cookie:x-msisdn`, `query:msisdn`): the middleware finds a repeated name once per pair,
    in order; 0 when it cannot be told."""
    where = header.partition(":")[0]
    for pair in re.split(rb"[&;]" if where == "query" else separator, raw):
        name, _, value = pair.partition(b"=")
        if where == "query":  # decoded as `pairs.query_hits` decodes it, or the labels differ
            label = shown(unquote_to_bytes(name.replace(b"+", b" ")).decode("latin-1"))
            size = len(unquote_to_bytes(value.replace(b"+", b" ")))
        else:
            label, size = shown(name.decode("latin-1")), len(value.strip())
        if f"{where}:{label}" == header:
            if not nth:
                return size
            nth -= 1
    return 0
