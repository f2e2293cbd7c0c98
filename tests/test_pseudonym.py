"""Pseudonymous tokens: `x-privacy-guard-pseudonym` instead of the number, and no forgeries.

The expected tokens are computed here, independently of `guard.pseudonym`, from the documented
formula: "v1." + base64url(HMAC-SHA256(key, kind + ":" + identifier))[:22]. All numbers are
fictional (+61 491 570 0xx, +1 201 555 01xx, UK 447700900xxx where the header name decides).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import re
import sys
import time
from typing import Any

import httpx
import phonenumbers
import pytest
from conftest import RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry
from support import clean_env, free_port, serve

from guard import ConfigError, Finding, GuardConfig, PrivacyGuard

KEY = bytes(range(32)).hex()  # 64 hex characters = 32 bytes
OLD_KEY = bytes(range(100, 140)).hex()  # 40 bytes
HEADER = b"x-privacy-guard-pseudonym"
PREVIOUS = b"x-privacy-guard-pseudonym-previous"
TOKEN = re.compile(rb"v1\.[A-Za-z0-9_-]{22}")

AU_E164 = "+61491570006"
IMSI = b"001010123456789"  # MCC 001: the ITU test network
IMEI = b"490154203237518"  # Luhn-valid example IMEI
IMEISV = b"4901542032375101"  # the same device's TAC + serial number, software version 01


def expected(key_hex: str, kind: str, identifier: str) -> bytes:
    mac = hmac.new(bytes.fromhex(key_hex), f"{kind}:{identifier}".encode(), hashlib.sha256)
    return b"v1." + base64.urlsafe_b64encode(mac.digest())[:22]


def guard_for(**config: Any) -> tuple[PrivacyGuard, RecordingApp, CollectorRegistry]:
    app = RecordingApp()
    registry = CollectorRegistry()
    return PrivacyGuard(app, config=GuardConfig(**config), registry=registry), app, registry


def seen(headers: list[tuple[bytes, bytes]], **config: Any) -> dict[str, Any]:
    """The scope the app saw for one request with `headers`."""
    guard, app, _ = guard_for(**config)
    call(guard, http_scope(headers))
    return app.scope


def tokens(scope: dict[str, Any], name: bytes = HEADER) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def token_for(value: bytes, name: bytes = b"x-msisdn", **config: Any) -> bytes:
    found = tokens(seen([(name, value)], pseudonym_key=KEY, **config))
    assert len(found) == 1, found
    return found[0]


def token_for_key(value: bytes, key: str) -> bytes:
    return tokens(seen([(b"x-msisdn", value)], pseudonym_key=key))[0]


# --- the token ---------------------------------------------------------------------------------


def test_token_is_the_documented_hmac_of_the_e164_number() -> None:
    value = token_for(b"+61 491 570 006")

    assert TOKEN.fullmatch(value)
    assert value == expected(KEY, "msisdn", AU_E164)


def test_same_subscriber_same_token_across_requests_and_guards() -> None:
    first, app_one, _ = guard_for(pseudonym_key=KEY)
    second, app_two, _ = guard_for(pseudonym_key=KEY)
    for guard in (first, first, second, second):
        call(guard, http_scope([(b"accept", b"*/*"), (b"x-msisdn", b"61491570006")]))

    values = [tokens(scope)[0] for scope in app_one.scopes + app_two.scopes]
    assert values == [expected(KEY, "msisdn", AU_E164)] * 4


def test_different_subscribers_get_different_tokens() -> None:
    numbers = [f"+61 491 570 {n:03d}".encode() for n in range(6, 26)]

    values = [token_for(number) for number in numbers]

    assert len(set(values)) == len(numbers)


def test_different_keys_give_different_tokens() -> None:
    assert token_for(b"61491570006") != token_for_key(b"61491570006", OLD_KEY)


@pytest.mark.parametrize(
    ("value", "region"),
    [
        (b"61491570006", None),
        (b"+61491570006", None),
        (b"+61 491 570 006", None),
        (b"+61-491-570-006", None),
        (b"tel:+61-491-570-006", None),
        (b" 61491570006 ", None),
        (b"61491570006, 61491570007", None),  # a list: the first item
        (b"61491570006", "AU"),
        (b"+61 491 570 006", "AU"),
        (b"0491 570 006", "AU"),
        (b"0491570006", "AU"),
        (b"0491-570-006", "AU"),
    ],
)
def test_spellings_of_one_number_share_a_token(value: bytes, region: str | None) -> None:
    assert token_for(value, default_region=region) == expected(KEY, "msisdn", AU_E164)


@pytest.mark.parametrize(
    "value", [b"201-555-0123", b"(201) 555-0123", b"201 555 0123", b"2015550123"]
)
def test_national_number_in_a_region_without_trunk_prefix_is_read_in_that_region(
    value: bytes,
) -> None:
    # A NANP national number is also a valid *international* reading for another country
    # ("2015550123" = +20 15550123, Egypt): with PRIVACY_GUARD_DEFAULT_REGION=US the operator
    # said which one is meant, and the token must match "+1 201 555 0123".
    assert token_for(value, default_region="US") == token_for(b"+1 201 555 0123")


def test_imei_and_imeisv_of_one_device_share_a_token() -> None:
    imei = token_for(IMEI, name=b"x-imei")
    imeisv = token_for(IMEISV, name=b"x-up-3gpp-imeisv")

    assert imei == imeisv == expected(KEY, "imei", IMEI[:14].decode())


def test_imsi_token_is_made_from_its_digits() -> None:
    assert token_for(IMSI, name=b"x-imsi") == expected(KEY, "imsi", IMSI.decode())


def test_value_rule_number_in_an_unknown_header_gets_a_token() -> None:
    scope = seen([(b"x-acme-contact", b"+61 491 570 006")], pseudonym_key=KEY)

    assert tokens(scope) == [expected(KEY, "msisdn", AU_E164)]
    assert scope["privacy_guard"] == (Finding("x-acme-contact", "msisdn", "replaced", "value"),)


@pytest.mark.parametrize("region", [None, "GB"])
def test_a_bare_invalid_number_is_tokenised_by_its_digits_whatever_its_spelling(
    region: str | None,
) -> None:
    # 447700900123 is a fictional UK number phonenumbers calls invalid: no E.164, its digits,
    # also where the default region could read it as national.
    spellings = (b"447700900123", b"+44 7700 900123", b"tel:+447700900123")
    values = {token_for(v, default_region=region) for v in spellings}

    assert values == {expected(KEY, "msisdn", "447700900123")}


def test_an_invalid_national_number_is_tokenised_by_its_digits() -> None:
    """The default region reads `0…` as national, but only a valid number becomes E.164."""
    assert token_for(b"07700 900123", default_region="GB") == expected(KEY, "msisdn", "07700900123")


@pytest.mark.parametrize("region", ["FK", "AD", "TV"])
def test_a_short_international_number_is_tokenised_as_e164(region: str) -> None:
    """Eight and nine digits with the calling code (+500 51234) are whole E.164 numbers too."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert len(e164) - 1 in (8, 9)

    assert token_for(e164[1:].encode()) == token_for(e164.encode()) == expected(KEY, "msisdn", e164)


