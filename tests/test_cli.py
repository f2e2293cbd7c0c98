"""The operator's command line: check, scan-logs, catalog, and run's errors (its server is in
test_run_server.py). Sample inputs are in tests/data; every number in them is fictional."""

from __future__ import annotations

import bz2
import dataclasses
import functools
import gzip
import io
import json
import logging
import lzma
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import RecordingApp, call, http_scope
from support import BIN

from guard import GuardConfig, PrivacyGuard, captures, cli
from guard.captures import parse_requests
from guard.catalog import CATALOG
from guard.cli import (
    APP_DIR_ENV,
    FACTORY_ENV,
    LOG_LEVEL_ENV,
    TARGET_ENV,
    main,
    shown_target,
)
from guard.logs import SERVER_LOGGERS

DATA = Path(__file__).parent / "data"
# Every identifier in the sample files, as digits: none may ever be printed.
IDENTIFIERS = [
    "61491570006",
    "61491570007",
    "61491570008",
    "447700900123",
    "447700900124",
    "447700900125",
    "12015550123",
    "310150123456789",
    "490154203237518",
    "T0RBd01EQXdNREF3",
]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PRIVACY_GUARD_* from the caller; logging and run's variables restored afterwards."""
    for name in [n for n in os.environ if n.startswith("PRIVACY_GUARD_")]:
        monkeypatch.delenv(name)
    for name in (TARGET_ENV, APP_DIR_ENV, FACTORY_ENV, LOG_LEVEL_ENV):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {name: logging.getLogger(name).filters[:] for name in SERVER_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, kept in filters.items():
        logging.getLogger(name).filters = kept
    structlog.reset_defaults()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_identifier(text: str) -> None:
    digits = re.sub(r"[\s+-]", "", text)
    for identifier in IDENTIFIERS:
        assert identifier not in digits, identifier


# --- check ----------------------------------------------------------------------------------------

CHECKED = [
    (
        "chrome.har",
        [
            ("query", None, "query:msisdn", "msisdn", 11, "reported", "catalog"),
            ("cookie", 8, "cookie:x-msisdn", "msisdn", 12, "removed", "catalog"),
            ("header", 13, "x-device-ref", "msisdn", 15, "removed", "value"),
            ("header", 14, "x-up-calling-line-id", "msisdn", 12, "removed", "catalog"),
        ],
    ),
    (
        "request.http",
        [
            ("header", 3, "x-nokia-msisdn", "msisdn", 12, "removed", "catalog"),
            ("header", 4, "x-imsi", "imsi", 15, "removed", "catalog"),
            ("header", 6, "x-handset", "imei", 15, "removed", "value"),
        ],
    ),
    (
        "headers.txt",
        [
            ("header", 2, "x-up-calling-line-id", "msisdn", 12, "removed", "catalog"),
            ("header", 3, "x-uidh", "subscriber_token", 16, "removed", "catalog"),
            ("header", 3, "x-callback", "msisdn", 15, "removed", "value"),
        ],
    ),
    ("clean-headers.txt", []),
]


@pytest.mark.parametrize(
    "query",
    [
        b"msisdn=447700900123",
        b"MS%49SDN=447700900123",
        b"msisdn%C3%A9=447700900123",
        b"msisdn+x=447700900123",
    ],
)
def test_check_tells_the_length_of_a_query_value_however_its_name_is_encoded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, query: bytes
) -> None:
    """`check` names a query finding as the middleware does, and finds its value again by it."""
    request = tmp_path / "request.http"
    request.write_bytes(b"GET /?" + query + b"&a=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
    code, report = check_json(capsys, str(request))
    (finding,) = report["requests"][0]["findings"]
    assert (finding["where"], finding["length"], finding["action"]) == ("query", 12, "reported")
    assert code == 1


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(capsys, "check", "--json", *argv)
    assert err == ""
    return code, json.loads(out)


@pytest.mark.parametrize(("name", "expected"), CHECKED)
def test_check_sample_files(
    capsys: pytest.CaptureFixture[str], name: str, expected: list[tuple[Any, ...]]
) -> None:
    code, report = check_json(capsys, str(DATA / name))
    found = [
        (f["where"], f["position"], f["name"], f["kind"], f["length"], f["action"], f["rule"])
        for request in report["requests"]
        for f in request["findings"]
    ]
    assert sorted(found, key=str) == sorted(expected, key=str)
    assert code == (1 if expected else 0)
    assert report["summary"]["findings"] == len(expected)


@pytest.mark.parametrize("name", [name for name, _ in CHECKED])
def test_check_never_prints_a_value(capsys: pytest.CaptureFixture[str], name: str) -> None:
    for argv in (["check", str(DATA / name)], ["check", "--json", str(DATA / name)]):
        _, out, err = run_cli(capsys, *argv)
        assert_no_identifier(out + err)


def test_check_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check", str(DATA / "request.http"))
    assert code == 1
    assert "request at line 1: POST /api/subscribe?plan=…" in out
    assert re.search(r"line 4 +x-nokia-msisdn +msisdn +12 chars +removed +catalog", out)
    assert re.search(r"line 7 +x-handset +imei +15 chars +removed +value", out)
    assert "3 identifier(s) found, 3 would be removed" in out


# Targets whose values hide numbers in forms no value rule has to know: `check` prints the path and
# the parameter names only.
SHOWN_TARGETS = [
    ("/pay?ms%69sdn=447700900123&im%65isv=4901542032375101", "/pay?msisdn=…&imeisv=…"),
    ("/pay?to=61%20491%20570%20006&x=1", "/pay?to=…&x=…"),
    ("/go?next=%2Fpay%3Fmsisdn%3D447700900123", "/go?next=…"),
    ("/a?ids=61491570006%2C61491570007&flag", "/a?ids=…&flag"),
    ("/u/61491570006/profile", "/u/#/profile"),
    ("/u/614915700%2006?q", "/u/#?q"),
    ("/u/%36%31%34%39%31%35%37%30%30%30%36?%36%31%34%39%31%35%37%30%30%30%37", "/u/#?#"),
    ("/plain", "/plain"),
    (
        "/many?" + "&".join(f"p{i}=1" for i in range(20)),
        "/many?" + "&".join(f"p{i}=…" for i in range(20)),
    ),
    ("/many?" + "&".join(f"p{i}=1" for i in range(25)), None),
]


@pytest.mark.parametrize(("target", "shown"), SHOWN_TARGETS)
def test_check_prints_no_value_of_a_target(target: str, shown: str | None) -> None:
    printed = shown_target(target)
    if shown is not None:
        assert printed == shown
    else:
        assert printed.endswith("&…")
        assert printed.count("=…") == 20
    assert not re.search(r"[0-9]{3}", printed.replace("p1", "").replace("%20", ""))


def test_check_raw_request_target_keeps_no_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "req.http"
    raw.write_bytes(
        b"GET /pay?ms%69sdn=447700900123&x%2Dmsisdn=61%20491%20570%20006 HTTP/1.1\r\n"
        b"Host: shop.example\r\n\r\n"
    )
    for flags in ([], ["--json"]):
        assert main(["check", *flags, str(raw)]) == 1
        out = capsys.readouterr().out
        assert "447700900123" not in out
        assert "491" not in out
        shown = json.loads(out)["requests"][0]["target"] if flags else out
        assert "/pay?msisdn=…&x-msisdn=…" in shown


def test_check_har_detects_the_format_and_redacts_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = check_json(capsys, str(DATA / "chrome.har"))
    assert code == 1
    assert report["input"] == "har"
    first = report["requests"][0]
    assert first["target"] == "/pay?msisdn=…&amount=…"
    assert first["method"] == "GET"
    # HTTP/2 pseudo-headers (:authority, :path, …) are not header lines an app receives
    assert first["header_lines"] == 13


def test_check_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = b"X-Up-Calling-Line-Id: 447700900123\nAccept: */*\n"
    for argv in ([], ["-"]):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text)))
        code, report = check_json(capsys, *argv)
        assert code == 1
        assert report["input"] == "lines"
        assert [f["name"] for f in report["requests"][0]["findings"]] == ["x-up-calling-line-id"]


