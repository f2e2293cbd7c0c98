"""Pseudonymous subscriber tokens: a stable key for rate limits and fraud scoring, not a number.

With `PRIVACY_GUARD_PSEUDONYM_KEY` set, the guard replaces a removed MSISDN, IMSI or IMEI by one
header, `x-privacy-guard-pseudonym`, holding

    "v1." + base64url(HMAC-SHA256(key, kind + ":" + normalised identifier))[:22]

(22 characters = 132 bits, no padding). The same subscriber gets the same token on every request
and in every worker; without the key nobody can go back to the number. A plain hash would not do:
there are only ~10^10 mobile numbers per country, and a GPU hashes them all in minutes.

Normalisation: phone numbers as E.164 (`+61491570006`) when phonenumbers can read them (bare
international digits, `+`, `tel:`, or national with `PRIVACY_GUARD_DEFAULT_REGION`), else their
digits; IMSIs as their 15 digits; IMEIs as their first 14 digits (TAC + serial number), so an IMEI
and the IMEISV of the same device agree. Values that hold no digits at all yield no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from . import phone

__all__ = ["HEADER", "HEADER_PREVIOUS", "PRIORITY", "normalise", "token"]

HEADER = b"x-privacy-guard-pseudonym"
HEADER_PREVIOUS = b"x-privacy-guard-pseudonym-previous"
PRIORITY = ("msisdn", "imsi", "imei")  # which identifier the token is made from, first wins
VERSION = "v1."
_DIGITS = re.compile(rb"[0-9]+")


def normalise(kind: str, value: bytes, region: str | None) -> str | None:
    """The identifier in canonical form, or None when the value holds no digits.

    In a comma-separated value the first item that is a valid number wins, else the first item
    with digits.
    """
    items = [item.strip() for item in value.split(b",")]
    digit_items = [(item, b"".join(_DIGITS.findall(item)).decode("ascii")) for item in items]
    digit_items = [(item, digits) for item, digits in digit_items if digits]
    if not digit_items:
        return None
    if kind == "imei":
        return digit_items[0][1][:14]
    if kind != "msisdn":
        return digit_items[0][1]
    for item, digits in digit_items:
        e164 = _e164(item, digits, region)
        if e164 is not None:
            return e164
    return digit_items[0][1]


def _e164(item: bytes, digits: str, region: str | None) -> str | None:
    # RFC 3966: the scheme is case-insensitive (`Tel:+…`), as the value rule reads it.
    international = item[:5].lower().startswith((b"+", b"tel:+"))
    if region is not None and not international:
        # National first: with region US, 2015550123 is a US number, not an Egyptian one.
        e164 = phone.national_e164(digits, region)
        if e164 is not None:
            return e164
    if 8 <= len(digits) <= 15 and phone.international_type(digits) is not None:
        return "+" + digits
    return None


def token(key: bytes, kind: str, identifier: str) -> bytes:
    mac = hmac.new(key, f"{kind}:{identifier}".encode(), hashlib.sha256).digest()
    return (VERSION + base64.urlsafe_b64encode(mac).decode("ascii")[:22]).encode("ascii")
