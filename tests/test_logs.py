"""Logs never see an identifier: the text rule, the structlog processor, the stdlib filter and the
pipeline `configure_logging` builds.

Fictional numbers only: UK drama numbers (447700900xxx, which phonenumbers calls invalid) where a
name decides; Australian +61 491 570 0xx and NANP 555-01xx where the value rule must recognise
the number by itself.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import re
import subprocess
import sys
import unittest.mock
from collections.abc import Callable, Iterator
from typing import Any

import phonenumbers
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from guard import ConfigError, detect
from guard.catalog import CATALOG
from guard.detect import name_rule
from guard.logs import (
    NAME_STEMS,
    SERVER_LOGGERS,
    WITHHELD,
    RedactingFilter,
    Redactor,
    configure_logging,
    find_identifiers,
    redact_identifiers,
    redact_text,
)
from guard.pairs import query_hits

UK = "447700900123"  # only a name can flag it
AU = "61491570006"  # a valid Australian mobile: the value rule flags it anywhere
AU_SPACED = "+61 491 570 006"
NANP = "+1 201 555 0123"
IMSI = "310150123456789"  # MCC 310 (US)
IMEI = "490154203237518"  # Luhn-valid

# --- the text rule: what is redacted -------------------------------------------------------------

REDACTED = [
    # the access log: a number in the query string, by name and by value
    (
        '127.0.0.1:5000 - "GET /pay?msisdn=61491570006&amount=4.99 HTTP/1.1" 200',
        '127.0.0.1:5000 - "GET /pay?msisdn=[msisdn]&amount=4.99 HTTP/1.1" 200',
    ),
    ("GET /cb?to=61491570006 HTTP/1.1", "GET /cb?to=[msisdn] HTTP/1.1"),
    ("GET /cb?to=%2B61491570006 HTTP/1.1", "GET /cb?to=[msisdn] HTTP/1.1"),
    ("GET /pay?X_MSISDN=447700900123&a=1", "GET /pay?X_MSISDN=[msisdn]&a=1"),
    # free text, every way a number is written
    ("call +61 491 570 006 now", "call [msisdn] now"),
    ("call +61-491-570-006.", "call [msisdn]."),
    ("callback tel:+61491570006", "callback [msisdn]"),
    ("callback tel:61491570006", "callback [msisdn]"),  # `tel:` without a plus is the prefix too
    ("call +61 (0)491 570 006 now", "call [msisdn] now"),  # the bracketed trunk 0 is dropped
    ("callback to +1 201 555 0123 at 10:20", "callback to [msisdn] at 10:20"),
    ("callback to +1 (201) 555-0123", "callback to [msisdn]"),
    ("(61491570006)", "([msisdn])"),
    ("status 3 61491570006 done", "status 3 [msisdn] done"),
    # exactly _MAX_GROUPS (12) groups: the sub-runs of every size are still tried
    ("0 0 0 0 0 0 0 0 61 491 570 006", "0 0 0 0 0 0 0 0 [msisdn]"),
    ("order-61491570006", "order-[msisdn]"),
    ("sim 310150123456789 device 490154203237518", "sim [imsi] device [imei]"),
    # an escaped plus sign in a path (the query pass does not see it)
    ("GET /call/%2B61491570006 HTTP/1.1", "GET /call/[msisdn] HTTP/1.1"),
    ("GET /call/%2b61491570006 HTTP/1.1", "GET /call/[msisdn] HTTP/1.1"),
    # the same 12 digits as the request id's last group below, standing alone: a number
    ("req 918123456789 done", "req [msisdn] done"),  # phonenumbers' example mobile for IN
    # identifying names decide, whatever the value looks like
    ("x-msisdn: 447700900123", "x-msisdn: [msisdn]"),
    ("X-Up-Calling-Line-Id: +44 7700 900123", "X-Up-Calling-Line-Id: [msisdn]"),
    ("x-uidh=T0RBd01EQXdNREF3==", "x-uidh=[subscriber_token]"),
    ("msisdn=447700900123 user=alice", "msisdn=[msisdn] user=alice"),
    ('{"x-up-calling-line-id": "447700900123"}', '{"x-up-calling-line-id": "[msisdn]"}'),
    ("{'x-msisdn': '447700900123', 'host': 'a'}", "{'x-msisdn': '[msisdn]', 'host': 'a'}"),
    (
        '{"event": "{\\"x-msisdn\\": \\"447700900123\\"}"}',
        '{"event": "{\\"x-msisdn\\": \\"[msisdn]\\"}"}',
    ),
    ("x-nokia-imsi=310150123456789", "x-nokia-imsi=[imsi]"),
    # query and cookie names only the pair rule (guard.pairs) flags: no header is named so
    ("GET /pay?callingline=447700900123 HTTP/1.1", "GET /pay?callingline=[msisdn] HTTP/1.1"),
    ("cookie: a=1; x_callingline_id=447700900123", "cookie: a=1; x_callingline_id=[msisdn]"),
    # a phonenumbers.PhoneNumber printed by str() or repr(): the national number is too short to
    # be read as one without its label
    (
        "parsed Country Code: 61 National Number: 491570006",
        "parsed Country Code: 61 National Number: [msisdn]",
    ),
    (
        "PhoneNumber(country_code=1, national_number=2015550123, extension=None)",
        "PhoneNumber(country_code=1, national_number=[msisdn], extension=None)",
    ),
    # an identifying pair inside the value of another: a URL, a message, a label
    (
        "redirect to https://shop.example/pay?msisdn=447700900123&a=1",
        "redirect to https://shop.example/pay?msisdn=[msisdn]&a=1",
    ),
    (
        'HTTP Request: GET https://api.example/v1?x-msisdn=447700900123 "HTTP/1.1 200 OK"',
        'HTTP Request: GET https://api.example/v1?x-msisdn=[msisdn] "HTTP/1.1 200 OK"',
    ),
    ("next=/pay?msisdn=447700900123", "next=/pay?msisdn=[msisdn]"),
    ("lookup failed: msisdn=447700900123", "lookup failed: msisdn=[msisdn]"),
    ("headers: x-uidh: abcdef, accept: */*", "headers: x-uidh: [subscriber_token], accept: */*"),
    ("a: b: c: msisdn=447700900123", "a: b: c: msisdn=[msisdn]"),
    # a number followed by a decimal, a version or an address: hypercorn's request line
    # (`GET /path 1.1`), durations, prices
    ('"GET /subscribers/61491570006 1.1" 200', '"GET /subscribers/[msisdn] 1.1" 200'),
    ("sms to 61491570006 0.25s", "sms to [msisdn] 0.25s"),
    ("charged 61491570006 4.99 AUD", "charged [msisdn] 4.99 AUD"),
    ("attach 310150123456789 1.5 from 10.0.0.1", "attach [imsi] 1.5 from 10.0.0.1"),
    # after a backslash escape, as repr() writes a BOM, a zero-width space or a newline
    ("KeyError: '\\ufeff61491570006'", "KeyError: '\\ufeff[msisdn]'"),
    ("ValueError('\\u200b61491570006')", "ValueError('\\u200b[msisdn]')"),
    ("'\\n61491570006' '\\xa061491570006'", "'\\n[msisdn]' '\\xa0[msisdn]'"),
    # every item of an identifying name's list value (`parse_qs`), or comma-separated numbers
    (
        "{'msisdn': ['447700900123', '447700900124'], 'a': ['b', 'c']}",
        "{'msisdn': ['[msisdn]', '[msisdn]'], 'a': ['b', 'c']}",
    ),
    ("msisdn=447700900123,447700900124 ok", "msisdn=[msisdn] ok"),
    # a header as a name/value object: HAR files, gateways, dataclasses
    (
        "[{'name': 'X-UIDH', 'value': 'T0RBd01EQXdNREF3'}, {'name': 'accept', 'value': '*/*'}]",
        "[{'name': 'X-UIDH', 'value': '[subscriber_token]'}, {'name': 'accept', 'value': '*/*'}]",
    ),
    (
        "Header(name='x-msisdn', value='447700900123') name=bob, value=5",
        "Header(name='x-msisdn', value='[msisdn]') name=bob, value=5",
    ),
    # XML elements, as SOAP APIs log them
    ("<msisdn>447700900123</msisdn><id>5</id>", "<msisdn>[msisdn]</msisdn><id>5</id>"),
    (
        '<ns2:MSISDN xsi:type="xsd:string">447700900123</ns2:MSISDN>',
        '<ns2:MSISDN xsi:type="xsd:string">[msisdn]</ns2:MSISDN>',
    ),
    ("<ns:x-wsb-cli>447700900123</ns:x-wsb-cli>", "<ns:x-wsb-cli>[msisdn]</ns:x-wsb-cli>"),
    # command-line options in a logged argv
    ("argv: --msisdn=447700900123 --verbose", "argv: --msisdn=[msisdn] --verbose"),
    ("worker -x-up-subno 447700900123", "worker -x-up-subno [subscriber_token]"),
    # a run that would start at an ISO date's month or day is no number: the date stays whole
    ("2024-01-15 61491570006", "2024-01-15 [msisdn]"),
    ("at 2024-01-15T10:00:00Z 61491570006", "at 2024-01-15T10:00:00Z [msisdn]"),
    ("x_foo_imei: 35-209900-176148-1", "x_foo_imei: [imei]"),
    # a (name, value) pair whose value holds no digit, in a line with no `=` or `:`
    ("headers [('x-uidh', 'abcdef')]", "headers [('x-uidh', '[subscriber_token]')]"),
    # a name and a number 7 digits long, the shortest the blank-separated rule reads
    ("msisdn 7700900 rejected", "msisdn [msisdn] rejected"),
    ("lookup msisdn tel:+447700900123", "lookup msisdn [msisdn]"),
    # a pair written as a JSON list
    ('[["x-msisdn", "447700900123"]]', '[["x-msisdn", "[msisdn]"]]'),
    # uvicorn's access log re-encodes `:`, `;` and `=` in a path; browsers escape the quotes of
    # JSON in a query (GraphQL variables); both cases of the hex digits
    (
        '"GET /v1/subscribers/msisdn%3A447700900123 HTTP/1.1" 200',
        '"GET /v1/subscribers/msisdn%3A[msisdn] HTTP/1.1" 200',
    ),
    (
        '"GET /v1/subscribers%3bx-msisdn%3d447700900123%3Bv%3D2 HTTP/1.1" 200',
        '"GET /v1/subscribers%3bx-msisdn%3d[msisdn]%3Bv%3D2 HTTP/1.1" 200',
    ),
    (
        '"GET /graphql?variables={%22x-msisdn%22:%22447700900123%22,%22n%22:1} HTTP/1.1"',
        '"GET /graphql?variables={%22x-msisdn%22:%22[msisdn]%22,%22n%22:1} HTTP/1.1"',
    ),
    # bracketed groups in a named number: a country code, a trunk 0, an area code
    ("msisdn=+44 (0)7700 900123", "msisdn=[msisdn]"),
    ("msisdn: (020) 7946 0000 ok", "msisdn: [msisdn] ok"),
    ("x-msisdn=(+44) 7700 900123", "x-msisdn=[msisdn]"),
    ("msisdn=(447700900123, 447700900124)", "msisdn=([msisdn], [msisdn])"),
    # a named number at the end of a sentence, or before a path's next segment
    ("SMS sent to msisdn: 07700 900123.", "SMS sent to msisdn: [msisdn]."),
    ("msisdn=07700900123/orders", "msisdn=[msisdn]/orders"),
    # a name and a number joined by an arrow, a slash, a bracket or a bar
    ("msisdn -> 447700900123", "msisdn -> [msisdn]"),
    ("GET /v1/msisdn/447700900123/balance", "GET /v1/msisdn/[msisdn]/balance"),
    ("x-msisdn(447700900123) x-msisdn<447700900124> msisdn|447700900125", None),
    # the value rule: a bracketed country code, a trunk 0 followed by a blank
    ("callback (+61) 491 570 006 queued", "callback [msisdn] queued"),
    ("callback +61 (0) 491 570 006.", "callback [msisdn]."),
    # validation errors: the name is the last item of `loc`, the value is `input`
    (
        "[{'type': 'string_too_long', 'loc': ('query', 'msisdn'), 'msg': 'String should have at"
        " most 5 characters', 'input': '447700900123', 'ctx': {'max_length': 5}}]",
        "[{'type': 'string_too_long', 'loc': ('query', 'msisdn'), 'msg': 'String should have at"
        " most 5 characters', 'input': '[msisdn]', 'ctx': {'max_length': 5}}]",
    ),
    (
        '{"detail":[{"loc":["body",0,"x-msisdn"],"msg":"bad","input":447700900123}]}',
        '{"detail":[{"loc":["body",0,"x-msisdn"],"msg":"bad","input":[msisdn]}]}',
    ),
    (
        "1 validation error for Query\nbody.subscriber.msisdn\n  String should have at most 5"
        " characters [type=string_too_long, input_value='447700900123', input_type=str]",
        "1 validation error for Query\nbody.subscriber.msisdn\n  String should have at most 5"
        " characters [type=string_too_long, input_value='[msisdn]', input_type=str]",
    ),
]

LEFT_ALONE = [
    # timestamps
    "2024-06-10T14:21:05.123456+00:00",
    "2024-06-10 14:21:05,123 INFO started",
    "Mon, 10 Jun 2024 14:21:05 GMT",
    "Jun 10 14:21:07 host app[4242]: ok",
    "epoch 1718032456 ms 1718032456123 us 1718032456123456 ns 1718032456123456789",
    # trace and request IDs
    "traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "dd.trace_id=12345678901234567890",
    "request 123e4567-e89b-12d3-a456-426614174000",
    "id 9b2d7c1e-5d1f-4a44-b1b0-6f1d2a0c9e11",
    "req 123e4567-e89b-12d3-a456-918123456789 done",  # a UUID group is never a number
    "req 123E4567-E89B-12D3-A456-918123456789",
    # prices, ports, addresses, versions, dates
    "total 1299.99 EUR, 4.99 USD, 61491570.06",
    "listening on 127.0.0.1:8000 and [::1]:8443",
    "client 203.0.113.7:51234 via 192.168.100.200",
    "version 2.31.0 build 2024.06.10 kernel 10.4.12345678",
    "due 2024-06-10, 10/06/2024, 20240610",
    # numbers that are part of a token, or no mobile number
    "ab61491570006 61491570006abc x_61491570006 1.61491570006",
    "national 0491 570 006 needs a region",
    # pairs inside values, options: only identifying names count
    "url=https://shop.example/pay?a=b&amount=4.99 opts --verbose=3 --limit=20 note: status=ok",
    "ticket 6149157000 6:20 pm",  # a clock time's hour is no group of the number before it
    "account 99912345678 is no number (no calling code 999)",
    "fixed line 61 2 9876 5432 (bare digits: mobile numbers only)",
    # already redacted, and values that say nothing
    "x-msisdn: [msisdn] msisdn=[msisdn]",
    "x-msisdn=- msisdn=null cli=true",
    # names that only look alike
    "client_id=web-app gclid=abc123 user_id=42 clientip=203.0.113.7",
    # escaped delimiters without an identifying name; `%25` is an escaped `%`, not a delimiter
    '"GET /v1/search?q=a%3Ab%2Cc&x=%22y%22 HTTP/1.1" 200',
    '"GET /v1/msisdn%253A447700900123 HTTP/1.1"',
    # an error's input belongs to its own `loc`, never to the error before it
    "[{'type': 'missing', 'loc': ('query', 'msisdn'), 'msg': 'Field required'}, "
    "{'type': 'int_parsing', 'loc': ('query', 'page'), 'msg': 'x', 'input': '447700900123'}]",
    "msisdn\n  Field required [type=missing, input_value={}, input_type=dict]\npage\n"
    "  Input should be a valid integer [type=int_parsing, input_value='447700900123', "
    "input_type=str]",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_redacts(text: str, expected: str | None) -> None:
    if expected is None:  # every digit gone, whatever the markers look like
        assert not re.search(r"[0-9]", redact_text(text))
    else:
        assert redact_text(text) == expected


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_leaves_alone(text: str) -> None:
    assert find_identifiers(text) == []
    assert redact_text(text) == text


def test_national_numbers_need_a_region() -> None:
    assert redact_text("call 0491 570 006") == "call 0491 570 006"
    assert Redactor(region="AU").text("call 0491 570 006") == "call [msisdn]"


def test_extra_headers_are_names_too() -> None:
    assert Redactor(extra_headers=["X-Loyalty-Id"]).text("x_loyalty_id=ABC") == (
        "x_loyalty_id=[other]"
    )


@pytest.mark.parametrize("written", ["x.loyalty.id=ABC", "X.Loyalty.Id: ABC"])
def test_extra_headers_in_dotted_spelling(written: str) -> None:
    # An extra name holds no name-rule stem: only its folded tokens let the pair pattern run.
    assert "ABC" not in Redactor(extra_headers=["X-Loyalty-Id"]).text(written)


@pytest.mark.parametrize(
    ("region", "text", "expected"),
    [
        # the group before a number is tried apart from it, and the two are not doubled up
        ("AU", "status 3 61 491 570 006", "status 3 [msisdn]"),
        # an ISO date and the number after it are no national number, even with a region
        ("US", "due 2024-06-15 12 items", "due 2024-06-15 12 items"),
        ("US", "on 2024-12-01 10 retries", "on 2024-12-01 10 retries"),
    ],
)
def test_national_reading(region: str, text: str, expected: str) -> None:
    assert Redactor(region=region).text(text) == expected


@pytest.mark.parametrize(
    ("region", "plus"),
    [
        ("SG", ""),  # 10 bare digits: long enough to be read without a region
        ("FK", "+"),  # 8 digits after a plus: short, but international
    ],
)
def test_short_international_numbers(region: str, plus: str) -> None:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    digits = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    assert redact_text(f"call {plus}{digits} now") == "call [msisdn] now"


def test_long_texts_keep_catalog_names_without_a_stem() -> None:
    # Past _LINES_FROM only the lines holding a stem or a catalog name are searched for pairs;
    # `x-wsb-cli` holds no stem.
    text = "a" * 5000 + "\nx-wsb-cli: abcdef\n"
    assert redact_text(text).endswith("\nx-wsb-cli: [msisdn]\n")


def test_matches_say_where_and_what_never_the_value() -> None:
    text = "to=61491570006 x-msisdn: 447700900123"
    matches = find_identifiers(text)
    assert [(text[m.start : m.end], m.kind, m.rule, m.name) for m in matches] == [
        (AU, "msisdn", "value", None),
        (UK, "msisdn", "name", "x-msisdn"),
    ]


def test_redaction_is_idempotent() -> None:
    for text, _ in REDACTED:
        once = redact_text(text)
        assert redact_text(once) == once, text


def test_name_stems_cover_the_name_rules() -> None:
    # The cheap pre-check must let through every name detect's name rule flags.
    for stem in detect._STEM_KIND:
        assert any(part in stem for part in NAME_STEMS), stem
        assert name_rule(f"x-{stem}") is not None


# How logs write a header (or parameter, cookie, option) and its value.
WRITTEN_PAIRS = [
    "{name}: {value}",
    "{name}:{value}",
    "{name}={value}",
    "{name} = {value}",
    '{name}="{value}"',
    '{{"{name}": "{value}"}}',
    "[('{name}', '{value}')]",
    "{name} {value}",
    "GET /pay?a=1&{name}={value} HTTP/1.1",
    "cookie: a=b; {name}={value}",
    "note: {name}: {value}",
    "url=https://shop.example/pay?{name}={value}&a=1",
    "argv --{name}={value}",
    "argv --{name} {value}",
    "<{name}>{value}</{name}>",
    "<ns2:{name}>{value}</ns2:{name}>",
    "GET /subscribers/{name}%3A{value} HTTP/1.1",
    "GET /subscribers%3B{name}%3D{value} HTTP/1.1",
    "GET /graphql?variables={{%22{name}%22:%22{value}%22}} HTTP/1.1",
    "[{{'type': 'string_too_long', 'loc': ('query', '{name}'), 'msg': 'x', 'input': '{value}'}}]",
    "1 validation error for Query\n{name}\n  x [type=string_too_long, input_value='{value}', x=y]",
]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_catalog_name_as_logs_write_it(name: str) -> None:
    # UK: a number only the name can flag. Upper case and underscores too; and far down a long
    # text, where only the lines holding a name are searched.
    spellings = {name, name.upper(), name.replace("-", "_")}
    texts = [form.format(name=n, value=UK) for form in WRITTEN_PAIRS for n in spellings]
    texts.append("x" * 5000 + f"\n{name}: {UK}\n")
    leaks = [text[-72:] for text in texts if UK in redact_text(text)]
    assert leaks == []


# A valid number as people write one after a name: whatever the name, separator and what follows,
# none of its digits may remain (the name flags the value; the value rule reads it too).
WRITTEN_NUMBERS = [
    AU,
    f"+{AU}",
    AU_SPACED,
    "+61-491-570-006",
    "+61 (0)491 570 006",
    "+61 (0) 491 570 006",
    "(+61) 491 570 006",
    "61 491 570 006",
    "61%20491%20570%20006",
    "tel:+61491570006",
    "%2B61491570006",
    "+61 4915 70006",
    NANP,
    "+1 (201) 555-0123",
    "+1 201-555-0123",
]
NUMBER_SEPARATORS = [": ", "=", ":", " = ", '="', "='", ": (", "=[", " ", "\t", " -> ", "/"]
NUMBER_ENDS = ["", " ok", "&a=1", "'", '"', ")", "]", ",x", ".", "/b"]


@pytest.mark.parametrize("number", WRITTEN_NUMBERS)
def test_a_named_number_leaves_no_digit_behind(number: str) -> None:
    digits = re.sub(r"[^0-9]", "", number.replace("%20", " ").replace("%2B", "+"))
    leaks = []
    for name in ("msisdn", "X_UP_CALLING_LINE_ID"):
        for separator in NUMBER_SEPARATORS:
            for end in NUMBER_ENDS:
                text = f"a {name}{separator}{number}{end} z"
                if digits[-7:] in re.sub(r"[^0-9]", "", redact_text(text)):
                    leaks.append(text)
    assert leaks == []


PAIR_NAME_PARTS = st.lists(
    st.sampled_from(["x", "up", "calling", "line", "callingline", "id", "lineid", "imeisv", "sim"]),
    min_size=1,
    max_size=4,
)


@given(PAIR_NAME_PARTS, st.sampled_from(["-", "_"]), st.sampled_from(["?", "&", "; "]))
def test_what_the_middleware_flags_in_a_query_or_cookie_no_log_line_shows(
    parts: list[str], joiner: str, before: str
) -> None:
    # The access log prints the query string the guard only reports, and apps log Cookie headers:
    # a name the pair rule flags there must be a name the log rules redact, however it is spelt.
    name = joiner.join(parts)
    if not query_hits(f"{name}={UK}".encode()):
        return
    assert UK not in redact_text(f"GET /pay{before}{name}={UK} HTTP/1.1")


def test_validation_errors_as_pydantic_and_fastapi_write_them() -> None:
    # An app that logs why a request was rejected writes the field's name in `loc` and the
    # client's value in `input`, apart: as text (str), as `errors()` (repr, JSON) or structured.
    from fastapi.exceptions import RequestValidationError
    from pydantic import BaseModel, Field, ValidationError

    class Subscriber(BaseModel):
        msisdn: str = Field(max_length=5)
        x_up_subno: int

    with pytest.raises(ValidationError) as caught:
        Subscriber.model_validate({"msisdn": UK, "x_up_subno": "ab447700900124"})
    error = caught.value
    request = RequestValidationError(
        [{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]
    )
    texts = [str(error), repr(error.errors()), error.json(), str(request)]
    for text in texts:
        redacted = redact_text(text)
        assert "447700900" not in redacted, text
        assert redacted.count("[msisdn]") == 1, redacted
        assert "[subscriber_token]" in redacted, redacted
    event = redact_identifiers(None, "info", {"event": "422", "errors": error.errors()})
    assert "447700900" not in repr(event)


@pytest.mark.parametrize(
    "number",
    [
        phonenumbers.parse(f"+{AU}"),
        phonenumbers.parse(NANP),
        phonenumbers.example_number_for_type("IT", phonenumbers.PhoneNumberType.FIXED_LINE),
    ],
    ids=["AU", "NANP", "IT-leading-zero"],
)
@pytest.mark.parametrize("render", [str, repr])
def test_a_printed_phonenumber_is_redacted(
    number: phonenumbers.PhoneNumber, render: Callable[[object], str]
) -> None:
    # `log.info(f"parsed {number}")`, `%r`, an exception message: text, no longer an object.
    text = f"could not bill {render(number)}"
    redacted = redact_text(text)
    assert str(number.national_number) not in redacted
    assert redacted.count("[msisdn]") == 1


FICTIONAL = st.integers(6, 159).map(lambda n: f"491570{n:03d}")
WRITTEN = st.sampled_from(
    [
        lambda d: f"+61{d}",
        lambda d: f"61{d}",
        lambda d: f"+61 {d[:3]} {d[3:6]} {d[6:]}",
        lambda d: f"tel:+61{d}",
        lambda d: f"+61-{d[:3]}-{d[3:]}",
        lambda d: f"%2B61{d}",
    ]
)
# What separates the number from the words around it: glued to a letter it is part of a token
# (`ab61491570006`), which the rule leaves alone by design.
AROUND = st.sampled_from([" ", "=", ": ", '"', "(", ",", "/", "?to=", "[", "\n", "'", "\t"])
WORDS = st.text(alphabet="abcdefghij ,;:=&\"'", max_size=12)


@given(FICTIONAL, WRITTEN, AROUND, AROUND, WORDS, WORDS)
def test_a_valid_mobile_number_never_survives(
    digits: str, written: Callable[[str], str], before: str, after: str, left: str, right: str
) -> None:
    number = written(digits)
    text = f"{left}{before}{number}{after}{right}"
    redacted = redact_text(text)
    assert digits[3:] not in re.sub(r"\D", "", redacted), redacted


# --- the structlog processor ----------------------------------------------------------------------


_LEFT_ALONE = {
    "event": "order",
    "timestamp": "2024-06-10T14:21:05.123Z",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "amount": 1299.99,
    "port": 8000,
    "order_id": 1718032456123,
    "ok": True,
    "none": None,
    "x-msisdn": None,
    "msisdn": "",  # empty says nothing, like None
}

PROCESSED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"event": "request", "headers": {"x-msisdn": UK, "host": "shop.example"}},
        {"event": "request", "headers": {"x-msisdn": "[msisdn]", "host": "shop.example"}},
    ),
    (
        {"event": "request", "headers": [("x-up-calling-line-id", UK), ("accept", "*/*")]},
        {"event": "request", "headers": [("x-up-calling-line-id", "[msisdn]"), ("accept", "*/*")]},
    ),
    (
        {"event": "raw", "headers": [(b"x-msisdn", UK.encode()), (b"host", b"a")]},
        {"event": "raw", "headers": [(b"x-msisdn", b"[msisdn]"), (b"host", b"a")]},
    ),
    ({"event": "lookup", "msisdn": int(AU)}, {"event": "lookup", "msisdn": "[msisdn]"}),
    ({"event": f"callback to {NANP}"}, {"event": "callback to [msisdn]"}),
    (
        {"event": "x", "query": f"msisdn={AU}&a=1", "path": "/pay"},
        {"event": "x", "query": "msisdn=[msisdn]&a=1", "path": "/pay"},
    ),
    (
        {"event": "nested", "a": [{"b": ({"x-imsi": IMSI},)}], "c": {IMEI}},
        {"event": "nested", "a": [{"b": ({"x-imsi": "[imsi]"},)}], "c": {"[imei]"}},
    ),
    # client-chosen keys: control characters, a number in a name
    (
        {"event": "h", "headers": {"x-61491570006-id": "1", "x-a\r\nInjected": "2"}},
        {"event": "h", "headers": {"x-#-id": "1", "x-ainjected": "2"}},
    ),
    # names a client sent, logged as headers, cookies or query: shown as the guard shows names
    (
        {"event": "h", "headers": {"X-Custom-12": "v"}, "not-headers": {"X-Custom-12": "v"}},
        {"event": "h", "headers": {"x-custom-#": "v"}, "not-headers": {"X-Custom-12": "v"}},
    ),
    (
        {"event": "h", "request_headers": [(b"X-Foo-9", b"v"), (b"x-imei", b"35-209900-176148-1")]},
        {"event": "h", "request_headers": [(b"x-foo-#", b"v"), (b"x-imei", b"[imei]")]},
    ),
    (
        {"event": "h", "headers": {"X-Foo-9": "v", "x-msisdn": UK}.items()},
        {"event": "h", "headers": [("x-foo-#", "v"), ("x-msisdn", "[msisdn]")]},
    ),
    (
        {"event": "h", "raw_headers": [(b"X-Foo-9", b"v")], "response_cookies": {"S-1": "v"}},
        {"event": "h", "raw_headers": [(b"x-foo-#", b"v")], "response_cookies": {"s-#": "v"}},
    ),
    # other keys: only when they hold control characters or a phone number's worth of digits
    (
        {"event": "k", "ids": {"k1234567": 1, "k123456": 2, "a\r\nB": 3}},
        {"event": "k", "ids": {"k#": 1, "k123456": 2, "ab": 3}},
    ),
    # a top-level key made safe replaces the original, not sits beside it
    ({"event": "k", "x-a\r\nB": 1}, {"event": "k", "x-ab": 1}),
    # nesting deeper than a few levels keeps its structure
    (
        {"event": "n", "a": {"b": {"c": {"d": {"e": [f"to {AU}"]}}}}},
        {"event": "n", "a": {"b": {"c": {"d": {"e": ["to [msisdn]"]}}}}},
    ),
    # bytes-like values come back as bytes
    ({"event": "b", "body": bytearray(b"to 61491570006")}, {"event": "b", "body": b"to [msisdn]"}),
    # a header as a name/value object (HAR, gateways): the value is the named header's
    (
        {"event": "h", "headers": [{"name": "X-UIDH", "value": "T0RBd01EQXdNREF3"}]},
        {"event": "h", "headers": [{"name": "X-UIDH", "value": "[subscriber_token]"}]},
    ),
    (
        {"event": "h", "header": {"name": "accept", "value": "*/*", "comment": "x"}},
        {"event": "h", "header": {"name": "accept", "value": "*/*", "comment": "x"}},
    ),
    # a validation error (pydantic's `errors()`): its input is the value of `loc`'s field
    (
        {"event": "422", "errors": [{"loc": ("query", "msisdn"), "msg": "x", "input": UK}]},
        {"event": "422", "errors": [{"loc": ("query", "msisdn"), "msg": "x", "input": "[msisdn]"}]},
    ),
    (
        {"event": "422", "errors": [{"loc": ["body", 0, "x-imei"], "input": b"4901542032"}]},
        {"event": "422", "errors": [{"loc": ["body", 0, "x-imei"], "input": b"[imei]"}]},
    ),
    (
        {"event": "422", "errors": [{"loc": ("query", "page"), "input": "4"}, {"loc": ()}]},
        {"event": "422", "errors": [{"loc": ("query", "page"), "input": "4"}, {"loc": ()}]},
    ),
    # left alone
    (dict(_LEFT_ALONE), _LEFT_ALONE),  # a copy: the processor redacts in place
    # the guard's own pseudonym header holds no number: it is meant for the app and its logs
    (
        {"event": "h", "headers": {"x-privacy-guard-pseudonym": "v1.AAAAAAAAAAAAAAAAAAAAAA"}},
        {"event": "h", "headers": {"x-privacy-guard-pseudonym": "v1.AAAAAAAAAAAAAAAAAAAAAA"}},
    ),
]


@pytest.mark.parametrize(("event", "expected"), PROCESSED)
def test_processor(event: dict[str, Any], expected: dict[str, Any]) -> None:
    out = redact_identifiers(None, "info", event)
    assert out is event  # the same dict, redacted in place, as structlog expects
    assert out == expected


def test_processor_redacts_an_event_that_is_no_mapping() -> None:
    # After a renderer the event is a string; a processor placed there still redacts it.
    assert redact_identifiers(None, "info", f"to {AU}") == "to [msisdn]"
    assert redact_identifiers(None, "info", f"to {AU}".encode()) == b"to [msisdn]"


def test_processor_leaves_exc_info_to_the_formatter() -> None:
    try:
        raise ValueError(f"bad {AU}")
    except ValueError:
        info = sys.exc_info()
    event = {"event": "failed", "exc_info": info}
    assert redact_identifiers(None, "error", event)["exc_info"] is info
    rendered = structlog.processors.format_exc_info(None, "error", {"exc_info": info})
    assert AU not in redact_identifiers(None, "error", rendered)["exception"]


def test_processor_in_a_structlog_chain() -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[redact_identifiers, structlog.processors.JSONRenderer()],
    )
    logger.info("request", headers={"x-msisdn": UK}, path=f"/pay?msisdn={AU}")
    assert json.loads(out.getvalue()) == {
        "event": "request",
        "headers": {"x-msisdn": "[msisdn]"},
        "path": "/pay?msisdn=[msisdn]",
    }


def test_objects_are_redacted_as_rendered() -> None:
    class Request:
        def __repr__(self) -> str:
            return f"<Request to={AU}>"

    class Plain:
        pass

    plain = Plain()
    out = redact_identifiers(None, "info", {"event": "e", "request": Request(), "plain": plain})
    assert out["request"] == "<Request to=[msisdn]>"
    assert out["plain"] is plain


# --- the stdlib filter --------------------------------------------------------------------------


def record(msg: Any, *args: Any, **attrs: Any) -> logging.LogRecord:
    rec = logging.LogRecord("test", logging.INFO, __file__, 1, msg, args or None, None)
    rec.__dict__.update(attrs)
    return rec


FILTERED = [
    # uvicorn.access: the request line is an argument
    (
        record('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/pay?msisdn={AU}", "1.1", 200),
        '127.0.0.1:5000 - "GET /pay?msisdn=[msisdn] HTTP/1.1" 200',
    ),
    (record(f"charging {AU}"), "charging [msisdn]"),
    (
        record("headers %s", {"x-msisdn": UK, "host": "a"}),
        "headers {'x-msisdn': '[msisdn]', 'host': 'a'}",
    ),
    (record("headers %(x-msisdn)s", {"x-msisdn": UK}), "headers [msisdn]"),
    (record("header %s: %s", "x-up-calling-line-id", UK), "header x-up-calling-line-id: [msisdn]"),
    (record("number %d", int(AU)), "number [msisdn]"),
    (record("billing msisdn=%s", UK), "billing msisdn=[msisdn]"),
    (record("header x-msisdn: %s", UK), "header x-msisdn: [msisdn]"),
    # gunicorn and hypercorn access atoms for request headers: `%({x-uidh}i)s`
    (
        record(
            '"%(r)s" %({x-uidh}i)s %({x-wsb-cli}i)s',
            {"r": "GET /", "{x-uidh}i": "T0RBd01EQXdNREF3", "{x-wsb-cli}i": UK},
        ),
        '"GET /" [subscriber_token] [msisdn]',
    ),
    (record(ValueError(f"cannot bill {AU}")), "cannot bill [msisdn]"),  # a msg that is no str
    (record("billing %(msisdn)s", {"msisdn": UK}), "billing [msisdn]"),
    (record("list %r", [(b"x-msisdn", UK.encode())]), "list [(b'x-msisdn', b'[msisdn]')]"),
    # left alone
    (record("Started server process [%d]", 4242), "Started server process [4242]"),
    (
        record("Uvicorn running on %s://%s:%d", "http", "127.0.0.1", 8000),
        "Uvicorn running on http://127.0.0.1:8000",
    ),
    (
        record("took %.3fs for order %d", 0.0123, 1718032456123),
        "took 0.012s for order 1718032456123",
    ),
]


@pytest.mark.parametrize(("rec", "expected"), FILTERED)
def test_filter(rec: logging.LogRecord, expected: str) -> None:
    assert RedactingFilter().filter(rec) is True
    assert rec.getMessage() == expected


def test_filter_redacts_exceptions_stack_and_extras() -> None:
    try:
        raise ValueError(f"cannot bill {AU}")
    except ValueError:
        info = sys.exc_info()
    rec = logging.LogRecord(
        "app", logging.ERROR, __file__, 1, "failed", None, info, sinfo=f"at {AU}"
    )
    rec.headers = {"x-msisdn": UK}
    assert RedactingFilter().filter(rec)
    text = logging.Formatter("%(message)s %(headers)s").format(rec)
    assert AU not in text
    assert UK not in text
    assert "cannot bill [msisdn]" in text
    assert "at [msisdn]" in text
    assert rec.headers == {"x-msisdn": "[msisdn]"}


def test_filter_never_drops_and_fails_closed() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError(AU)

    rec = record(Broken())
    assert RedactingFilter().filter(rec) is True
    assert rec.getMessage() == WITHHELD


def test_filter_withholds_the_stack_too() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError(AU)

    rec = logging.LogRecord("app", logging.ERROR, __file__, 1, Broken(), None, None, sinfo=AU)
    assert RedactingFilter().filter(rec)
    assert rec.getMessage() == WITHHELD
    assert rec.stack_info is None


def test_filter_redacts_exception_text_another_handler_cached() -> None:
    # A handler that formatted the record first left its traceback in `exc_text`, which every
    # later Formatter prints as it is.
    try:
        raise ValueError(f"cannot bill {AU}")
    except ValueError:
        info = sys.exc_info()
    rec = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", None, info)
    logging.Formatter().format(rec)
    assert rec.exc_text is not None
    assert AU in rec.exc_text
    assert RedactingFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert AU not in text
    assert "cannot bill [msisdn]" in text


def test_filter_runs_once_per_record() -> None:
    rec = record("to %s", AU)
    first = RedactingFilter()
    assert first.filter(rec)
    assert RedactingFilter().filter(rec)
    assert rec.getMessage() == "to [msisdn]"


# --- configure_logging --------------------------------------------------------------------------


@pytest.fixture
def pristine_logging() -> Iterator[None]:
    """Undo configure_logging: root handlers and level, server loggers' filters, the record
    factory, daphne's access-log writer, structlog."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {name: logging.getLogger(name).filters[:] for name in SERVER_LOGGERS}
    factory = logging.getLogRecordFactory()
    yield
    daphne = getattr(sys.modules.get("daphne.access"), "AccessLogGenerator", None)
    if daphne is not None and hasattr(daphne.write_entry, "__wrapped__"):
        daphne.write_entry = daphne.write_entry.__wrapped__
    logging.setLogRecordFactory(factory)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
    root.setLevel(level)
    for name, kept in filters.items():
        logging.getLogger(name).filters = kept
    structlog.reset_defaults()