ENVIRONMENTS = [
    {},
    {"PRIVACY_GUARD_MODE": "report"},
    {"PRIVACY_GUARD_SCAN_VALUES": "report"},
    {"PRIVACY_GUARD_SCAN_VALUES": "off"},
    {"PRIVACY_GUARD_ALLOW_HEADERS": "x-up-calling-line-id"},
    {"PRIVACY_GUARD_EXTRA_HEADERS": "x-handset,accept"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("name", [name for name, _ in CHECKED])
def test_check_is_what_the_middleware_does(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: Any,
    env: dict[str, str],
    name: str,
) -> None:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    _, report = check_json(capsys, str(DATA / name))
    config = GuardConfig.from_env(env)
    _, requests = parse_requests((DATA / name).read_bytes())
    for request, reported in zip(requests, report["requests"], strict=True):
        app = RecordingApp()
        guard = PrivacyGuard(app, config=config, registry=registry)
        path, _, query = (request.target or "/").partition("?")
        scope = http_scope([(line.name, line.value) for line in request.lines], path=path)
        scope["query_string"] = query.encode()
        call(guard, scope)
        expected = [tuple(f) for f in app.scope["privacy_guard"]]
        assert [
            (f["name"], f["kind"], f["action"], f["rule"]) for f in reported["findings"]
        ] == expected


CHECK_ERRORS = [
    (b"", "is empty"),
    (b"   \n\n", "is empty"),
    (b"this is not a header\n", "line 1 is not a `Name: value` header line"),
    (b"Host: a\nbad header: x\n", "line 2 is not"),
    (b'{"not": "a har"}', "not a HAR file"),
    (b"{broken json", "not valid JSON"),
    (b'{"log": {"entries": [{"request": {}}]}}', "HAR entry 1 has no request.headers"),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nnot a request line\r\n", "expected a request line"),
    # a body it cannot frame is refused, never guessed past
    (
        b"POST / HTTP/1.1\r\nX-Msisdn: 447700900123\r\n\r\nbody without a length\r\n",
        "the previous request's body, without Content-Length?",
    ),
    (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        "expected a chunk size",
    ),
    (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        "a chunk is longer than its size says",
    ),
    # a space before the colon: servers refuse such a line (RFC 9112 §5.1), so does check
    (b"x-msisdn : 447700900123\n", "line 1 is not a `Name: value` header line"),
    (b'{"log": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    # an entries object is not a list of requests: refused, never "0 requests, clean"
    (b'{"log": {"entries": {}}}', "log.entries is not a list"),
    # a line without a colon is no header line, even when it is a valid name on its own
    (b"Host: a\nX-Msisdn\n", "line 2 is not"),
    # a Content-Length that is not plain digits frames nothing: the body is not skipped by it
    (
        b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
        "the previous request's body, without Content-Length?",
    ),
    # a chunk size longer than 16 hex digits, and a trailer that is no field line
    (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 16 + b"5\r\nhello\r\n",
        "expected a chunk size",
    ),
    (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a trailer\r\n\r\n",
        "line 5 is not a `Name: value` header line",
    ),
]


@pytest.mark.parametrize(("data", "message"), CHECK_ERRORS)
def test_check_input_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "input"
    path.write_bytes(data)
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 2
    assert out == ""
    assert message in err
    assert_no_identifier(err)


BOM = b"\xef\xbb\xbf"  # what Windows editors and PowerShell put before UTF-8 text


@pytest.mark.parametrize(
    ("data", "fmt", "found"),
    [
        (BOM + b"GET / HTTP/1.1\r\nx-msisdn: 447700900123\r\n\r\n", "raw HTTP", [["x-msisdn"]]),
        (
            BOM + (DATA / "chrome.har").read_bytes(),
            "a HAR file",
            [["query:msisdn"], ["cookie:x-msisdn", "x-device-ref", "x-up-calling-line-id"], []],
        ),
        (
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            b"GET /b HTTP/1.1\r\nx-msisdn: 447700900123\r\n\r\n",
            "raw HTTP",
            [[], ["x-msisdn"]],
        ),
    ],
    ids=["BOM raw HTTP", "BOM HAR", "Transfer-Encoding: Chunked"],
)
def test_check_reads_what_tools_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, fmt: str, found: list[Any]
) -> None:
    path = tmp_path / "capture"
    path.write_bytes(data)
    code, out, err = run_cli(capsys, "check", str(path))
    assert (code, err) == (1, ""), err
    assert f"from {fmt}" in out
    _, report = check_json(capsys, str(path))
    assert [[f["name"] for f in r["findings"]] for r in report["requests"]] == found


def test_check_table_names_a_har_header_by_its_position(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "check", str(DATA / "chrome.har"))
    assert code == 1
    assert re.search(r"^  #13 +x-device-ref +msisdn", out, re.MULTILINE)
    assert re.search(r"^  #14 +x-up-calling-line-id +msisdn", out, re.MULTILINE)


def test_check_summary_counts_requests_and_replacements(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "headers.txt"
    path.write_bytes(b"x-msisdn: 447700900123\n\naccept: */*\n")
    _, report = check_json(capsys, str(path))
    assert report["summary"]["requests_with_findings"] == 1
    assert len(report["requests"]) == 2
    monkeypatch.setenv("PRIVACY_GUARD_PSEUDONYM_KEY", "ab" * 32)
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 1
    assert "1 identifier(s) found, 1 would be removed (1 replaced by a pseudonymous token)" in out


def test_check_inspects_a_request_to_the_self_check_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The guard answers its check page itself; `check` must still see what reached it."""
    monkeypatch.setenv("PRIVACY_GUARD_CHECK_PATH", "/privacy-check")
    path = tmp_path / "check.http"
    path.write_bytes(b"GET /privacy-check HTTP/1.1\r\nx-msisdn: 447700900123\r\n\r\n")
    code, report = check_json(capsys, str(path))
    assert code == 1
    assert [f["name"] for f in report["requests"][0]["findings"]] == ["x-msisdn"]


def test_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "check", str(tmp_path / "nope.har"))
    assert code == 2
    assert "cannot read" in err
    assert "No such file" in err


def test_check_bad_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVACY_GUARD_MOD", "strip")
    code, _, err = run_cli(capsys, "check", str(DATA / "headers.txt"))
    assert code == 2
    assert "did you mean PRIVACY_GUARD_MODE" in err


def test_check_trusted_client(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_SOURCES", "10.20.0.0/16")
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_PATHS", "/partner/")
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_HEADERS", "x-msisdn")
    path = tmp_path / "partner.http"
    path.write_bytes(b"GET /partner/login HTTP/1.1\r\nHost: a\r\nX-Msisdn: 447700900123\r\n\r\n")
    actions = {}
    for client in ("192.0.2.1", "10.20.1.2"):
        _, report = check_json(capsys, "--client", client, str(path))
        actions[client] = report["requests"][0]["findings"][0]["action"]
    assert actions == {"192.0.2.1": "removed", "10.20.1.2": "reported"}


def test_check_default_client_is_untrusted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --client the requests come from no trusted source, even one on localhost."""
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_SOURCES", "127.0.0.0/8,10.0.0.0/8")
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_PATHS", "/")
    monkeypatch.setenv("PRIVACY_GUARD_TRUSTED_HEADERS", "x-up-calling-line-id")
    _, report = check_json(capsys, str(DATA / "headers.txt"))
    found = report["requests"][0]["findings"]
    assert {f["action"] for f in found if f["name"] == "x-up-calling-line-id"} == {"removed"}


@pytest.mark.parametrize("client", ["notanip", "10.20.1", "10.20.1.2:5000", ""])
def test_check_refuses_a_client_that_is_not_an_address(
    capsys: pytest.CaptureFixture[str], client: str
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["check", "--client", client, str(DATA / "headers.txt")])
    assert exited.value.code == 2
    assert "is not an IP address" in capsys.readouterr().err


def har_with(url: str, headers: list[tuple[str, str]]) -> bytes:
    entry = {"method": "GET", "url": url, "headers": [{"name": n, "value": v} for n, v in headers]}
    return json.dumps({"log": {"entries": [{"request": entry}]}}).encode()


CHUNKED = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET /b HTTP/1.1\r\nX-Msisdn: 447700900123\r\n\r\n"

# Captures as tools and people write them: (input, format detected, per request the (name, value
# length) of each finding). Each form a server accepts must be read, never refused or misframed,
# and a value's length must be what the server would hand the app.
CAPTURE_FORMS = [
    (b"GET / HTTP/2\r\nx-msisdn: 447700900123\r\n\r\n", "http", [[("x-msisdn", 12)]]),
    (b"PROPFIND /dav/ HTTP/1.1\r\nx-msisdn: 447700900123\r\n\r\n", "http", [[("x-msisdn", 12)]]),
    (b"\r\n\r\nGET / HTTP/1.1\r\nx-msisdn: 447700900123\r\n\r\n", "http", [[("x-msisdn", 12)]]),
    # obs-fold (RFC 9112 §5.2): the continuation joins the value with one space
    (b"GET / HTTP/1.1\r\nX-Msisdn: 4477009\r\n 00123\r\n\r\n", "http", [[("x-msisdn", 13)]]),
    (b"X-Msisdn: 4477009\n\t00123\n", "lines", [[("x-msisdn", 13)]]),
    # framing a server accepts: the body is skipped, the next request is read
    (CHUNKED.replace(b"chunked", b"gzip\r\nTransfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n"
     + NEXT, "http", [[], [("x-msisdn", 12)]]),
    (b"POST /a HTTP/1.1\r\nContent-Length: 000000000005\r\n\r\nhello\r\n" + NEXT,
     "http", [[], [("x-msisdn", 12)]]),
    (CHUNKED + b"0" * 15 + b"5\r\nhello\r\n0\r\n\r\n" + NEXT, "http", [[], [("x-msisdn", 12)]]),
    # header lines: dot spelling, an indented comment, CRLF, trailing blanks, a spaced cookie pair
    (b"x.msisdn: 447700900123\n", "lines", [[("x-msisdn", 12)]]),
    (b"# gateway capture\n  # (indented note)\nx-msisdn: 447700900123\n", "lines",
     [[("x-msisdn", 12)]]),
    (b"x-msisdn: 447700900123\r\naccept: */*\r\n", "lines", [[("x-msisdn", 12)]]),
    (b"x-msisdn: 447700900123 \t\n", "lines", [[("x-msisdn", 12)]]),
    (b"cookie: a=1; x-msisdn=447700900123 ; b=2\n", "lines", [[("cookie:x-msisdn", 12)]]),
    # query values: `;` separates pairs, and a value's length is counted decoded
    (b"GET /?a=1;msisdn=447700900123 HTTP/1.1\r\n\r\n", "http", [[("query:msisdn", 12)]]),
    (b"GET /?msisdn=%2B61491570006 HTTP/1.1\r\n\r\n", "http", [[("query:msisdn", 12)]]),
    # HAR: leading blanks, HTTP/1.1 names in capitals, a latin-1 value, a URL without a path
    (b"\r\n  " + har_with("https://a.example/", [("x-msisdn", "447700900123")]), "har",
     [[("x-msisdn", 12)]]),
    (har_with("http://a.example/", [("X-Up-Calling-Line-Id", "447700900123")]), "har",
     [[("x-up-calling-line-id", 12)]]),
    (har_with("http://a.example/", [("x-msisdn", "447700900123\u00e9")]), "har",
     [[("x-msisdn", 13)]]),
    (har_with("https://a.example?msisdn=61491570006", []), "har", [[("query:msisdn", 11)]]),
]  # fmt: skip


@pytest.mark.parametrize(("data", "fmt", "found"), CAPTURE_FORMS)
def test_check_reads_every_form_a_server_accepts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, fmt: str, found: list[Any]
) -> None:
    path = tmp_path / "capture"
    path.write_bytes(data)
    code, report = check_json(capsys, str(path))
    assert report["input"] == fmt
    assert [[(f["name"], f["length"]) for f in r["findings"]] for r in report["requests"]] == found
    assert code == 1


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"cookie: x-msisdn=1; x-msisdn=447700900123\n", "cookie:x-msisdn"),
        (b"GET /?msisdn=1&msisdn=447700900123 HTTP/1.1\r\n\r\n", "query:msisdn"),
    ],
)
def test_check_tells_each_length_of_a_repeated_pair_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, name: str
) -> None:
    """Two pairs of one name are two findings, each with its own value's length: the second
    must not be told as the first one's (an operator would read a 12-digit number as 1 char)."""
    path = tmp_path / "capture"
    path.write_bytes(data)
    _, report = check_json(capsys, str(path))
    found = [(f["name"], f["length"]) for f in report["requests"][0]["findings"]]
    assert found == [(name, 1), (name, 12)]


