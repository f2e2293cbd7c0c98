"""Value rules: phone numbers, IMSI and IMEI in the values of headers nobody knows.

Numbers are phonenumbers' own example numbers (`example_number_for_type(region, MOBILE)`), the
documented example IMEI 490154203237518, and values built here from an MCC of the packaged
ITU-T E.212 list; every "this is (not) a phone number" premise is checked against phonenumbers'
public API rather than assumed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import phonenumbers
import pytest
from conftest import RecordingApp, call, http_scope
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType
from prometheus_client import CollectorRegistry

from guard import Finding, GuardConfig, PrivacyGuard
from guard.detect import Budget, Hit, calling_region, scan_value

MCCS = frozenset(
    json.loads((Path(__file__).parents[1] / "guard" / "data" / "mcc.json").read_text())["mccs"]
)
UNKNOWN = b"x-acme-data"  # a name no catalog, name rule or never-scan entry knows
ROOMY = 32  # checks: more than any single value needs
BYTES = 64 * 1024

REGIONS = [
    "AR",
    "AT",
    "AU",
    "BD",
    "BE",
    "BR",
    "CA",
    "CH",
    "CL",
    "CN",
    "CO",
    "DE",
    "DK",
    "EG",
    "ES",
    "FI",
    "FR",
    "GB",
    "GH",
    "GR",
    "ID",
    "IE",
    "IL",
    "IN",
    "IT",
    "JP",
    "KE",
    "KR",
    "MA",
    "MX",
    "MY",
    "NG",
    "NL",
    "NO",
    "NZ",
    "PE",
    "PH",
    "PK",
    "PL",
    "PT",
    "RO",
    "RU",
    "SA",
    "SE",
    "SG",
    "TH",
    "TR",
    "UA",
    "US",
    "VN",
    "ZA",
]

# DESIGN's candidate shape: digits, an optional leading `+` or `tel:`, single spaces or hyphens
# between digits. A form of a number is only tested where it has that shape.
SHAPE = re.compile(r"(?:\+|tel:\+?)?[0-9](?:[ -]?[0-9])*")


def _mobile(region: str) -> PhoneNumber:
    number = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    assert number is not None, region
    return number


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _international(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def _bare_mobile(number: PhoneNumber) -> str | None:
    """The bare international digits, where DESIGN says bare digits count (mobile, 10-15)."""
    digits = _e164(number)[1:]
    mobile = phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    return digits if mobile and 10 <= len(digits) <= 15 else None


FORMS: dict[str, Callable[[PhoneNumber], str | None]] = {
    "e164": _e164,
    "tel": lambda n: "tel:" + _e164(n),
    "international": _international,
    "spaces": lambda n: _international(n).replace("-", " "),
    "hyphens": lambda n: _international(n).replace(" ", "-"),
    "tel-hyphens": lambda n: "tel:" + _international(n).replace(" ", "-"),
    "bare": _bare_mobile,
    "list-after-timestamp": lambda n: "1700000000, " + _e164(n),
    "list-of-two": lambda n: f"{_e164(n)},{_e164(n)}",
    "list-bare": lambda n: None if _bare_mobile(n) is None else f"1700000000,{_bare_mobile(n)}",
    "padded": lambda n: f"  {_e164(n)}  ",
}


def _found_cases() -> list[tuple[str, str, str]]:
    cases = []
    for region in REGIONS:
        number = _mobile(region)
        for form, make in FORMS.items():
            value = make(number)
            items = [] if value is None else [item.strip() for item in value.split(",")]
            if items and all(SHAPE.fullmatch(item) for item in items):
                cases.append((region, form, value))
    return cases


FOUND = _found_cases()


def _hit(value: str, region: str | None = None, checks: int = ROOMY) -> Hit | None:
    return scan_value(value.encode(), Budget(checks, BYTES), region)


def _guarded(
    headers: list[tuple[bytes, bytes]], config: GuardConfig | None = None
) -> tuple[dict, CollectorRegistry]:
    """Run one request through a fresh guard; the scope the app got and the guard's registry."""
    app, registry = RecordingApp(), CollectorRegistry()
    call(PrivacyGuard(app, config=config or GuardConfig(), registry=registry), http_scope(headers))
    return app.scope, registry