def configured(stream: io.StringIO, **env: str) -> None:
    environ = {f"PRIVACY_GUARD_{k.upper()}": v for k, v in env.items()}
    configure_logging(stream=stream, environ=environ)


@pytest.mark.usefixtures("pristine_logging")
def test_a_handler_installed_later_prints_records_redacted() -> None:
    """Litestar's dictConfig replaces the root's handlers when the app is built; Django puts a
    console handler on the `django` logger. Neither carries the filter; records reach them
    redacted all the same, exceptions and stacks included."""
    configured(io.StringIO())
    configured(io.StringIO())  # again: one factory, not two
    stream = io.StringIO()
    late = logging.StreamHandler(stream)
    late.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    kept = root.handlers[:]
    root.handlers = [late]
    django = logging.getLogger("django.request")
    try:
        logging.getLogger("app").warning("sms to %s failed", AU_SPACED)
        try:
            raise KeyError(f"no subscriber {AU}")
        except KeyError:
            django.exception("Not Found: /subscribers/%s", AU, stack_info=True)
    finally:
        root.handlers = kept
    out = stream.getvalue()
    assert "app sms to [msisdn] failed" in out
    assert "django.request Not Found: /subscribers/[msisdn]" in out
    assert "KeyError: 'no subscriber [msisdn]'" in out
    assert "Stack (most recent call last)" in out
    assert AU not in out
    assert "491 570 006" not in out
    factory = logging.getLogRecordFactory()
    assert not isinstance(factory.inner, type(factory))  # type: ignore[attr-defined]