def test_check_counts_lines_inside_a_body(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Line numbers after a body that has line breaks still point at the right input line."""
    path = tmp_path / "two.http"
    path.write_bytes(
        b"POST /a HTTP/1.1\r\nContent-Length: 12\r\n\r\nline1\r\nline2\r\n"  # lines 1-5
        b"GET /b HTTP/1.1\r\nX-Msisdn: 447700900123\r\n\r\n"  # lines 6-7
    )
    _, report = check_json(capsys, str(path))
    second = report["requests"][1]
    assert second["source"] == "request at line 6"
    assert [f["line"] for f in second["findings"]] == [7]


def test_check_does_not_credit_a_line_the_value_budget_never_reached(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Past the per-request value-scan budget the guard leaves a number in place; `check` must not
    report it as removed, nor move the catalog finding after it onto its line."""
    pad = b"".join(b"x-n%d: +44 7700 900%03d\n" % (i, i) for i in range(40))  # each costs a check
    path = tmp_path / "long.txt"
    path.write_bytes(pad + b"x-callback: +1 201 555 0123\nx-msisdn: 447700900123\n")
    _, report = check_json(capsys, str(path))
    found = report["requests"][0]["findings"]
    assert [(f["line"], f["name"], f["rule"]) for f in found] == [(42, "x-msisdn", "catalog")]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_check_input_cap_is_exact(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    """Input of the cap's size is read whole; one byte more is refused, never cut at the cap and
    checked truncated: the cut-off rest could hold the identifier, and `check` would say clean."""
    monkeypatch.setattr(captures, "_MAX_INPUT", 64)
    head = b"x-msisdn: 447700900123\naccept: "
    at_cap = head + b"a" * (63 - len(head)) + b"\n"
    over = b"accept: " + b"a" * 55 + b"\n" + b"x-msisdn: 447700900123\n"  # clean in its first 64
    for data, expected in ((at_cap, 1), (over, 2)):
        path = tmp_path / "capture"
        path.write_bytes(data)
        argv = ["check", str(path)]
        if source == "stdin":
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
            argv = ["check"]
        code, _, err = run_cli(capsys, *argv)
        assert code == expected, err
        assert ("is larger than" in err) == (expected == 2)


def test_check_skips_a_chunked_body(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    capture = tmp_path / "chunked.txt"
    capture.write_bytes(
        b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n"
        b"X-Msisdn: 447700900123\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\nGET / H\r\n0\r\nX-Trailer: 1\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: shop.example\r\nX-Up-Calling-Line-Id: 447700900456\r\n\r\n"
    )

    code, report = check_json(capsys, str(capture))

    assert code == 1
    found = [[f["name"] for f in r["findings"]] for r in report["requests"]]
    assert found == [["x-msisdn"], ["x-up-calling-line-id"]]


@pytest.mark.parametrize(
    ("command", "function", "sample"),
    [("check", "parse_requests", "headers.txt"), ("scan-logs", "scan_file", "app.log")],
)
def test_an_internal_error_exits_2_without_its_message(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    function: str,
    sample: str,
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("could not parse 447700900123")  # a message that quotes the input

    monkeypatch.setattr(cli, function, broken)

    code, out, err = run_cli(capsys, command, str(DATA / sample))

    assert code == 2, "1 would read as identifiers found"
    assert "internal error (ValueError)" in err
    assert_no_identifier(out + err)


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "9" * 5000])
def test_run_and_demo_refuse_a_port_out_of_range(
    capsys: pytest.CaptureFixture[str], port: str
) -> None:
    for argv in (["run", "guard.demo:app", "--port", port], ["demo", "--port", port]):
        with pytest.raises(SystemExit) as exited:  # argparse's usage error
            main(argv)
        assert exited.value.code == 2
        assert "is not a port number (1-65535)" in capsys.readouterr().err


def test_demo_with_metrics_off_serves_without_a_metrics_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str | None] = []
    monkeypatch.setenv("PRIVACY_GUARD_METRICS", "false")
    monkeypatch.delenv("PRIVACY_GUARD_METRICS_PATH", raising=False)
    monkeypatch.setattr(
        cli,
        "_serve",
        lambda args, app: served.append(os.environ.get("PRIVACY_GUARD_METRICS_PATH")) or 0,
    )

    code, out, err = run_cli(capsys, "demo")

    assert (code, served) == (0, [None]), err
    assert "/metrics" not in out
    assert "x-up-calling-line-id" in out


# --- scan-logs ------------------------------------------------------------------------------------

SCANNED = [
    (
        "app.log",
        {"msisdn": 3, "imei": 1, "imsi": 1},
        [
            (2, ["msisdn (name msisdn)"]),
            (4, ["msisdn (name x-up-calling-line-id)"]),
            (5, ["msisdn"]),
            (6, ["imei", "imsi"]),
        ],
    ),
    (
        "app.log.gz",
        {"msisdn": 3, "imei": 1, "imsi": 1},
        [
            (2, ["msisdn (name msisdn)"]),
            (4, ["msisdn (name x-up-calling-line-id)"]),
            (5, ["msisdn"]),
            (6, ["imei", "imsi"]),
        ],
    ),
    ("app.jsonl", {"msisdn": 2}, [(2, ["msisdn (name x-msisdn)"]), (4, ["msisdn"])]),
    ("clean.log", {}, []),
]


def scan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(capsys, "scan-logs", "--json", *argv)
    return code, json.loads(out), err


@pytest.mark.parametrize(("name", "kinds", "locations"), SCANNED)
def test_scan_logs_sample_files(
    capsys: pytest.CaptureFixture[str],
    name: str,
    kinds: dict[str, int],
    locations: list[tuple[int, list[str]]],
) -> None:
    code, report, err = scan_json(capsys, str(DATA / name))
    (scanned,) = report["files"]
    assert scanned["by_kind"] == kinds
    assert [(loc["line"], loc["found"]) for loc in scanned["locations"]] == locations
    assert scanned["status"] == ("found" if kinds else "clean")
    assert code == (1 if kinds else 0)
    assert err == ""


def test_scan_logs_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "scan-logs", str(DATA / "app.log.gz"), str(DATA / "clean.log"))
    assert code == 1
    assert "app.log.gz: 5 identifier(s) on 4 of 8 line(s): msisdn 3, imei 1, imsi 1" in out
    assert f"{DATA / 'app.log.gz'}:6: imei, imsi" in out
    assert "clean.log: clean (4 line(s))" in out
    assert "total: 5 identifier(s) in 1 of 2 file(s)" in out
    assert_no_identifier(out)


