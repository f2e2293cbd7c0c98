"""`guard.phone` against phonenumbers' public API.

`guard.phone` re-implements phonenumbers' "is it valid, and of which type" decision on compiled
metadata, for speed. The oracle here is the public API: `parse("+" + digits)`,
`is_valid_number`, `number_type` and `region_code_for_number`, with MOBILE and
FIXED_LINE_OR_MOBILE read as "mobile", FIXED_LINE as "fixed" and every other valid type as
"other".

One documented difference (see `guard/phone.py`'s "Notes"): `phonenumbers.parse("+…")` strips a
national prefix written after the country code, `guard.phone` does not. Inputs where that happens
(the national significant number is not the digits after the country code) are skipped.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from guard import phone

MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
ALL_TYPES = {
    name: getattr(PhoneNumberType, name)
    for name in dir(PhoneNumberType)
    if name.isupper() and name != "UNKNOWN"
}
DESC_FIELDS = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


def _expected(number: phonenumbers.PhoneNumber) -> tuple[str, str] | None:
    """(region, mobile/fixed/other) by the public API, or None when not a valid number."""
    if not phonenumbers.is_valid_number(number):
        return None
    typed = phonenumbers.number_type(number)
    if typed in MOBILE_TYPES:
        kind = phone.MOBILE
    elif typed == PhoneNumberType.FIXED_LINE:
        kind = phone.FIXED
    else:
        kind = phone.OTHER
    region = phonenumbers.region_code_for_number(number)
    assert region is not None
    return region, kind


def _got(typed: phone.PhoneType | None) -> tuple[str, str] | None:
    return None if typed is None else (typed.region, typed.kind)


def _examples() -> list[tuple[str, str]]:
    """(label, E.164 digits) of phonenumbers' example number for every region and type."""
    found: dict[str, str] = {}  # label: digits
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for type_name, number_type in ALL_TYPES.items():
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                digits = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
                found[f"{region}-{type_name}"] = digits
    for country_code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        meta = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
        assert meta is not None
        for field in DESC_FIELDS:
            desc = getattr(meta, field)
            if desc is not None and desc.example_number:
                found[f"{country_code}-{field}"] = f"{country_code}{desc.example_number}"
    return sorted(found.items())


EXAMPLES = _examples()


def test_examples_cover_every_region() -> None:
    regions = {label.split("-")[0] for label, _ in EXAMPLES}
    assert set(phonenumbers.SUPPORTED_REGIONS) <= regions
    assert len(EXAMPLES) > 1000


@pytest.mark.parametrize(("label", "digits"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_international_type_agrees_on_example_numbers(label: str, digits: str) -> None:
    number = phonenumbers.parse("+" + digits)
    expected = _expected(number)
    assert expected is not None, f"{label}: phonenumbers' own example is not valid"
    assert _got(phone.international_type(digits)) == expected


NATIONAL = [
    (label, digits)
    for label, digits in EXAMPLES
    if label.split("-")[0] in phonenumbers.SUPPORTED_REGIONS
]


@pytest.mark.parametrize(("label", "digits"), NATIONAL, ids=[label for label, _ in NATIONAL])
def test_national_type_agrees_on_example_numbers(label: str, digits: str) -> None:
    region = label.split("-")[0]
    formatted = phonenumbers.format_number(
        phonenumbers.parse("+" + digits), PhoneNumberFormat.NATIONAL
    )
    national = "".join(char for char in formatted if char.isdigit())
    try:
        expected = _expected(phonenumbers.parse(national, region))
    except phonenumbers.NumberParseException:
        expected = None
    assert _got(phone.national_type(national, region)) == expected


@pytest.mark.parametrize(
    ("label", "digits"), EXAMPLES[::100], ids=[label for label, _ in EXAMPLES[::100]]
)
def test_calling_codes_never_start_with_zero(label: str, digits: str) -> None:
    # "0" + a valid number is no international number: phonenumbers rejects the country code.
    with pytest.raises(phonenumbers.NumberParseException):
        phonenumbers.parse("+0" + digits)
    assert phone.international_type("0" + digits) is None


@pytest.mark.slow
@given(st.text(alphabet="0123456789", min_size=8, max_size=15))
@settings(max_examples=3000, deadline=None)
@example("61491570006")
@example("12015550123")
def test_international_type_agrees_on_random_digits(digits: str) -> None:
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        assert phone.international_type(digits) is None
        return
    after_code = digits[len(str(number.country_code)) :]
    # The documented difference: parse() strips a national prefix after the country code.
    assume(phonenumbers.national_significant_number(number) == after_code)
    assert _got(phone.international_type(digits)) == _expected(number)


@pytest.mark.parametrize("digits", ["", "1", "123", "123456789012345678"])
def test_not_numbers_are_not_typed(digits: str) -> None:
    assert phone.international_type(digits) is None