# --- which identifier the token is made from ----------------------------------------------------

IDENTIFIERS = [
    (b"x-imei", IMEI),
    (b"x-imsi", IMSI),
    (b"x-msisdn", b"61491570006"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(IDENTIFIERS)))
def test_msisdn_wins_whatever_the_header_order(
    order: tuple[tuple[bytes, bytes], ...],
) -> None:
    scope = seen([(b"accept", b"*/*"), *order], pseudonym_key=KEY)

    assert scope["headers"] == [(b"accept", b"*/*"), (HEADER, expected(KEY, "msisdn", AU_E164))]
    assert {f.action for f in scope["privacy_guard"]} == {"replaced"}


@pytest.mark.parametrize("order", list(itertools.permutations(IDENTIFIERS[:2])))
def test_imsi_wins_over_imei(order: tuple[tuple[bytes, bytes], ...]) -> None:
    assert tokens(seen(list(order), pseudonym_key=KEY)) == [expected(KEY, "imsi", IMSI.decode())]


def test_first_msisdn_line_wins_among_several() -> None:
    scope = seen(
        [(b"x-msisdn", b"+61 491 570 007"), (b"x-up-calling-line-id", b"61491570006")],
        pseudonym_key=KEY,
    )

    assert tokens(scope) == [expected(KEY, "msisdn", "+61491570007")]