def test_scan_logs_errors_win(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    files = [DATA / "app.log", DATA / "binary.bin", tmp_path / "missing.log"]
    code, out, err = run_cli(capsys, "scan-logs", *map(str, files))
    assert code == 2
    assert "binary.bin: error: binary file (NUL bytes in its first 8 KiB), not scanned" in err
    assert "missing.log: error: no such file" in err
    assert "app.log: 5 identifier(s)" in out
    assert "2 file(s) could not be scanned" in out
    assert_no_identifier(out + err)


@pytest.mark.parametrize(
    ("name", "message"),
    [("binary.bin", "binary file"), ("missing.log", "no such file"), (".", "is a directory")],
)
def test_scan_logs_unreadable(capsys: pytest.CaptureFixture[str], name: str, message: str) -> None:
    code, report, _ = scan_json(capsys, str(DATA / name))
    assert code == 2
    assert report["files"][0]["status"] == "error"
    assert message in report["files"][0]["error"]
    assert report["total"]["files_with_errors"] == 1


def test_scan_logs_truncated_gzip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = gzip.compress((DATA / "app.log").read_bytes() * 200)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    code, report, _ = scan_json(capsys, str(path))
    assert code == 2
    assert "gzip data is corrupt or truncated" in report["files"][0]["error"]


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 3 // 4]


def _garbled(data: bytes) -> bytes:
    at = len(data) * 3 // 4
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 64]) + data[at + 64 :]


