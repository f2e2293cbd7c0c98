"""Fast phone-number typing for the value rules, built on phonenumbers' own metadata.

`phonenumbers.parse` + `is_valid_number` + `number_type` cost ~70 µs per value on a 2-core
machine, because each call re-derives the region and re-walks every number-type pattern through
a regex cache. The value rules only need "which region, and is it a mobile number", so this module
compiles the same metadata patterns once per country calling code and applies the same decision
procedure (phonenumbers' `_number_type_helper` and `_region_code_for_number_from_list`) to a
digit string. `tests/test_phone.py` checks it agrees with the public API.

Notes:
    `phonenumbers.parse("+…")` also strips a national prefix written after the country code
    (`+44 07…`). We do not: such a value is malformed international input, and staying stricter
    here can only mean fewer false positives.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = [
    "FIXED",
    "MOBILE",
    "OTHER",
    "PhoneType",
    "international_type",
    "national_e164",
    "national_type",
]

MOBILE = "mobile"  # MOBILE or FIXED_LINE_OR_MOBILE in phonenumbers' terms
FIXED = "fixed"
OTHER = "other"  # valid, but premium, toll-free, VoIP, pager, …

_Desc = tuple[re.Pattern[str], frozenset[int]] | None


class PhoneType(NamedTuple):
    region: str  # ISO 3166 alpha-2, or "001" for non-geographic numbering plans
    kind: str  # MOBILE, FIXED or OTHER


class _Territory(NamedTuple):
    region: str
    leading_digits: re.Pattern[str] | None
    general: _Desc
    fixed: _Desc
    mobile: _Desc
    same_mobile_and_fixed: bool
    others: tuple[_Desc, ...]


def _desc(desc: object) -> _Desc:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    lengths = frozenset(getattr(desc, "possible_length", ()) or ())
    return re.compile(pattern), lengths


def _territory(region: str, meta: PhoneMetadata) -> _Territory:
    others = (
        meta.premium_rate,
        meta.toll_free,
        meta.shared_cost,
        meta.voip,
        meta.personal_number,
        meta.pager,
        meta.uan,
        meta.voicemail,
    )
    leading = meta.leading_digits
    return _Territory(
        region=region,
        leading_digits=re.compile(leading) if leading else None,
        general=_desc(meta.general_desc),
        fixed=_desc(meta.fixed_line),
        mobile=_desc(meta.mobile),
        same_mobile_and_fixed=bool(meta.same_mobile_and_fixed_line_pattern),
        others=tuple(_desc(d) for d in others),
    )


def _matches(number: str, desc: _Desc) -> bool:
    if desc is None:
        return False
    pattern, lengths = desc
    if lengths and len(number) not in lengths:
        return False
    return pattern.fullmatch(number) is not None


def _kind(number: str, t: _Territory) -> str | None:
    """phonenumbers' `_number_type_helper`, reduced to mobile / fixed / other / invalid."""
    if not _matches(number, t.general):
        return None
    for desc in t.others:
        if _matches(number, desc):
            return OTHER
    if _matches(number, t.fixed):
        if t.same_mobile_and_fixed or _matches(number, t.mobile):
            return MOBILE
        return FIXED
    if not t.same_mobile_and_fixed and _matches(number, t.mobile):
        return MOBILE
    return None


_TERRITORIES: dict[int, tuple[_Territory, ...]] = {}


def _territories(country_code: int) -> tuple[_Territory, ...]:
    """Compiled metadata for one calling code, built on first use (at most ~215 of them)."""
    found = _TERRITORIES.get(country_code)
    if found is None:
        built = []
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
            if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
                meta = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
            else:
                meta = PhoneMetadata.metadata_for_region(region, None)
            if meta is not None:
                built.append(_territory(region, meta))
        found = _TERRITORIES[country_code] = tuple(built)
    return found


_LENGTHS: dict[int, frozenset[int]] = {}


def _lengths(country_code: int) -> frozenset[int]:
    """Every national-number length any territory of the calling code allows (empty: any)."""
    found = _LENGTHS.get(country_code)
    if found is None:
        lengths: set[int] = set()
        for t in _territories(country_code):
            if t.general is None:
                continue
            if not t.general[1]:
                lengths = set()
                break
            lengths |= t.general[1]
        found = _LENGTHS[country_code] = frozenset(lengths)
    return found


def _typed(country_code: int, number: str) -> PhoneType | None:
    lengths = _lengths(country_code)
    if lengths and len(number) not in lengths:
        return None  # cheap reject: NANP alone has 25 territories to try
    territories = _territories(country_code)
    if len(territories) == 1:
        kind = _kind(number, territories[0])
        return None if kind is None else PhoneType(territories[0].region, kind)
    for t in territories:
        # As phonenumbers does: a region with leading digits claims the number by prefix alone,
        # and the number must then be valid for that region.
        if t.leading_digits is not None:
            if t.leading_digits.match(number):
                kind = _kind(number, t)
                return None if kind is None else PhoneType(t.region, kind)
            continue
        kind = _kind(number, t)
        if kind is not None:
            return PhoneType(t.region, kind)
    return None


def international_type(digits: str) -> PhoneType | None:
    """Type of `digits` read as an international number without its `+` (`61491570006`)."""
    if not 4 <= len(digits) <= 17 or digits[0] == "0":
        return None  # no calling code starts with 0
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            # Calling codes are prefix-free, so the first one that exists is the only one.
            return _typed(country_code, digits[size:])
    return None


def national_type(digits: str, region: str) -> PhoneType | None:
    """Type of `digits` written in `region`'s national format (`0491570006` in AU)."""
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code is None:
        return None
    return _typed(number.country_code, phonenumbers.national_significant_number(number))


def warm() -> None:
    """Compile every calling code's metadata now rather than on a request's time."""
    for country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        _lengths(country_code)


def national_e164(digits: str, region: str) -> str | None:
    """`digits` in `region`'s national format as E.164, if it is a valid number there."""
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