@pytest.mark.usefixtures("pristine_logging")
def test_records_the_factory_redacted_are_not_redacted_again_but_others_are() -> None:
    """The filter leaves what the factory redacted and still redacts `extra` (set after the
    factory) and a record `makeLogRecord` filled from a dict after the factory made it empty."""
    configured(io.StringIO())
    log_filter = RedactingFilter()
    made = logging.getLogger("app").makeRecord(
        "app", logging.INFO, __file__, 1, "sms to %s", (AU,), None, extra={"msisdn": UK}
    )
    assert made.getMessage() == "sms to [msisdn]"
    assert made.__dict__["msisdn"] == UK  # extra: set after the factory
    args = made.args
    assert log_filter.filter(made)
    assert made.args is args  # not redacted a second time
    assert made.__dict__["msisdn"] == "[msisdn]"

    filled = logging.makeLogRecord({"msg": "sms to %s", "args": (AU,), "name": "remote"})
    assert log_filter.filter(filled)
    assert filled.getMessage() == "sms to [msisdn]"


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_json() -> None:
    stream = io.StringIO()
    configured(stream)
    structlog.get_logger("app").info("request", headers={"x-msisdn": UK}, query=f"msisdn={AU}")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/?to={AU}", "1.1", 200
    )
    logging.getLogger("app.std").warning("callback %s", NANP, extra={"headers": {"x-imsi": IMSI}})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "request",
        '127.0.0.1:5000 - "GET /?to=[msisdn] HTTP/1.1" 200',
        "callback [msisdn]",
    ]
    assert lines[0]["headers"] == {"x-msisdn": "[msisdn]"}
    assert lines[0]["query"] == "msisdn=[msisdn]"
    assert lines[2]["headers"] == {"x-imsi": "[imsi]"}
    assert [line["logger"] for line in lines] == ["app", "uvicorn.access", "app.std"]
    assert all(line["timestamp"] and line["level"] for line in lines)


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_filters_records_before_they_are_rendered() -> None:
    # `%s` renders a PhoneNumber as "Country Code: 61 National Number: 491570006", which no text
    # rule reads as a number: only the handler's filter, which sees the argument, replaces it.
    # The handler is called directly: pytest's own root handlers got the filter too.
    stream = io.StringIO()
    configured(stream)
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "privacy-guard"]
    handler.handle(record("parsed %s", phonenumbers.parse(f"+{AU}")))
    assert json.loads(stream.getvalue())["event"] == "parsed [msisdn]"


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_redacts_a_phonenumber_structlog_formats_as_text() -> None:
    # structlog's PositionalArgumentsFormatter prints the argument before the redactor sees it.
    stream = io.StringIO()
    configured(stream)
    structlog.get_logger("app").info("parsed %s", phonenumbers.parse(f"+{AU}"))
    event = json.loads(stream.getvalue())["event"]
    assert event == "parsed Country Code: 61 National Number: [msisdn]"


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_formats_structlog_arguments_before_redacting() -> None:
    # A number argument becomes a marker only after `%d` has formatted it.
    stream = io.StringIO()
    configured(stream)
    structlog.get_logger("app").info("order for %d", int(AU))
    assert json.loads(stream.getvalue())["event"] == "order for [msisdn]"


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_shows_extras_but_not_private_or_pipeline_fields() -> None:
    # uvicorn's `color_message` (an ANSI copy of the format), the filter's own `_…` mark and an
    # extra that would overwrite a field the pipeline sets stay out of the line.
    stream = io.StringIO()
    configured(stream)
    logging.getLogger("app.server").info(
        "Started %s",
        "worker",
        extra={"color_message": "Started \x1b[36m%s\x1b[0m", "order": 42, "logger": "forged"},
    )
    line = json.loads(stream.getvalue())
    assert set(line) == {"event", "level", "logger", "timestamp", "order"}
    assert line["logger"] == "app.server"
    assert line["order"] == 42