def _luhn_completed(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid (as an IMEI's 15th digit)."""
    for check in "0123456789":
        digits = body + check
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def _valid_number(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


def _is_luhn(digits: str) -> bool:
    return _luhn_completed(digits[:-1]) == digits


# --- phone numbers -----------------------------------------------------------------------------


def test_enough_regions_in_every_form() -> None:
    for form in ("e164", "tel", "spaces", "hyphens", "bare", "list-after-timestamp"):
        regions = {region for region, found_form, _ in FOUND if found_form == form}
        assert len(regions) >= 30, form


@pytest.mark.parametrize(("region", "form", "value"), FOUND)
def test_mobile_number_found(region: str, form: str, value: str) -> None:
    expected = phonenumbers.region_code_for_number(_mobile(region))
    assert _hit(value) == Hit("msisdn", expected)


@pytest.mark.parametrize("region", REGIONS)
def test_mobile_number_removed_by_the_middleware(region: str) -> None:
    headers = [(b"accept", b"*/*"), (UNKNOWN, _e164(_mobile(region)).encode()), (b"x-n", b"1")]
    scope, registry = _guarded(headers)
    assert scope["headers"] == [(b"accept", b"*/*"), (b"x-n", b"1")]
    assert scope["privacy_guard"] == (Finding("x-acme-data", "msisdn", "removed", "value"),)
    labels = {"header": "other", "kind": "msisdn", "action": "removed"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1
    region_label = {"region": phonenumbers.region_code_for_number(_mobile(region))}
    assert registry.get_sample_value("privacy_guard_numbers_total", region_label) == 1


@pytest.mark.parametrize(
    "value",
    [
        # DESIGN: a comma-separated *item* is a candidate; other items do not hide it.
        "unknown, +61491570006",
        "+12015550123, n/a",
    ],
)
def test_number_in_a_list_with_other_items_found(value: str) -> None:
    assert _hit(value) is not None


def _international_mobile(digits: str) -> bool:
    """Whether phonenumbers reads `digits` with a `+` as a mobile number (a real ambiguity)."""
    if not _valid_number(digits):
        return False
    return phonenumbers.number_type(phonenumbers.parse("+" + digits)) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _national_cases() -> list[tuple[str, str]]:
    cases = []
    for region in REGIONS:
        national = phonenumbers.format_number(_mobile(region), PhoneNumberFormat.NATIONAL)
        digits = "".join(char for char in national if char.isdigit())
        cases.append((region, digits))
        if national != digits and SHAPE.fullmatch(national):
            cases.append((region, national))
    return cases


NATIONAL = _national_cases()


@pytest.mark.parametrize(("region", "value"), NATIONAL)
def test_national_number_found_with_default_region(region: str, value: str) -> None:
    regions = {phonenumbers.region_code_for_number(_mobile(region))}
    digits = re.sub(r"\D", "", value)
    if _international_mobile(digits):
        # Also a mobile number read as international (CN's 131…: +1 312…): either reading will do.
        regions.add(phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits)))
    hit = _hit(value, region)
    assert hit is not None
    assert hit.kind == "msisdn"
    assert hit.region in regions
    scope, _ = _guarded([(UNKNOWN, value.encode())], GuardConfig(default_region=region.lower()))
    assert scope["headers"] == []
    assert scope["privacy_guard"] == (Finding("x-acme-data", "msisdn", "removed", "value"),)


NATIONAL_ONLY = [
    (region, value)
    for region, value in NATIONAL
    if not _international_mobile(re.sub(r"\D", "", value)) and len(re.sub(r"\D", "", value)) != 15
]


@pytest.mark.parametrize(("region", "value"), NATIONAL_ONLY)
def test_national_number_not_read_without_default_region(region: str, value: str) -> None:
    assert _hit(value) is None


# --- IMSI and IMEI -----------------------------------------------------------------------------

IMSIS = [
    "310150123456789",  # MCC 310 (US), MNC 150
    "234150000000001",  # 234 (GB); also Nigeria's calling code, but too long to be valid there
    "262010000000007",  # 262 (DE)
    "460001234567890",  # 460 (CN)
    "404450000000123",  # 404 (IN)
    "505010000000042",  # 505 (AU); also Nicaragua's calling code
]
IMEIS = [
    "490154203237518",  # the example IMEI of 3GPP TS 23.003 write-ups and Wikipedia
    _luhn_completed("35391803564380"),
    _luhn_completed("86012345678901"),
    _luhn_completed("01000000000000"),
]


@pytest.mark.parametrize("value", IMSIS)
def test_imsi_found(value: str) -> None:
    assert value[:3] in MCCS
    assert not _valid_number(value)
    assert _hit(value) == Hit("imsi", "ZZ")
    scope, _ = _guarded([(UNKNOWN, value.encode())])
    assert scope["privacy_guard"] == (Finding("x-acme-data", "imsi", "removed", "value"),)


@pytest.mark.parametrize("value", IMEIS)
def test_imei_found(value: str) -> None:
    assert value[:3] not in MCCS
    assert _is_luhn(value)
    assert not _valid_number(value)
    assert _hit(value) == Hit("imei", "ZZ")
    scope, _ = _guarded([(UNKNOWN, value.encode())])
    assert scope["privacy_guard"] == (Finding("x-acme-data", "imei", "removed", "value"),)


@pytest.mark.parametrize(
    "value",
    [
        _luhn_completed("31015012345678"),
        _luhn_completed("23415000000000"),
    ],
)
def test_imsi_wins_over_imei(value: str) -> None:
    assert value[:3] in MCCS
    assert _is_luhn(value)
    assert not _valid_number(value)
    assert _hit(value) == Hit("imsi", "ZZ")


def test_phone_number_wins_over_imsi_and_imei() -> None:
    # Austria's example mobile number, padded to the 13-digit national numbers Austria allows and
    # completed to a Luhn-valid 15-digit string starting with MCC 436: a fit for all three rules.
    example = _e164(_mobile("AT"))[1:]
    value = _luhn_completed(example.ljust(14, "0"))
    assert _international_mobile(value)
    assert value[:3] in MCCS
    assert _is_luhn(value)
    assert _hit(value) == Hit("msisdn", "AT")


@pytest.mark.parametrize(
    "value",
    [
        "4901542032375186",  # an IMEISV: 16 digits, by name only
        "3101501234567890",
        *[value + "0" for value in IMEIS],
        "+" + IMEIS[0] + "1",
    ],
)
@pytest.mark.parametrize("region", [None, "US", "GB", "IN", "AU"])
def test_sixteen_digits_not_flagged_by_value(value: str, region: str | None) -> None:
    assert _hit(value, region) is None


# --- benign values -----------------------------------------------------------------------------

BENIGN = [
    # Unix timestamps, seconds and milliseconds
    "1700000000",
    "1764201600",
    "1764201600123",
    "1700000000000",
    "1700000000.123",
    "1700000000, 1700000060",
    # trace and span IDs: hex and decimal 64-bit
    "4bf92f3577b34da6",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7",
    "7263245829107465611",
    "1234567890123456789",
    "18446744073709551615",
    "9007199254740993",
    # sizes and counts
    "0",
    "348",
    "1048576",
    "4294967295",
    "3600",
    "86400",
    "100, 200, 300",
    # build numbers and versions
    "20231127",
    "20231127.1542",
    "4711",
    "1.2.3",
    "2.31.0",
    "10.0.19045.3693",
    # signatures and digests
    "sha256=3a5b4f0e9c1d2b7a8e6f5d4c3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a1908",
    "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
    "d41d8cd98f00b204e9800998ecf8427e",
    # addresses
    "192.168.0.1",
    "203.0.113.7",
    "203.0.113.7:51234",
    "2001:db8::1",
    "fe80::1",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    # dates and times
    "2024-01-15",
    "2024-01-15T10:00:00Z",
    "15/01/2024",
    "10:30:00",
    "20240115103000",
    # prices
    "19.99",
    "1,299.00",
    "EUR 12.50",
]


@pytest.mark.parametrize("value", BENIGN)
@pytest.mark.parametrize("region", [None, "US", "GB", "IN", "AU"])
def test_benign_value_not_flagged(value: str, region: str | None) -> None:
    assert _hit(value, region) is None


@pytest.mark.parametrize("region", [None, "US", "GB", "IN", "AU"])
def test_benign_values_pass_the_middleware(region: str | None) -> None:
    headers = [(f"x-acme-{i}".encode(), value.encode()) for i, value in enumerate(BENIGN)]
    budget = 8 * len(headers)  # only the rules are on trial here, not the budget
    scope, registry = _guarded(headers, GuardConfig(default_region=region, scan_budget=budget))
    assert scope["privacy_guard"] == ()
    assert scope["headers"] is headers
    assert (
        registry.get_sample_value("privacy_guard_scan_budget_exhausted_total", {"type": "http"})
        == 0
    )


# Identifier and tracing headers: never scanned, so a number-shaped id is not taken for a number.
NEVER_SCANNED = [
    "x-request-id",
    "x-correlation-id",
    "idempotency-key",
    "x-amzn-trace-id",
    "x-b3-traceid",
    "x-datadog-trace-id",
]


@pytest.mark.parametrize("name", NEVER_SCANNED)
def test_never_scanned_names_keep_even_a_number_shaped_value(name: str) -> None:
    """Ids are often long digit runs: these names stay exempt from the value rules."""
    headers = [(name.encode(), b"+61491570156"), (name.encode(), IMSIS[0].encode())]
    scope, _ = _guarded(headers)
    assert scope["headers"] is headers
    assert scope["privacy_guard"] == ()


# --- budget ------------------------------------------------------------------------------------


def test_budget_of_no_checks_finds_nothing() -> None:
    budget = Budget(0, BYTES)
    assert scan_value(b"+61491570006", budget) is None
    assert budget.exhausted


def test_budget_spent_mid_value() -> None:
    # An IMEI needs three checks (international number, MCC, Luhn): two are not enough.
    budget = Budget(2, BYTES)
    assert scan_value(IMEIS[0].encode(), budget) is None
    assert budget.exhausted


def test_budget_of_bytes() -> None:
    budget = Budget(ROOMY, 8)
    assert scan_value(b"+61491570006", budget) is None
    assert budget.exhausted


def test_budget_not_exhausted_by_one_number() -> None:
    budget = Budget(ROOMY, BYTES)
    assert scan_value(b"+61491570006", budget) == Hit("msisdn", "AU")
    assert not budget.exhausted


def _budget_request(checks: int) -> tuple[dict, CollectorRegistry, list[tuple[bytes, bytes]]]:
    benign = [(f"x-acme-{i}".encode(), b"1700000000") for i in range(6)]  # one check each
    late = [(b"x-acme-late", b"+61491570006"), (b"x-msisdn", b"447700900123")]
    headers = [*benign, *late]
    scope, registry = _guarded(headers, GuardConfig(scan_budget=checks))
    return scope, registry, headers


def test_header_beyond_the_budget_is_not_flagged_but_counted() -> None:
    scope, registry, headers = _budget_request(checks=4)
    # The catalog still runs over every line; the value rules stopped at the budget.
    assert scope["headers"] == headers[:-1]
    assert scope["privacy_guard"] == (Finding("x-msisdn", "msisdn", "removed", "catalog"),)
    assert (
        registry.get_sample_value("privacy_guard_scan_budget_exhausted_total", {"type": "http"})
        == 1
    )


def test_header_within_the_budget_is_flagged() -> None:
    scope, registry, headers = _budget_request(checks=7)
    assert scope["headers"] == headers[:-2]
    assert [f.rule for f in scope["privacy_guard"]] == ["value", "catalog"]
    assert (
        registry.get_sample_value("privacy_guard_scan_budget_exhausted_total", {"type": "http"})
        == 0
    )


# --- PRIVACY_GUARD_SCAN_VALUES -----------------------------------------------------------------

MIXED = [(b"x-msisdn", b"447700900123"), (UNKNOWN, b"+61491570006"), (b"x-acme-n", b"4711")]


def test_scan_values_report_leaves_value_hits() -> None:
    scope, registry = _guarded(MIXED, GuardConfig.from_env({"PRIVACY_GUARD_SCAN_VALUES": "report"}))
    assert scope["headers"] == MIXED[1:]
    assert scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "removed", "catalog"),
        Finding("x-acme-data", "msisdn", "reported", "value"),
    )
    labels = {"header": "other", "kind": "msisdn", "action": "reported"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1


def test_scan_values_off_disables_value_rules() -> None:
    scope, _ = _guarded(MIXED, GuardConfig.from_env({"PRIVACY_GUARD_SCAN_VALUES": "off"}))
    assert scope["headers"] == MIXED[1:]
    assert scope["privacy_guard"] == (Finding("x-msisdn", "msisdn", "removed", "catalog"),)


def test_scan_values_strip_is_the_default() -> None:
    scope, _ = _guarded(MIXED, GuardConfig.from_env({}))
    assert scope["headers"] == MIXED[2:]
    assert [f.action for f in scope["privacy_guard"]] == ["removed", "removed"]


def test_report_mode_reports_value_hits() -> None:
    scope, _ = _guarded(MIXED, GuardConfig(mode="report"))
    assert scope["headers"] == MIXED
    assert [f.action for f in scope["privacy_guard"]] == ["reported", "reported"]


# --- numbers_total's region label ----------------------------------------------------------------
CALLING_CODES = sorted(
    (code, regions[0])
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
    if regions and regions[0] != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
)


@pytest.mark.parametrize(("code", "region"), CALLING_CODES)
def test_calling_region_is_the_region_of_the_calling_code(code: int, region: str) -> None:
    digits = f"{code}".ljust(12, "0")  # the usual length; zeros after a code: no real number
    assert calling_region(digits.encode()) == region
    assert calling_region(f"+{digits}".encode()) == region
    assert calling_region(f" +{digits}, 15550100".encode()) == region


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"4477009",
        b"4477009001234567",
        b"44770090012a",
        b"tel:+447700900123",
        b"+",
        b"2015550123",  # ten digits: national (NANP), not +20 (Egypt) followed by eight digits
        b"+2015550123",
    ],
)
def test_calling_region_of_anything_else_is_unknown(value: bytes) -> None:
    assert calling_region(value) == "ZZ"


@pytest.mark.parametrize("code", sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS))
def test_calling_region_of_a_non_geographic_code_is_unknown(code: int) -> None:
    """+800, +808, +870, +881…: no region to count such a number under (not "001")."""
    digits = f"{code}".ljust(12, "0")
    assert calling_region(digits.encode()) == "ZZ"
    assert calling_region(f"+{digits}".encode()) == "ZZ"
