"""Identifiers the log rules must see through: percent-encoded query strings (what a server's
access log keeps), `(name, value)` pairs written as text, structured values a renderer shows
differently from their type, and what `RedactingFilter` alone must cover.

Every shape runs through each way a line is written: `redact_text`, the structlog processor with
JSONRenderer, `RedactingFilter` with a real `logging.Formatter` (uvicorn's `AccessFormatter` for
the access line), and `find_identifiers` / `scan_file`, what `privacy-guard scan-logs` uses.

Fictional numbers only: UK drama numbers (447700900xxx, invalid to phonenumbers: a name decides)
and Australian +61 491 570 0xx (the value rule knows them); IMEI 490154203237518.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import structlog
from uvicorn.logging import AccessFormatter

from guard.logs import (
    WITHHELD,
    RedactingFilter,
    Redactor,
    find_identifiers,
    redact_identifiers,
    redact_text,
)
from guard.logscan import scan_file

UK = "447700900123"
UIDH = "T0RBd01EQXdNREF3"
IMEISV = "4901542032375101"

# (text, what must vanish, the marker it becomes). The secret is the digits (or token) as they
# stand in the text, so "gone" means the text no longer holds them however they were written.
SHAPES = [
    # F2 — encoded parameter names, decoded as the middleware decodes them (guard/pairs.py)
    ("GET /pay?ms%69sdn=447700900123&a=1 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?im%65isv=4901542032375101 HTTP/1.1", IMEISV, "imei"),
    ("GET /pay?x%2Dmsisdn=447700900123 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?msisdn%5B%5D=447700900123 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?MS%49SDN=447700900123 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?x+msisdn=447700900123 HTTP/1.1", UK, "msisdn"),
    # bracketed names
    ("GET /pay?subscriber[msisdn]=447700900123&a=1 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?dev[imeisv]=4901542032375101 HTTP/1.1", IMEISV, "imei"),
    ("GET /pay?dev%5Bimeisv%5D=4901542032375101 HTTP/1.1", IMEISV, "imei"),
    # valid numbers behind an encoded separator
    ("GET /cb?to=%3D61491570006 HTTP/1.1", "61491570006", "msisdn"),
    ("GET /cb?to=61%20491%20570%20007 HTTP/1.1", "61%20491%20570%20007", "msisdn"),
    ("GET /cb?to=%2B61%20491%20570%20008 HTTP/1.1", "61%20491%20570%20008", "msisdn"),
    ("GET /cb?to=+61+491+570+006 HTTP/1.1", "61+491+570+006", "msisdn"),
    ("GET /cb?to=61491570006%2C61491570007 HTTP/1.1", "61491570007", "msisdn"),
    ("GET /cb?to=61491570009%3B61491570010&a=1 HTTP/1.1", "61491570010", "msisdn"),
    ("GET /cb?next=%2Fpay%3Fto%3D61491570011 HTTP/1.1", "61491570011", "msisdn"),
    ("GET /cb?next=%2Fpay%3Fmsisdn%3D447700900123 HTTP/1.1", UK, "msisdn"),
    ("lookup msisdn%3D61491570012 failed", "61491570012", "msisdn"),
    # in a path, right after an escape whose two characters are digits (%20, %28, %40)
    ("GET /sms/call%2061491570013 HTTP/1.1", "61491570013", "msisdn"),
    ("GET /u/%4061491570014 HTTP/1.1", "61491570014", "msisdn"),
    ("GET /c/a%2861491570015%29 HTTP/1.1", "61491570015", "msisdn"),
    # a path's spaces, as an access log re-encodes them
    ("GET /search/61%20491%20570%20016 HTTP/1.1", "61%20491%20570%20016", "msisdn"),
    ("GET /s/status%203%2061491570017 HTTP/1.1", "61491570017", "msisdn"),
    ("query=ms%69sdn=447700900123&a=1", UK, "msisdn"),  # logfmt: the query is a value
    # F3 — (name, value) pairs written as text
    ("headers [('x-uidh', 'T0RBd01EQXdNREF3')]", UIDH, "subscriber_token"),
    ("raw [(b'x-msisdn', b'447700900123'), (b'host', b'a')]", UK, "msisdn"),
    ("headers dict_items([('x_msisdn', '447700900123')])", UK, "msisdn"),
    ("ValueError('x-msisdn', '447700900123')", UK, "msisdn"),
    ("msisdn: ['447700900123']", UK, "msisdn"),
    ("{'msisdn': ['447700900123']}", UK, "msisdn"),
    ('{"x-msisdn": ["447700900123"]}', UK, "msisdn"),
    ('[["x-imsi", "310150123456789"]]', "310150123456789", "imsi"),
    ('"event": "raw [(\\"x-msisdn\\", \\"447700900123\\")]"', UK, "msisdn"),
    # a name and a number after blanks, or in parentheses
    ("lookup failed for msisdn 447700900123", UK, "msisdn"),
    ("X-IMEISV\t4901542032375101 rejected", IMEISV, "imei"),
    ("mdn 447700900123: no account", UK, "msisdn"),
    ("retry msisdn=(447700900123)", UK, "msisdn"),
    # a bytes literal as the value of a dict repr: `dict(scope["headers"])`
    ("{b'x-uidh': b'T0RBd01EQXdNREF3', b'host': b'a'}", UIDH, "subscriber_token"),
    # names only the middleware's own decoding flags (guard.pairs: `callingline`), or that an
    # encoded space (`+`) around them hides
    ("GET /pay?calling%6Cine=447700900123 HTTP/1.1", UK, "msisdn"),
    ("GET /pay?+x-wsb-cl%69=447700900123 HTTP/1.1", UK, "msisdn"),
    # an encoded pair in a value with few digits: the `=` it spells decides, not a digit count
    ("GET /cb?next=%3Fx-uidh%3DT0RBd01EQXdNREF3 HTTP/1.1", UIDH, "subscriber_token"),
    # a query pair whose value runs past an identifying pair found first: one span, the longer
    ("msisdn: to=a,+61+491+570+007", "61+491+570+007", "msisdn"),
]
SHAPE_IDS = [text[:48] for text, _, _ in SHAPES]

# Ordinary lines: nothing here is an identifier, and nothing may change.
LEFT_ALONE = [
    "copied 3 files to [dest] with a=[ and b=(",
    "msisdn lookup failed after 3 retries",
    "the msisdn 12 chars long",
    "imei check at 2024-01-15 10:20:30",
    "GET /search?q=hello%20world HTTP/1.1",
    "GET /search?q=hello+world&lang=en HTTP/1.1",
    "GET /list?page=2&sort=asc HTTP/1.1",
    "GET /o?id=123e4567-e89b-12d3-a456-426614174000&x=%20 HTTP/1.1",
    "GET /r?from=2024-01-15T10%3A00%3A00Z&to=2024-01-16T10%3A00%3A00%2B01%3A00 HTTP/1.1",
    "GET /f?path=%2Fusers%2F12345%2Fprofile&ref=%2Fhome HTTP/1.1",
    "GET /a?filter[status]=active&filter[date]=2024-06-10&sort[0]=name HTTP/1.1",
    "GET /a?ts=1718032456123&tz=%2B0100&n=1000000%2C2000000 HTTP/1.1",
    "GET /a?amount=1299.99%20EUR&utm_source=google+ads+2024 HTTP/1.1",
    "GET /cb?redirect=https%3A%2F%2Fshop.example%2Fcb%3Fid%3D42%26ts%3D1718032456 HTTP/1.1",
    "GET /a?sig=abc%2Bdef%3D%3D&token=AbC123%2B456%2F789%3D HTTP/1.1",
    "GET /a?t=%201718032456&tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 HTTP/1.1",
    "GET /a?ip=203.0.113.7%3A51234&v=2.31.0&date=10%2F06%2F2024 HTTP/1.1",
    "GET /a?ids=12345678%2C23456789%2C34567890 HTTP/1.1",
    "GET /a?f=%4161491570006 HTTP/1.1",  # an escaped letter: `A61491570006` is a token
    # format strings, names that are lists of names, redacted lines
    "billing msisdn=%s amount=%(amount)s",
    "names ['x-msisdn', 'x-imsi']",
    "GET /pay?ms%69sdn=[msisdn]&to=[msisdn] HTTP/1.1",
    "[('x-uidh', '[subscriber_token]')] msisdn: ['[msisdn]']",
    # prose is no pair
    "msisdn, imsi and imei are names",
]


def gone(text: str, secret: str, kind: str) -> None:
    assert secret not in text, text
    assert f"[{kind}]" in text, text


# --- the text rule and scan-logs ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES, ids=SHAPE_IDS)
def test_redact_text(text: str, secret: str, kind: str) -> None:
    redacted = redact_text(text)
    gone(redacted, secret, kind)
    assert redact_text(redacted) == redacted  # idempotent


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES, ids=SHAPE_IDS)
def test_find_identifiers(text: str, secret: str, kind: str) -> None:
    matches = find_identifiers(text)
    at = text.index(secret)
    assert any(m.start <= at and at + len(secret) <= m.end and m.kind == kind for m in matches)
    spans = [(m.start, m.end) for m in matches]
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlaps


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert find_identifiers(text) == []
    assert redact_text(text) == text


def test_scan_file_counts_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [json.dumps({"event": f'127.0.0.1:5000 - "{text}" 200'}) for text, _, _ in SHAPES]
    log.write_text("\n".join([*lines, *LEFT_ALONE]) + "\n")
    result = scan_file(str(log), Redactor(), max_locations=100)
    assert result.error is None
    assert result.lines_with_findings == len(SHAPES)
    assert [line for line, _ in result.locations] == list(range(1, len(SHAPES) + 1))


# --- the structlog processor ----------------------------------------------------------------------


def render(**event: Any) -> str:
    out = redact_identifiers(None, "info", {"event": "e", **event})
    return str(structlog.processors.JSONRenderer()(None, "info", out))


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES, ids=SHAPE_IDS)
def test_processor_text(text: str, secret: str, kind: str) -> None:
    rendered = render(path=text)
    gone(json.loads(rendered)["path"], secret, kind)


class Shown:
    def __init__(self, text: str) -> None:
        self.text = text

    def __structlog__(self) -> str:
        return self.text


class Printed:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


STRUCTURED = [
    ("items view", {"h": {"x_msisdn": UK}.items()}, UK, "msisdn"),
    ("bytes items", {"h": {b"x-uidh": UIDH.encode()}.items()}, UIDH, "subscriber_token"),
    ("values view", {"h": {"a": "+61 491 570 006"}.values()}, "491 570 006", "msisdn"),
    ("exception", {"err": ValueError("x-msisdn", UK)}, UK, "msisdn"),
    ("list under a name", {"msisdn": [UK]}, UK, "msisdn"),
    ("int key", {"m": {61491570006: "x"}}, "61491570006", "msisdn"),
    ("float key", {"m": {61491570007.0: "x"}}, "61491570007", "msisdn"),
    ("whole float", {"n": 61491570008.0}, "61491570008", "msisdn"),
    ("__structlog__", {"obj": Shown("+61491570009")}, "61491570009", "msisdn"),
    ("PhoneNumber", {"p": phonenumbers.parse("+61491570010")}, "491570010", "msisdn"),
    ("query bytes", {"q": b"ms%69sdn=447700900123&a=1"}, UK, "msisdn"),
]


@pytest.mark.parametrize(
    ("event", "secret", "kind"), [row[1:] for row in STRUCTURED], ids=[r[0] for r in STRUCTURED]
)
def test_processor_structured(event: dict[str, Any], secret: str, kind: str) -> None:
    gone(render(**event), secret, kind)


STRUCTURED_LEFT_ALONE: list[tuple[str, Any]] = [
    ("price", 1299.99),
    ("small whole float", 8000.0),
    ("not whole", 61491570006.5),
    ("infinity", float("inf")),
    ("int key", {8000: "port"}),
    ("__structlog__", Shown("order 42")),
]


@pytest.mark.parametrize(
    "value", [row[1] for row in STRUCTURED_LEFT_ALONE], ids=[r[0] for r in STRUCTURED_LEFT_ALONE]
)
def test_processor_leaves_structured_values_alone(value: Any) -> None:
    before = str(structlog.processors.JSONRenderer()(None, "info", {"event": "e", "v": value}))
    assert render(v=value) == before


# --- RedactingFilter on its own -----------------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    """A logger with one handler: RedactingFilter and a real Formatter, nothing else."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_log_encoded")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES, ids=SHAPE_IDS)
def test_filter_text(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler], text: str, secret: str, kind: str
) -> None:
    logger, stream, _ = logged
    logger.info("as an argument: %s", text)
    logger.info(text)  # no args: the message is not %-formatted
    first, second = stream.getvalue().splitlines()
    gone(first, secret, kind)
    gone(second, secret, kind)