def test_an_msisdn_without_digits_does_not_cost_the_imsi_token() -> None:
    # Some gateways send a placeholder ("unknown", "none") when they have no number: the token
    # should then come from the next identifier, not vanish.
    scope = seen([(b"x-msisdn", b"unknown"), (b"x-imsi", IMSI)], pseudonym_key=KEY)

    assert tokens(scope) == [expected(KEY, "imsi", IMSI.decode())]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-acme-contact", b"1234567, +61 491 570 006"),  # the value rule matched item two
        (b"x-msisdn", b"unknown, 61491570006"),
    ],
)
def test_token_is_made_from_the_item_that_is_a_number(name: bytes, value: bytes) -> None:
    assert token_for(value, name=name) == expected(KEY, "msisdn", AU_E164)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-msisdn", b"unknown")],
        [(b"x-uidh", b"T0RBd01EQXdNREF3")],  # a subscriber token, not a number
    ],
)
def test_no_token_without_a_usable_identifier(headers: list[tuple[bytes, bytes]]) -> None:
    scope = seen([(b"accept", b"*/*"), *headers], pseudonym_key=KEY)

    assert scope["headers"] == [(b"accept", b"*/*")]
    assert {f.action for f in scope["privacy_guard"]} == {"removed"}


def test_clean_request_gets_no_token_and_the_same_list() -> None:
    headers = [(b"accept", b"*/*"), (b"user-agent", b"Mozilla/5.0")]
    guard, app, _ = guard_for(pseudonym_key=KEY)

    call(guard, http_scope(headers))

    assert app.scope["headers"] is headers


def test_websocket_scope_gets_a_token_too() -> None:
    guard, app, _ = guard_for(pseudonym_key=KEY)
    scope = http_scope([(b"x-msisdn", b"61491570006")], scope_type="websocket")

    call(guard, scope, [{"type": "websocket.connect"}])

    assert tokens(app.scope) == [expected(KEY, "msisdn", AU_E164)]


# --- key rotation -----------------------------------------------------------------------------


def test_rotation_adds_the_previous_token_as_the_old_key_made_it() -> None:
    scope = seen(
        [(b"x-msisdn", b"+61 491 570 006")], pseudonym_key=KEY, pseudonym_key_previous=OLD_KEY
    )

    assert tokens(scope) == [expected(KEY, "msisdn", AU_E164)]
    assert tokens(scope, PREVIOUS) == [token_for_key(b"61491570006", OLD_KEY)]
    assert tokens(scope, PREVIOUS) == [expected(OLD_KEY, "msisdn", AU_E164)]


def test_no_previous_header_without_a_previous_key() -> None:
    assert tokens(seen([(b"x-msisdn", b"61491570006")], pseudonym_key=KEY), PREVIOUS) == []


# --- forged pseudonym headers --------------------------------------------------------------------

FORGED_NAMES = [
    b"x-privacy-guard-pseudonym",
    b"X-Privacy-Guard-Pseudonym",
    b"x_privacy_guard_pseudonym",
    b"X.PRIVACY.GUARD.PSEUDONYM",
    b"x-privacy-guard-pseudonym-previous",
    b"X_Privacy_Guard_Pseudonym_Previous",
]
SETUPS = [
    pytest.param({}, id="strip-no-key"),
    pytest.param({"mode": "report"}, id="report-no-key"),
    pytest.param({"pseudonym_key": KEY}, id="strip-key"),
    pytest.param({"mode": "report", "pseudonym_key": KEY}, id="report-key"),
    pytest.param(
        {"pseudonym_key": KEY, "pseudonym_key_previous": OLD_KEY}, id="strip-key-previous"
    ),
    pytest.param(
        {"allow_headers": ("x-privacy-guard-pseudonym", "x-privacy-guard-pseudonym-previous")},
        id="strip-allow-listed",
    ),
    pytest.param(
        {
            "mode": "report",
            "pseudonym_key": KEY,
            "allow_headers": ("X_PRIVACY_GUARD_PSEUDONYM", "x-privacy-guard-pseudonym-previous"),
        },
        id="report-key-allow-listed",
    ),
    pytest.param({"scan_values": "off"}, id="scan-off"),
]