@pytest.mark.usefixtures("pristine_logging")
def test_one_pipeline_console_with_exceptions() -> None:
    stream = io.StringIO()
    configured(stream, log_format="console")
    try:
        raise ValueError(f"cannot bill {AU}")
    except ValueError:
        logging.getLogger("app").exception("failed for msisdn=%s", UK)
        structlog.get_logger("app").exception("failed", msisdn=UK)
    text = stream.getvalue()
    assert "cannot bill [msisdn]" in text
    assert AU not in text
    assert UK not in text
    assert not text.lstrip().startswith("{")


@pytest.mark.usefixtures("pristine_logging")
def test_level_region_and_extra_names_from_the_environment() -> None:
    stream = io.StringIO()
    configured(stream, log_level="warning", default_region="AU", extra_headers="x-loyalty")
    logging.getLogger("app").info("hidden %s", AU)
    logging.getLogger("app").warning("national 0491 570 006 x-loyalty=ABC")
    assert stream.getvalue().count("\n") == 1
    assert "national [msisdn] x-loyalty=[other]" in stream.getvalue()


@pytest.mark.usefixtures("pristine_logging")
def test_idempotent() -> None:
    for _ in range(3):
        configured(io.StringIO())
    root = logging.getLogger()
    assert [h.get_name() for h in root.handlers].count("privacy-guard") == 1
    for name in SERVER_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RedactingFilter) for f in filters) == 1, name