@pytest.mark.parametrize(("text", "secret", "kind"), SHAPES[:24], ids=SHAPE_IDS[:24])
def test_filter_uvicorn_access_record(text: str, secret: str, kind: str) -> None:
    method, target, _ = text.split(" ") if text.startswith("GET ") else ("GET", text, "")
    rec = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, target, "1.1", 200),
        None,
    )
    assert RedactingFilter().filter(rec)
    assert isinstance(rec.args, tuple)  # AccessFormatter unpacks five of them
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(rec)
    gone(line, secret, kind)
    assert line.startswith('127.0.0.1:5000 - "GET ')
    assert line.endswith('HTTP/1.1" 200 OK')


def test_filter_uvicorn_access_record_left_alone() -> None:
    args = ("127.0.0.1:5000", "GET", "/search?q=hello%20world&page=2", "1.1", 200)
    rec = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s %s %s %s %d", args, None
    )
    assert RedactingFilter().filter(rec)
    assert rec.args == args


def test_filter_extra_attributes_by_name(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = logged
    handler.setFormatter(
        logging.Formatter("%(message)s %(msisdn)s %(x_uidh)s %(imeisv)s %(x_msisdn)s %(note)s")
    )
    extra = {"msisdn": UK, "x_uidh": UIDH, "imeisv": IMEISV, "x_msisdn": None, "note": "ok"}
    logger.info("subscriber seen", extra=extra)
    assert stream.getvalue() == "subscriber seen [msisdn] [subscriber_token] [imei] None ok\n"


FILTER_ARGS: list[tuple[str, str, tuple[Any, ...] | dict[str, Any], str, str]] = [
    # (b) what `%s` prints, not the repr
    ("__str__", "callback to %s", (Printed("+61 491 570 006"),), "491 570 006", "msisdn"),
    ("PhoneNumber", "parsed %s", (phonenumbers.parse("+61491570006"),), "491570006", "msisdn"),
    ("PhoneNumber %r", "parsed %r", (phonenumbers.parse("+61491570006"),), "491570006", "msisdn"),
    ("items view", "headers %s", ({"x_uidh": UIDH}.items(),), UIDH, "subscriber_token"),
    ("whole float", "to %s", (61491570006.0,), "61491570006", "msisdn"),
    ("whole float %f", "to %f", (61491570006.0,), "61491570006", "msisdn"),
    ("int %d", "to %d", (61491570006,), "61491570006", "msisdn"),
    ("float %.0f", "to %.0f", (61491570006.4,), "61491570006", "msisdn"),
    ("negative %f", "to %f", (-61491570006,), "61491570006", "msisdn"),
    ("exception", "failed: %s", (ValueError("x-msisdn", UK),), UK, "msisdn"),
    # (c) name and value in separate mapping arguments
    ("split mapping", "header %(n)s=%(v)s", {"n": "x-msisdn", "v": UK}, UK, "msisdn"),
    ("split mapping, colon", "%(n)s: %(v)s", {"n": "X-UIDH", "v": UIDH}, UIDH, "subscriber_token"),
    ("named key", "billing %(msisdn)s", {"msisdn": UK}, UK, "msisdn"),
    ("named key %d", "billing %(msisdn)d", {"msisdn": int(UK)}, UK, "msisdn"),
    ("named key %d, float", "billing %(msisdn)d", {"msisdn": float(UK)}, UK, "msisdn"),
    ("mapping by value", "to %(to)s", {"to": "+61 491 570 006"}, "491 570 006", "msisdn"),
]


@pytest.mark.parametrize(
    ("msg", "args", "secret", "kind"),
    [row[1:] for row in FILTER_ARGS],
    ids=[r[0] for r in FILTER_ARGS],
)
def test_filter_arguments(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler],
    msg: str,
    args: tuple[Any, ...] | dict[str, Any],
    secret: str,
    kind: str,
) -> None:
    logger, stream, _ = logged
    if isinstance(args, dict):
        logger.info(msg, args)
    else:
        logger.info(msg, *args)
    gone(stream.getvalue(), secret, kind)


