"""What counts as an identifier: the name rules, the never-scan list and the value rules.

Names are classified once per distinct raw name into a verdict (keep, scan the value, or flag)
and cached, so a request costs one dict lookup per header line. Values are only looked at for
names that are neither known nor standard, and only when they have the shape of a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import phonenumbers

from . import phone
from .catalog import CATALOG, LOW_RISK, MCCS, fold, shown

__all__ = [
    "COOKIE",
    "GUARD_HEADERS",
    "KEEP",
    "NEVER_SCAN",
    "SCAN",
    "Budget",
    "Finding",
    "Flag",
    "Hit",
    "Names",
    "calling_region",
    "name_rule",
    "scan_value",
]


class _Verdict:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


KEEP = _Verdict("KEEP")  # never identifying: pass untouched
SCAN = _Verdict("SCAN")  # unknown name: look at the value
COOKIE = _Verdict("COOKIE")  # check the cookie pairs' names (guard.pairs)


class Finding(NamedTuple):
    """One identifying header line (or cookie pair, or query parameter): its folded,
    digit-masked name, never its value. `scope["privacy_guard"]` is a tuple of these."""

    header: str
    kind: str
    action: str  # removed, reported, replaced
    rule: str  # catalog, name, value, extra


class Flag(NamedTuple):
    """An identifying name: how it is shown, counted (`label`, a closed set) and why."""

    shown: str
    label: str
    kind: str
    rule: str
    trusted: bool = False  # may pass for PRIVACY_GUARD_TRUSTED_SOURCES on _TRUSTED_PATHS
    forced: bool = False  # removed in every mode (a client-sent pseudonym header)
    bound: Any = None  # what the user of `Names` precomputed for this name (see `bind`)


Verdict = _Verdict | Flag

# Headers the guard itself adds: a client-sent copy is a forgery, removed whatever the config.
GUARD_HEADERS = ("x-privacy-guard-pseudonym", "x-privacy-guard-pseudonym-previous")

# --- name rules --------------------------------------------------------------------------------
# Stems that only ever name a subscriber identifier, matched as whole tokens of the folded name
# (tokens are separated by `-`). Each is the distinctive token of catalog rows from several
# carriers or vendors: msisdn (x-msisdn, x-nokia-msisdn, x-h3g-msisdn, bizao-msisdn, …), imsi
# (x-imsi, x-nokia-imsi, x-wap-3gpp-imsi), imei/imeisv (x-imei, x-up-3gpp-imeisv), mdn (x-mdn,
# x-wap-sesiones3g-mdn, x-pcs-mdn), clid (x-hts-clid, x-msp-clid), calling-line (the Openwave
# family), subno (x-up-subno), uidh (Verizon's x-uidh), acr (x-acr, x-vf-acr), subnym
# (x-access-subnym). `msisdn` is also matched inside a token (pimmsisdn, imisdn-like spellings):
# it occurs in no word or standard header. Weak stems (userid, clientid, clientip, deviceid, uid,
# min, cli, ip) are never patterns: X-Authenticated-Userid, Client-Id, True-Client-IP,
# X-Device-Id, X-Request-GUID and X-Admin are ordinary headers.
_STEM_KIND = {
    "msisdn": "msisdn",
    "mdn": "msisdn",
    "clid": "msisdn",
    "callinglineid": "msisdn",
    "calling-line": "msisdn",
    "imsi": "imsi",
    "imei": "imei",
    "imeisv": "imei",
    "subno": "subscriber_token",
    "uidh": "subscriber_token",
    "acr": "subscriber_token",
    "subnym": "subscriber_token",
}
_NAME_RULE = re.compile(
    r"(?:^|-)(msisdn|mdn|clid|callinglineid|calling-line|imsi|imeisv|imei|subno|uidh|acr|subnym)"
    r"(?=-|$)|(msisdn)"
)


# Every name `_NAME_RULE` matches has one of these whole tokens, or `msisdn` or `calling-line`
# inside it: a set test that rules out most names for a third of the regex's cost.
_STEM_TOKENS = frozenset(stem for stem in _STEM_KIND if "-" not in stem)


def name_rule(folded: str) -> str | None:
    """The kind an identifier-shaped name carries, or None."""
    if (
        _STEM_TOKENS.isdisjoint(folded.split("-"))
        and "msisdn" not in folded
        and "calling-line" not in folded
    ):
        return None
    match = _NAME_RULE.search(folded)
    if match is None:
        return None
    return _STEM_KIND[match.group(1) or match.group(2)]


# --- never scanned -----------------------------------------------------------------------------
# Standard request headers whose values are never a carrier identifier but are often numeric or
# long: scanning them would only cost time and invite false positives.
NEVER_SCAN = frozenset(
    {
        "host",
        "user-agent",
        "cookie",
        "authorization",
        "proxy-authorization",
        "range",
        "referer",
        "origin",
        "forwarded",
        "x-real-ip",
        "via",
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-cloud-trace-context",
        "x-amzn-trace-id",
        "sentry-trace",
        "stripe-signature",
        "connection",
        "keep-alive",
        "cache-control",
        "pragma",
        "upgrade",
        "upgrade-insecure-requests",
        "dnt",
        "te",
        "priority",
        "expect",
        "max-forwards",
        "x-requested-with",
        "purpose",
        "save-data",
        "downlink",
        "rtt",
        "ect",
        "device-memory",
        "dpr",
        "viewport-width",
        "width",
        "early-data",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-request-id",
        "x-correlation-id",
        "idempotency-key",
    }
)
_NEVER_SCAN_PREFIXES = (
    "accept",
    "content-",
    "sec-",
    "if-",
    "x-forwarded-",
    "x-b3-",
    "x-datadog-",
    "x-hub-signature",
    "access-control-request-",
    "cf-",
    "x-amz-",
    "x-goog-",
)


def _never_scanned(folded: str) -> bool:
    return folded in NEVER_SCAN or folded.startswith(_NEVER_SCAN_PREFIXES)


class Names:
    """Classifies header names for one configuration; one dict lookup per line once warmed.

    The cache is keyed by the raw name bytes and bounded: a client sending thousands of distinct
    names gets them classified (folded, one regex) without growing memory.
    """

    CACHE_MAX = 4096

    def __init__(
        self,
        extra: Iterable[str] = (),
        allow: Iterable[str] = (),
        trusted: Iterable[str] = (),
        bind: Callable[[Flag], Any] | None = None,
    ) -> None:
        """`bind(flag)`, if given, is computed once per flag and kept in `flag.bound`: the
        middleware keeps its ready-made finding and pre-bound counter there."""
        self._bind = bind
        self._extra = frozenset(extra)
        self._allow = frozenset(allow)
        self._trusted = frozenset(trusted)
        self.allowed_identifying = sorted(self._allow & set(CATALOG))
        self.labels = self.labels_for(self._extra)
        self.table: dict[bytes, Verdict] = {}
        # The names in `table` whose verdict is KEEP: most lines of most requests. A set
        # membership test is the cheapest check Python has, so the clean path tries it first.
        self.harmless: set[bytes] = set()
        known = [*CATALOG, *LOW_RISK, *NEVER_SCAN, *self._extra, *self._allow, *GUARD_HEADERS]
        for folded in known:
            self._remember(folded.encode("latin-1"), self.classify_folded(folded))
        self._preset = len(self.table)

    @staticmethod
    def labels_for(extra: Iterable[str]) -> set[str]:
        """Every `header` label value a guard with these extra names can count: a closed set."""
        catalog = {entry.name for entry in CATALOG.values()}
        return catalog | set(extra) | {"other", "cookie", "query", *GUARD_HEADERS}

    def classify_folded(self, folded: str) -> Verdict:
        verdict = self._classify_folded(folded)
        if self._bind is not None and isinstance(verdict, Flag):
            verdict = verdict._replace(bound=self._bind(verdict))
        return verdict

    def _classify_folded(self, folded: str) -> Verdict:
        if folded in GUARD_HEADERS:
            return Flag(shown(folded), folded, "subscriber_token", "catalog", forced=True)
        if folded in self._allow:
            return KEEP
        trusted = folded in self._trusted
        entry = CATALOG.get(folded)
        if entry is not None:
            return Flag(shown(folded), entry.name, entry.kind, "catalog", trusted)
        if folded in self._extra:
            return Flag(shown(folded), folded, "other", "extra", trusted)
        if folded in LOW_RISK:
            return KEEP
        kind = name_rule(folded)
        if kind is not None:
            return Flag(shown(folded), "other", kind, "name", trusted)
        if folded == "cookie":
            return COOKIE
        if _never_scanned(folded):
            return KEEP
        return SCAN

    def classify(self, raw: bytes) -> Verdict:
        """The verdict for a name not yet in `table`; cached while the cache has room."""
        verdict = self.classify_folded(fold(raw.decode("latin-1")))
        if len(self.table) < self._preset + self.CACHE_MAX:
            self._remember(raw, verdict)
        return verdict

    def _remember(self, raw: bytes, verdict: Verdict) -> None:
        self.table[raw] = verdict
        if verdict is KEEP:
            self.harmless.add(raw)


# --- value rules -------------------------------------------------------------------------------


class Hit(NamedTuple):
    kind: str  # msisdn, imsi or imei
    region: str  # ISO region of a phone number, "ZZ" otherwise


class Budget:
    """What one request may still spend on value checks (each phonenumbers, MCC or Luhn check
    costs one) and on value bytes looked at. Spent means stop scanning values."""

    __slots__ = ("checks", "exhausted", "size")

    def __init__(self, checks: int, size: int) -> None:
        self.checks = checks
        self.size = size
        self.exhausted = False

    def spend(self) -> bool:
        if self.checks <= 0:
            self.exhausted = True
            return False
        self.checks -= 1
        return True


# Bytes a candidate value may consist of; anything else (letters, dots, slashes) rules it out in
# one C-speed `translate` before any parsing.
_SHAPE_BYTES = b"0123456789+- ,\ttelTEL:"
_ITEM = re.compile(rb"(\+|[Tt][Ee][Ll]:\+?)?([0-9](?:[ -]?[0-9])*)")
_SEPARATORS = b" -"


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _item(prefix: bytes | None, digits: str, budget: Budget, region: str | None) -> Hit | None:
    size = len(digits)
    if prefix is not None and prefix.endswith(b"+"):
        # `+…` and `tel:+…`: any valid number, whatever its type.
        if size > 15 or not budget.spend():
            return None
        typed = phone.international_type(digits)
        return None if typed is None else Hit("msisdn", typed.region)
    if 10 <= size <= 15:
        # Bare digits are how carriers send numbers, and also how everything else is sent: only
        # a valid *mobile* number counts.
        if not budget.spend():
            return None
        typed = phone.international_type(digits)
        if typed is not None and typed.kind == phone.MOBILE:
            return Hit("msisdn", typed.region)
    if region is not None and 8 <= size <= 15:
        if not budget.spend():
            return None
        typed = phone.national_type(digits, region)
        if typed is not None and typed.kind == phone.MOBILE:
            return Hit("msisdn", typed.region)
    if size == 15:
        if not budget.spend():
            return None
        if digits[:3] in MCCS:
            return Hit("imsi", "ZZ")
        if not budget.spend():
            return None
        if _luhn(digits):
            return Hit("imei", "ZZ")
    return None


def scan_value(value: bytes, budget: Budget, region: str | None = None) -> Hit | None:
    """The identifier a header value holds, or None. Charges `budget` for what it looks at."""
    if len(value) < 7 or (value.translate(None, _SHAPE_BYTES) and b"," not in value):
        return None  # not one candidate; a list is checked item by item below
    budget.size -= len(value)
    if budget.size < 0:
        budget.exhausted = True
        return None
    for raw in value.split(b","):
        match = _ITEM.fullmatch(raw.strip())
        if match is None:
            continue
        digits = match.group(2).translate(None, _SEPARATORS).decode("ascii")
        if len(digits) < 7:
            continue
        hit = _item(match.group(1), digits, budget, region)
        if hit is not None or budget.exhausted:
            return hit
    return None


def calling_region(value: bytes) -> str:
    """The region of the calling code an international-looking number starts with, else "ZZ".

    Used to label numbers that a catalog or name rule already flagged: one prefix lookup, no
    validation (a value is never parsed just to be counted). NANP numbers report as US.
    """
    digits = value
    if not (11 <= len(digits) <= 15 and digits.isdigit()):  # carriers' usual form, else:
        digits = value.lstrip(b" +").split(b",", 1)[0].strip()
        if not (11 <= len(digits) <= 15 and digits.isdigit()):
            return "ZZ"
    return _CALLING_REGION.get(digits[:3], "ZZ")


def _calling_regions() -> dict[bytes, str]:
    """Every three-digit prefix mapped to the region of the calling code it starts with.

    Calling codes (ITU-T E.164) are a prefix code, one to three digits long, so the first three
    digits of a number decide its code: one lookup per number instead of up to three.
    """
    by_code = {
        str(code): regions[0]
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        if regions and regions[0] != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
    }
    table = {}
    for prefix in range(1000):
        digits = f"{prefix:03d}"
        region = by_code.get(digits[:1]) or by_code.get(digits[:2]) or by_code.get(digits)
        if region is not None:
            table[digits.encode()] = region
    return table


_CALLING_REGION = _calling_regions()