@pytest.mark.usefixtures("pristine_logging")
def test_daphnes_access_log_is_redacted_once_however_often_logging_is_configured() -> None:
    # daphne writes its access log to a stream itself, outside `logging`; its command line has
    # imported it before the app module calls configure_logging().
    from daphne.access import AccessLogGenerator

    original = AccessLogGenerator.write_entry
    stream = io.StringIO()
    log = AccessLogGenerator(stream)
    for _ in range(2):  # configured again: daphne's writer is wrapped once, not twice
        configured(io.StringIO())
    assert AccessLogGenerator.write_entry.__wrapped__ is original  # type: ignore[attr-defined]

    request = {"client": "203.0.113.7:5000", "method": "GET", "path": f"/pay?msisdn={UK}"}
    log("http", "complete", {**request, "status": 200, "size": 2})
    log("websocket", "connected", {"client": "203.0.113.7:5001", "path": f"/ws?to={AU}"})
    with unittest.mock.patch.object(Redactor, "text", side_effect=RuntimeError):
        log.write_entry("203.0.113.7:5002", datetime.datetime.now(), f"GET /?msisdn={UK}")

    lines = stream.getvalue().splitlines()
    assert '"GET /pay?msisdn=[msisdn]" 200 2' in lines[0]
    assert '"WSCONNECT /ws?to=[msisdn]"' in lines[1]
    assert f'"{WITHHELD}"' in lines[2]  # fails closed
    assert UK not in stream.getvalue()
    assert AU not in stream.getvalue()


@pytest.mark.usefixtures("pristine_logging")
def test_existing_handlers_get_the_filter() -> None:
    theirs = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(theirs)
    server = logging.StreamHandler(io.StringIO())
    logging.getLogger("gunicorn.access").addHandler(server)
    try:
        configured(io.StringIO())
        assert any(isinstance(f, RedactingFilter) for f in theirs.filters)
        assert any(isinstance(f, RedactingFilter) for f in server.filters)
    finally:
        logging.getLogger().removeHandler(theirs)
        logging.getLogger("gunicorn.access").removeHandler(server)


@pytest.mark.usefixtures("pristine_logging")
def test_bad_environment_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PRIVACY_GUARD_LOG_FORMAT"):
        configured(io.StringIO(), log_format="xml")


def test_importing_configures_nothing() -> None:
    code = (
        "import logging, structlog, guard, guard.logs, guard.cli\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "assert not structlog.is_configured()\n"
        "assert all(not logging.getLogger(n).filters for n in guard.logs.SERVER_LOGGERS)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