def test_filter_mapping_args_render_once_for_gunicorn() -> None:
    # gunicorn's access log: a mapping of atoms and a plain Formatter.
    atoms = {"h": "127.0.0.1", "r": "GET /pay?ms%69sdn=447700900123 HTTP/1.1", "s": "200"}
    rec = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s', (atoms,), None
    )
    assert RedactingFilter().filter(rec)
    assert rec.args is None
    line = logging.Formatter("%(message)s").format(rec)
    assert line == '127.0.0.1 "GET /pay?ms%69sdn=[msisdn] HTTP/1.1" 200'


def test_filter_mapping_args_that_need_their_originals() -> None:
    # Dict subclasses with their own lookup (gunicorn's SafeAtoms) are rendered as they are.
    class Atoms(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return "-"

    rec = logging.LogRecord(
        "gunicorn.access",
        logging.INFO,
        __file__,
        1,
        "%(h)s %({x-msisdn}i)s %({referer}i)s",
        (Atoms({"h": "127.0.0.1", "{x-msisdn}i": UK}),),
        None,
    )
    assert RedactingFilter().filter(rec)
    assert logging.Formatter("%(message)s").format(rec) == "127.0.0.1 [msisdn] -"


def test_filter_mapping_args_that_do_not_render_stay_redacted_by_key() -> None:
    rec = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "lookup %(missing)s", ({"msisdn": UK},), None
    )
    assert RedactingFilter().filter(rec)
    assert rec.args == {"msisdn": "[msisdn]"}  # the formatter reports the KeyError, not a number


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        ("Started server process [%d]", (4242,), "Started server process [4242]"),
        (
            "took %.3fs for %s",
            (0.0123, "GET /search?q=a%20b"),
            "took 0.012s for GET /search?q=a%20b",
        ),
        ("%(a)s=%(b)s", {"a": "page", "b": "2"}, "page=2"),
        ("object %s", (Printed("order 42"),), "object order 42"),
        ("ratio %s", (1e6 + 0.5,), "ratio 1000000.5"),
    ],
)
def test_filter_leaves_arguments_alone(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler],
    msg: str,
    args: tuple[Any, ...] | dict[str, Any],
    expected: str,
) -> None:
    logger, stream, _ = logged
    if isinstance(args, dict):
        logger.info(msg, args)
    else:
        logger.info(msg, *args)
    assert stream.getvalue() == expected + "\n"