@pytest.mark.parametrize(
    ("compression", "compress", "damage"),
    [
        ("gzip", gzip.compress, _cut),
        ("bzip2", functools.partial(bz2.compress, compresslevel=1), _garbled),  # OSError
        ("xz", functools.partial(lzma.compress, preset=0), _cut),  # EOFError
        ("xz", functools.partial(lzma.compress, preset=0), _garbled),  # LZMAError
    ],
)
def test_scan_logs_damaged_archive_after_findings(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    compression: str,
    compress: Any,
    damage: Any,
) -> None:
    # A rotated log damaged past its first MiB: what was read is counted, but the file is an
    # error (status and exit 2, not "found"), and the other files are still reported.
    text = (DATA / "app.log").read_bytes() + b"".join(
        b"GET /item/%x 200\n" % i for i in range(2**17)
    )
    path = tmp_path / "rotated.1"
    path.write_bytes(damage(compress(text)))
    code, report, _ = scan_json(capsys, str(path), str(DATA / "clean.log"))
    damaged, clean = report["files"]
    assert code == 2
    assert (damaged["status"], damaged["identifiers"]) == ("error", 5)
    assert damaged["error"].startswith(f"{compression} data is corrupt or truncated after line ")
    assert clean["status"] == "clean"


@pytest.mark.parametrize(("suffix", "compress"), [("bz2", bz2.compress), ("xz", lzma.compress)])
def test_scan_logs_other_compressions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, compress: Any
) -> None:
    path = tmp_path / f"rotated.{suffix}.1"  # recognised by magic bytes, not by name
    path.write_bytes(compress((DATA / "app.log").read_bytes()))
    code, report, _ = scan_json(capsys, str(path))
    assert code == 1
    assert report["files"][0]["by_kind"] == {"msisdn": 3, "imei": 1, "imsi": 1}