def folded(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-").replace(b".", b"-")


@pytest.mark.parametrize("config", SETUPS)
@pytest.mark.parametrize("name", FORGED_NAMES)
def test_client_sent_pseudonym_is_always_removed(name: bytes, config: dict[str, Any]) -> None:
    guard, app, registry = guard_for(**config)
    forged = b"v1.AAAAAAAAAAAAAAAAAAAAAA"

    call(guard, http_scope([(b"accept", b"*/*"), (name, forged)]))

    assert app.scope["headers"] == [(b"accept", b"*/*")]
    label = folded(name).decode()
    assert app.scope["privacy_guard"] == (Finding(label, "subscriber_token", "removed", "catalog"),)
    labels = {"header": label, "kind": "subscriber_token", "action": "removed"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1


@pytest.mark.parametrize("name", FORGED_NAMES)
def test_forged_pseudonym_is_replaced_by_the_genuine_one(name: bytes) -> None:
    scope = seen(
        [(name, b"v1.AAAAAAAAAAAAAAAAAAAAAA"), (b"x-msisdn", b"61491570006")],
        pseudonym_key=KEY,
        pseudonym_key_previous=OLD_KEY,
    )

    assert scope["headers"] == [
        (HEADER, expected(KEY, "msisdn", AU_E164)),
        (PREVIOUS, expected(OLD_KEY, "msisdn", AU_E164)),
    ]


# --- findings and metrics --------------------------------------------------------------------


def test_replaced_lines_are_counted_as_replaced() -> None:
    guard, app, registry = guard_for(pseudonym_key=KEY)
    headers = [
        (b"x-msisdn", b"61491570006"),
        (b"x-imsi", IMSI),
        (b"x-imei", IMEI),
        (b"x-uidh", b"T0RBd01EQXdNREF3"),
        (b"x-privacy-guard-pseudonym", b"forged"),
    ]

    call(guard, http_scope(headers))

    assert app.scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "replaced", "catalog"),
        Finding("x-imsi", "imsi", "replaced", "catalog"),
        Finding("x-imei", "imei", "replaced", "catalog"),
        Finding("x-uidh", "subscriber_token", "removed", "catalog"),
        Finding("x-privacy-guard-pseudonym", "subscriber_token", "removed", "catalog"),
    )
    for header, kind, action in [
        ("x-msisdn", "msisdn", "replaced"),
        ("x-imsi", "imsi", "replaced"),
        ("x-imei", "imei", "replaced"),
        ("x-uidh", "subscriber_token", "removed"),
        ("x-privacy-guard-pseudonym", "subscriber_token", "removed"),
    ]:
        labels = {"header": header, "kind": kind, "action": action}
        assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1, labels
    removed = {"header": "x-msisdn", "kind": "msisdn", "action": "removed"}
    assert not registry.get_sample_value("privacy_guard_identifiers_total", removed)


@pytest.mark.parametrize(("key", "replaced"), [(KEY, 0.0), (None, None)])
def test_replaced_series_read_zero_from_start_up_only_with_a_key(
    key: str | None, replaced: float | None
) -> None:
    """Dashboards show 0, not "No data", for replaced lines before the first one: the series
    exist from start-up when a key is set, and not at all without one."""
    _, _, registry = guard_for(pseudonym_key=key)

    for kind in ("msisdn", "imsi", "imei"):
        labels = {"header": "other", "kind": kind, "action": "replaced"}
        assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == replaced
        removed = {"header": "other", "kind": kind, "action": "removed"}
        assert registry.get_sample_value("privacy_guard_identifiers_total", removed) == 0


def test_report_mode_with_a_key_adds_no_token() -> None:
    headers = [(b"x-msisdn", b"61491570006"), (b"x-imsi", IMSI)]

    scope = seen(headers, mode="report", pseudonym_key=KEY)

    assert scope["headers"] == headers
    assert {f.action for f in scope["privacy_guard"]} == {"reported"}