def test_a_list_value_cut_at_its_quote_keeps_its_brackets() -> None:
    # The query pass sees `msisdn=[` (its run stops at the quote): no value there to replace.
    assert redact_text("msisdn=['61 491 570 006']") == "msisdn=['[msisdn]']"


class _BrokenHook:
    def __structlog__(self) -> str:
        raise RuntimeError("no rendering")

    def __repr__(self) -> str:
        return "<broken 61491570006>"


def test_a_failing_structlog_hook_falls_back_to_the_repr() -> None:
    event = redact_identifiers(None, "info", {"event": "e", "thing": _BrokenHook()})
    assert event["thing"] == "<broken [msisdn]>"


def test_the_processor_fails_closed_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Redactor, text: str) -> str:
        raise RuntimeError("redaction failed")

    monkeypatch.setattr(Redactor, "text", broken)
    event = redact_identifiers(None, "info", {"event": "to 61491570006"})
    assert event == {"event": WITHHELD}


def test_a_lone_surrogate_in_an_encoded_name_is_no_error() -> None:
    # Text decoded with `surrogateescape` (file names, raw bytes) can hold one.
    text = "GET /pay?ms%69sdn\udcff=61491570006 HTTP/1.1"
    assert "61491570006" not in redact_text(text)
    assert [m.kind for m in find_identifiers(text)] == ["msisdn"]