def test_scan_logs_text_that_starts_like_a_magic_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """bzip2 is `BZh`, a block size and a block's magic, not any `BZ`: a plain log may start
    with a ticket or job name, even one that spells `BZh`."""
    for first in (b"BZ-4711 started", b"BZh-4711 started", b"BZh9 jobs started"):
        path = tmp_path / "jobs.log"
        path.write_bytes(first + b"\nnotify +61 491 570 006\n")
        code, report, _ = scan_json(capsys, str(path))
        (scanned,) = report["files"]
        assert (code, scanned["compression"], scanned["by_kind"]) == (1, None, {"msisdn": 1})
    for text in (b"", b"notify +61 491 570 006\n"):  # and bzip2 itself, empty or not
        path.write_bytes(bz2.compress(text))
        code, report, _ = scan_json(capsys, str(path))
        assert (code, report["files"][0]["compression"]) == (len(text) > 0, "bzip2")


def test_scan_logs_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO((DATA / "app.jsonl").read_bytes()))
    monkeypatch.setattr("sys.stdin", stdin)
    code, report, _ = scan_json(capsys, "-")
    assert code == 1
    assert report["files"][0]["by_kind"] == {"msisdn": 2}


def test_scan_logs_caps_locations_not_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "many.log"
    path.write_text("".join(f"line {i} to=+61 491 570 {i:03d}\n" for i in range(6, 106)))
    code, out, _ = run_cli(capsys, "scan-logs", "--max-locations", "3", str(path))
    assert code == 1
    assert "100 identifier(s) on 100 of 100 line(s): msisdn 100" in out
    assert len(re.findall(rf"^  {re.escape(str(path))}:\d+: msisdn$", out, re.MULTILINE)) == 3
    assert "… and 97 more line(s)" in out
    _, report, _ = scan_json(capsys, "--max-locations", "3", str(path))
    assert report["files"][0]["locations_truncated"] is True


def test_scan_logs_max_locations_zero_lists_none(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "scan-logs", "--max-locations", "0", str(DATA / "app.log"))
    assert code == 1
    assert not re.search(r"app\.log:\d+:", out)
    assert "… and 4 more line(s)" in out