def test_value_hits_that_are_only_reported_get_no_token() -> None:
    headers = [(b"x-acme-contact", b"+61 491 570 006")]

    scope = seen(headers, pseudonym_key=KEY, scan_values="report")

    assert scope["headers"] == headers
    assert scope["privacy_guard"] == (Finding("x-acme-contact", "msisdn", "reported", "value"),)


def test_token_survives_an_inner_guard() -> None:
    # Outer: strip with a key, value hits only reported; inner: strip everything. The inner guard
    # removes what the outer one reported — but the outer guard's own token is not a forgery.
    inner_app = RecordingApp()
    inner = PrivacyGuard(inner_app, config=GuardConfig(), registry=CollectorRegistry())
    outer = PrivacyGuard(
        inner,
        config=GuardConfig(pseudonym_key=KEY, scan_values="report"),
        registry=CollectorRegistry(),
    )
    headers = [(b"x-msisdn", b"61491570006"), (b"x-acme-contact", b"+61 491 570 007")]

    call(outer, http_scope(headers))

    assert inner_app.scope["headers"] == [(HEADER, expected(KEY, "msisdn", AU_E164))]


# --- configuration ---------------------------------------------------------------------------

SHORT_HEX = "ab" * 31  # 31 bytes
SHORT_BASE64 = base64.b64encode(b"\x07" * 31).decode()
NOT_A_KEY = "correct horse battery staple, not a key!"


@pytest.mark.parametrize(
    ("environ", "variable", "secret"),
    [
        ({"PRIVACY_GUARD_PSEUDONYM_KEY": SHORT_HEX}, "PRIVACY_GUARD_PSEUDONYM_KEY", SHORT_HEX),
        (
            {"PRIVACY_GUARD_PSEUDONYM_KEY": SHORT_BASE64},
            "PRIVACY_GUARD_PSEUDONYM_KEY",
            SHORT_BASE64,
        ),
        ({"PRIVACY_GUARD_PSEUDONYM_KEY": NOT_A_KEY}, "PRIVACY_GUARD_PSEUDONYM_KEY", NOT_A_KEY),
        (
            {"PRIVACY_GUARD_PSEUDONYM_KEY": KEY, "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS": SHORT_HEX},
            "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS",
            SHORT_HEX,
        ),
        (
            {"PRIVACY_GUARD_PSEUDONYM_KEY": KEY, "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS": NOT_A_KEY},
            "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS",
            NOT_A_KEY,
        ),
        (
            {"PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS": OLD_KEY},
            "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS",
            OLD_KEY,
        ),
        (
            {"PRIVACY_GUARD_PSEUDONYM_KEY": "", "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS": OLD_KEY},
            "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS",
            OLD_KEY,
        ),
    ],
)
def test_bad_keys_are_named_never_echoed(
    environ: dict[str, str], variable: str, secret: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ)

    message = str(caught.value)
    assert caught.value.variable == variable
    assert message.startswith(variable + ":")
    for text in {secret, *environ.values()} - {""}:
        assert text not in message
        assert text not in repr(caught.value)
    assert "; accepts " in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pseudonym_key", SHORT_HEX),
        ("pseudonym_key", NOT_A_KEY),
        ("pseudonym_key", b"\x01" * 31),
        ("pseudonym_key", 12345),
    ],
)
def test_bad_keys_as_arguments(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig(**{field: value})

    assert caught.value.variable == "PRIVACY_GUARD_PSEUDONYM_KEY"
    assert str(value) not in str(caught.value)


HEX_KEY = bytes(range(100, 132)).hex()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (HEX_KEY[:10] + "o" + HEX_KEY[11:], "1 character(s) that are not hex digits"),
        (HEX_KEY[:-1], "an odd number of digits"),
        (HEX_KEY + "0", "an odd number of digits"),
        (HEX_KEY[:20] + "g" + HEX_KEY[21:40] + "x" + HEX_KEY[41:], "2 character(s)"),
    ],
)
def test_a_mistyped_hex_key_is_refused_not_read_as_base64(text: str, problem: str) -> None:
    # Read as base64, each of these decodes to 32+ bytes: a different key, silently.
    padded = text + "=" * (-len(text) % 4)
    with contextlib.suppress(ValueError):
        assert len(base64.b64decode(padded)) >= 32
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env({"PRIVACY_GUARD_PSEUDONYM_KEY": text})
    assert problem in str(caught.value)
    assert text not in str(caught.value)