def test_scan_logs_refuses_a_nul_anywhere_in_the_first_block(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "late-nul.log"
    path.write_bytes(b"hello\n" * 20 + b"\x00" + b"call +1 201 555 0123\n")  # NUL at byte 120
    code, out, err = run_cli(capsys, "scan-logs", str(path))
    assert code == 2
    assert "binary file" in out + err


def test_scan_logs_reads_past_a_nul_after_the_first_block(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Only the start decides "binary": a NUL further on (a line torn by a crash) is text like
    # the rest, and the identifiers after it are counted.
    path = tmp_path / "crashed.log"
    filler = (b"x" * 99 + b"\n") * 10_486  # just over 1 MiB: the NUL opens the second block
    path.write_bytes(filler + b"torn\x00\x00line\ncall +1 201 555 0123\n")
    code, report, _ = scan_json(capsys, str(path))
    (scanned,) = report["files"]
    assert (code, scanned["status"], scanned["by_kind"]) == (1, "found", {"msisdn": 1})
    assert [loc["line"] for loc in scanned["locations"]] == [10_488]


def test_scan_logs_refuses_a_negative_max_locations(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "scan-logs", "--max-locations", "-1", str(DATA / "app.log"))
    assert code == 2
    assert "--max-locations must be 0 or more" in err


def test_scan_logs_locations_name_each_finding_on_its_own_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "two.log"
    path.write_text("a +1 201 555 0123\nb +1 201 555 0124 and +1 201 555 0125\n")
    code, out, _ = run_cli(capsys, "scan-logs", "--max-locations", "1", str(path))
    assert code == 1
    assert re.findall(rf"^  {re.escape(str(path))}:\d+: .*$", out, re.MULTILINE) == [
        f"  {path}:1: msisdn"
    ]


def test_scan_logs_long_lines_across_blocks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A 3 MiB line with numbers around the 1 MiB read boundaries, a line without a newline at
    # the end: every number is found once, on the right line.
    long = bytearray(b"word " * (3 * 1024 * 1024 // 5))
    for offset in (1024 * 1024 - 7, 2 * 1024 * 1024 - 3):
        start = long.rfind(b" ", 0, offset) + 1
        long[start : start + 12] = b"61491570006 "
    path = tmp_path / "long.log"
    path.write_bytes(bytes(long) + b"\nclean\nlast 61491570007")
    code, report, _ = scan_json(capsys, str(path))
    (scanned,) = report["files"]
    assert code == 1
    assert scanned["lines"] == 3
    assert scanned["by_kind"] == {"msisdn": 3}
    assert [loc["line"] for loc in scanned["locations"]] == [1, 3]


def test_scan_logs_compact_json_line_across_blocks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Compact JSON has no spaces: a line longer than a block is cut at its commas or quotes,
    # wherever the 1 MiB mark falls among the numbers.
    mib = 1024 * 1024
    items = b"".join(b'"to":"61491570%03d",' % n for n in range(106, 160)) * 4
    path = tmp_path / "compact.jsonl"
    for shift in range(0, 20, 3):
        line = bytearray(b"w" * (mib + mib // 4))
        start = mib - len(items) // 2 + shift
        line[start : start + len(items)] = items
        path.write_bytes(b'{"a":"' + bytes(line) + b'"}\n')
        code, report, _ = scan_json(capsys, str(path))
        assert (code, report["files"][0]["by_kind"]) == (1, {"msisdn": 4 * 54}), shift


@pytest.mark.parametrize(
    ("unit", "kind"),
    [
        (b"to +61 491 570 %03d ", "msisdn"),  # a number written with spaces, which cut lines
        (b"from +1 201 555 0%03d, ", "msisdn"),
        (b'"x-msisdn": "447700900%03d", ', "msisdn"),  # a name and its value
        (b"x-uidh: T0RBd01EQX%03d; ", "subscriber_token"),
    ],
    ids=["spaced-au", "spaced-nanp", "json-pair", "uidh-pair"],
)
def test_scan_logs_identifiers_across_the_cut_of_a_long_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unit: bytes, kind: str
) -> None:
    # A line longer than the 1 MiB read (a JSON log of a whole response, say) is cut between
    # blocks: wherever the cut falls among identifiers, each is counted, once.
    mib = 1024 * 1024
    band = b" " + b"".join(unit % n for n in range(106, 160)) * 8  # 10-16 KiB
    path = tmp_path / "long.log"
    for shift in range(0, len(unit), 2):
        line = bytearray(b"w" * (mib + mib // 4))
        start = mib - len(band) // 2 + shift
        line[start : start + len(band)] = band
        path.write_bytes(bytes(line) + b"\n")
        code, report, _ = scan_json(capsys, str(path))
        (scanned,) = report["files"]
        assert (code, scanned["by_kind"]) == (1, {kind: 8 * 54}), shift
        assert (scanned["lines"], scanned["lines_with_identifiers"]) == (1, 1)


def test_scan_logs_region_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "national.log"
    path.write_text("call 0491 570 006\n")
    assert scan_json(capsys, str(path))[0] == 0
    monkeypatch.setenv("PRIVACY_GUARD_DEFAULT_REGION", "au")
    assert scan_json(capsys, str(path))[0] == 1


# --- catalog (the proxy drop-lists: test_droplists.py) -------------------------------------------

NAMES = sorted({entry.name for entry in CATALOG.values()} | set(CATALOG))


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_catalog_lists(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run_cli(capsys, "catalog", "--format", fmt)
    assert code == 0
    if fmt == "json":
        assert {row["name"] for row in json.loads(out)["identifying"]} <= set(NAMES)
    else:
        assert "x-up-calling-line-id" in out


# --- run: what it refuses, before any server starts -----------------------------------------------


def write_module(tmp_path: Path, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(source)


RUN_ERRORS = [
    (["no_such_module_4c1e:app"], "no module named 'no_such_module_4c1e'"),
    (["app_without_colon"], "is not MODULE:ATTRIBUTE"),
    (["cli_target_ok:nope"], "module 'cli_target_ok' has no attribute 'nope'"),
    (["cli_target_ok:VALUE"], "is not callable (int), so not an ASGI application"),
    (["cli_target_broken:app"], "importing cli_target_broken failed"),
    (["cli_target_ok:app", "--workers", "0"], "--workers must be at least 1"),
]


@pytest.mark.parametrize(("argv", "message"), RUN_ERRORS)
def test_run_refuses(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    uvicorn_run: list[dict[str, Any]],
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    write_module(tmp_path, "cli_target_ok", "VALUE = 1\nasync def app(scope, r, s): pass\n")
    write_module(
        tmp_path, "cli_target_broken", "raise RuntimeError('no config for msisdn=447700900123')\n"
    )
    monkeypatch.setattr(sys, "path", sys.path[:])
    try:
        code, _, err = run_cli(capsys, "run", *argv, "--app-dir", str(tmp_path))
    finally:
        for name in ("cli_target_ok", "cli_target_broken"):
            sys.modules.pop(name, None)
    assert code == 2
    assert message in err
    assert_no_identifier(err)
    assert uvicorn_run == []  # refused before any server starts


def test_run_and_demo_refuse_a_bad_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVACY_GUARD_MODE", "block")
    monkeypatch.setenv("PRIVACY_GUARD_METRICS_PATH", "/metrics")  # demo's default, undone after
    for argv in (["run", "guard.demo:app"], ["demo"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2
        assert "configuration error: PRIVACY_GUARD_MODE" in err


# --- run and demo: what they hand to uvicorn (uvicorn.run replaced, no server) ------------------


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """Every uvicorn.run call, with the variables the workers read, instead of a server."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    names = (FACTORY_ENV, "PROMETHEUS_MULTIPROC_DIR", "PRIVACY_GUARD_METRICS_PATH")

    def run(app: Any, **options: Any) -> None:
        calls.append({"app": app, **options, **{name: os.environ.get(name) for name in names}})

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unset")  # restored whatever run sets
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setattr(sys, "path", sys.path[:])
    write_module(
        tmp_path,
        "cli_served",
        "from guard import PrivacyGuard\n"
        "async def app(scope, receive, send): pass\n"
        "def make(): return app\n"
        "guarded = PrivacyGuard(app)\n",
    )
    yield calls
    sys.modules.pop("cli_served", None)


# The operator's options, as uvicorn receives them: a default that changed (0.0.0.0, proxy
# headers off) or an option dropped on the way would change what the server exposes or trusts.
DEFAULTS = {
    "host": "127.0.0.1",
    "port": 8000,
    "workers": 1,
    "factory": False,
    "reload": False,
    "proxy_headers": True,
    "forwarded_allow_ips": None,
    "root_path": "",
    "access_log": True,
    "log_config": None,  # uvicorn's own would replace the redacting pipeline's handlers
    "log_level": "info",
    FACTORY_ENV: "0",
}
RUN_OPTIONS = [
    ([], {}),
    (
        ["--host", "0.0.0.0", "--port", "9001", "--no-proxy-headers", "--no-access-log"],
        {"host": "0.0.0.0", "port": 9001, "proxy_headers": False, "access_log": False},
    ),
    (
        ["--forwarded-allow-ips", "10.0.0.0/8", "--root-path", "/api", "--log-level", "warning"],
        {"forwarded_allow_ips": "10.0.0.0/8", "root_path": "/api", "log_level": "warning"},
    ),
    # Several workers import the app by name through the factory, with shared metric files.
    (["--workers", "3"], {"workers": 3, "app": "guard.cli:serve_app", "factory": True}),
]


@pytest.mark.parametrize(("argv", "expected"), RUN_OPTIONS)
def test_run_hands_its_options_to_uvicorn(
    capsys: pytest.CaptureFixture[str],
    uvicorn_run: list[dict[str, Any]],
    tmp_path: Path,
    argv: list[str],
    expected: dict[str, Any],
) -> None:
    code, _, err = run_cli(capsys, "run", "cli_served:app", "--app-dir", str(tmp_path), *argv)
    assert code == 0, err
    (call,) = uvicorn_run
    want = {**DEFAULTS, **expected}
    assert {name: call[name] for name in want if name != "app"} == {
        name: value for name, value in want.items() if name != "app"
    }
    if "app" in expected:
        assert call["app"] == expected["app"]
        assert call["PROMETHEUS_MULTIPROC_DIR"] is not None
        assert not Path(call["PROMETHEUS_MULTIPROC_DIR"]).exists()  # removed when it stopped
    else:
        assert isinstance(call["app"], PrivacyGuard)
        assert call["PROMETHEUS_MULTIPROC_DIR"] is None


def test_run_keeps_the_operators_metrics_directory(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    uvicorn_run: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """Workers must share the directory the operator's Prometheus setup already reads."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    argv = ["run", "cli_served:app", "--app-dir", str(tmp_path), "--workers", "2"]
    assert run_cli(capsys, *argv)[0] == 0
    assert uvicorn_run[0]["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


@pytest.mark.parametrize(
    ("target", "factory"), [("cli_served:make", True), ("cli_served:guarded", False)]
)
def test_run_serves_a_factorys_app_and_a_guard_as_it_is(
    capsys: pytest.CaptureFixture[str],
    uvicorn_run: list[dict[str, Any]],
    tmp_path: Path,
    target: str,
    factory: bool,
) -> None:
    """--factory is called (and said so to the workers); a PrivacyGuard is not wrapped twice."""
    argv = ["run", *(["--factory"] if factory else []), target, "--app-dir", str(tmp_path)]
    assert run_cli(capsys, *argv)[0] == 0
    (call,) = uvicorn_run
    served = sys.modules["cli_served"]
    assert call[FACTORY_ENV] == ("1" if factory else "0")
    if factory:
        assert call["app"].app is served.app
    else:
        assert call["app"] is served.guarded


def test_demo_keeps_the_operators_metrics_path(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    uvicorn_run: list[dict[str, Any]],
) -> None:
    """/metrics is demo's default, not an override; its curl lines then leave /metrics out."""
    monkeypatch.setenv("PRIVACY_GUARD_METRICS_PATH", "/stats")
    code, out, err = run_cli(capsys, "demo")
    assert code == 0, err
    assert uvicorn_run[0]["PRIVACY_GUARD_METRICS_PATH"] == "/stats"
    assert "/metrics" not in out


@pytest.mark.parametrize("command", ["run", "demo", "check", "scan-logs", "catalog"])
def test_help_reads_like_a_manual(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: privacy-guard {command}")
    assert len(out.splitlines()) > 12
    if command != "catalog":
        assert "exit status" in out or "environment" in out


@pytest.mark.parametrize("command", ["run", "demo"])
def test_help_names_every_variable(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    variables = [
        f.name.upper() for f in dataclasses.fields(GuardConfig) if f.metadata.get("env", True)
    ]
    assert len(variables) == 17
    for variable in variables:
        assert f"_{variable}," in out or f"_{variable} configure" in out, variable


def test_console_script_is_installed() -> None:
    result = subprocess.run([BIN / "privacy-guard", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("privacy-guard ")


def test_scan_logs_keeps_few_labels_for_one_line_but_counts_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # One line of many identifiers (a dumped list): exact counts, a bounded list of labels.
    path = tmp_path / "dump.log"
    path.write_text(" ".join(f"+61 491 570 {n:03d}" for n in range(6, 160)) + "\n")

    code, report, _ = scan_json(capsys, str(path))

    scanned = report["files"][0]
    assert (code, scanned["by_kind"]) == (1, {"msisdn": 154})
    assert scanned["locations"] == [{"line": 1, "found": ["msisdn"] * 32 + ["…"]}]