def test_previous_key_alone_as_argument_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig(pseudonym_key_previous=OLD_KEY)

    assert caught.value.variable == "PRIVACY_GUARD_PSEUDONYM_KEY_PREVIOUS"
    assert OLD_KEY not in str(caught.value)


RAW = bytes(range(200, 232))


@pytest.mark.parametrize(
    "text",
    [
        RAW.hex(),
        RAW.hex().upper(),
        RAW.hex() + "\n",  # as read from a file
        "  " + RAW.hex() + "  ",
        base64.b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
    ],
)
def test_key_spellings_are_one_key(text: str) -> None:
    config = GuardConfig.from_env({"PRIVACY_GUARD_PSEUDONYM_KEY": text})

    assert config.pseudonym_key == RAW
    assert tokens(seen([(b"x-msisdn", b"61491570006")], pseudonym_key=text)) == [
        expected(RAW.hex(), "msisdn", AU_E164)
    ]


def test_empty_key_variable_means_no_tokens() -> None:
    config = GuardConfig.from_env({"PRIVACY_GUARD_PSEUDONYM_KEY": "  "})

    assert config.pseudonym_key is None


def test_repr_never_shows_the_keys() -> None:
    config = GuardConfig(pseudonym_key=KEY, pseudonym_key_previous=OLD_KEY)
    shown = repr(config) + str(config)

    for key in (KEY, OLD_KEY):
        assert key not in shown
        assert repr(bytes.fromhex(key)) not in shown
        assert bytes.fromhex(key).hex() not in shown


# --- real servers ------------------------------------------------------------------------------


def worker_token(url: str, value: str) -> tuple[str, list[dict[str, str]]]:
    """One request on a fresh connection (so the server may hand it to any worker)."""
    response = httpx.get(url, headers={"x-msisdn": value, "connection": "close"}, timeout=10)
    body = response.json()
    found = [v for k, v in body["headers"] if k == HEADER.decode()]
    assert len(found) == 1, body
    return found[0], body["privacy_guard"]


@pytest.mark.slow
def test_two_uvicorn_workers_give_the_same_token() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    argv += ["--workers", "2", "--log-level", "warning"]
    env = clean_env(PRIVACY_GUARD_PSEUDONYM_KEY=KEY)
    with serve(argv, port=port, env=env) as server:
        values = set()
        # Each worker logs the first finding of its interval once: two such lines prove that
        # both workers answered. Fresh connections spread requests over the workers.
        deadline = time.monotonic() + 60
        while server.output().count("privacy_guard.identifiers_found") < 2:
            assert time.monotonic() < deadline, server.output()
            value, findings = worker_token(server.url, "+61 491 570 006")
            values.add(value)
            assert findings == [
                {"header": "x-msisdn", "kind": "msisdn", "action": "replaced", "rule": "catalog"}
            ]
        for _ in range(10):
            values.add(worker_token(server.url, "61491570006")[0])
        output = server.output()

    assert values == {expected(KEY, "msisdn", AU_E164).decode()}
    assert "491570006" not in output
    assert KEY not in output


def test_a_number_written_with_a_plus_is_never_read_as_a_national_one() -> None:
    """With a default region, bare digits are tried as a national number first; a `+` or `tel:+`
    says the number is international already. Belgium's example fixed line, 32 12 34 56 78, is
    also ten digits a US number could have."""
    example = phonenumbers.example_number_for_type("BE", phonenumbers.PhoneNumberType.FIXED_LINE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    digits = e164[1:].encode()
    # RFC 3966's scheme is case-insensitive, as the value rule reads it: `Tel:+` is `tel:+`.
    for scheme in (b"+", b"tel:+", b"TEL:+", b"Tel:+", b"tEL:+", b"TeL:+"):
        written = scheme + digits
        assert token_for(written, default_region="US") == expected(KEY, "msisdn", e164), written
    national = expected(KEY, "msisdn", "+1" + digits.decode())
    assert token_for(digits, default_region="US") == national
    assert token_for(digits) == expected(KEY, "msisdn", e164)
