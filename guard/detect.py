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
from .harmless import NameSet, harmless_names

__all__ = [
    "COOKIE",
    "GUARD_HEADERS",
    "KEEP",
    "NAME_MAX",
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
# inside it: set tests that rule out most names, and decide most others, for a fraction of the
# regex's cost (which grows with every `-` of the name: 4.6 µs for 128 characters).
_STEM_TOKENS = frozenset(stem for stem in _STEM_KIND if "-" not in stem)


def name_rule(folded: str) -> str | None:
    """The kind an identifier-shaped name carries, or None.

    A whole-token stem, or `msisdn` anywhere, is a match of `_NAME_RULE`; when every match the
    name holds is of one kind, so is the leftmost one, and the regex need not run. It runs to
    choose between kinds, and for a `calling-line` alone (inside a token, it is no match).
    """
    tokens = folded.split("-")
    msisdn = "msisdn" in folded
    if _STEM_TOKENS.isdisjoint(tokens):
        if msisdn:
            return "msisdn"  # and a `calling-line` would be one too
        if "calling-line" not in folded:
            return None
    else:
        kinds = {_STEM_KIND[stem] for stem in _STEM_TOKENS.intersection(tokens)}
        if msisdn or "calling-line" in folded:
            kinds.add("msisdn")
        if len(kinds) == 1:
            return kinds.pop()
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


# The longest name classified as usual and cached: the limit config.py puts on the names an
# operator may configure (PRIVACY_GUARD_EXTRA/ALLOW/TRUSTED_HEADERS), so no configured name is
# ever longer. A longer name is flagged without being read past this (see `Names.classify`).
NAME_MAX = 128


class Names:
    """Classifies header names for one configuration; one dict lookup per line once warmed.

    The cache (`table`, and `harmless`, its KEEP names) is keyed by the raw name bytes and bounded
    in entries and bytes: names up to NAME_MAX bytes are cached, at most CACHE_MAX of them besides
    the preset ones; when that part is full it is forgotten at once and learned again. So a client
    sending thousands of distinct names costs only while it sends them: it cannot fill the cache
    for good and leave every later browser name to be classified again on every request. The two
    are emptied and refilled in place — the middleware holds references to both objects.
    """

    CACHE_MAX = 4096  # learned names, besides the preset ones
    LONG_MAX = 256  # verdicts for over-long names, by how they are shown

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
        # The names in `table` whose verdict is KEEP: most lines of most requests. The clean path
        # asks only this set (`harmless.prefix`), and the full inspection only what is left.
        self.harmless: NameSet = harmless_names(self.table, COOKIE)
        known = [*CATALOG, *LOW_RISK, *NEVER_SCAN, *self._extra, *self._allow, *GUARD_HEADERS]
        for folded in known:
            self._remember(folded.encode("latin-1"), self.classify_folded(folded))
        self._preset = len(self.table)
        self._preset_table = dict(self.table)
        self._preset_harmless = frozenset(self.harmless)
        self._long: dict[str, Flag] = {}

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
        """The verdict for a name not yet in `table`, which then caches it (see the class)."""
        if len(raw) > NAME_MAX:
            return self._overlong(raw)
        verdict = self.classify_folded(fold(raw.decode("latin-1")))
        table = self.table
        if len(table) >= self._preset + self.CACHE_MAX and raw not in table:
            self._forget()
        self._remember(raw, verdict)
        return verdict

    def _overlong(self, raw: bytes) -> Flag:
        """A name longer than NAME_MAX bytes: flagged (kind `other`, rule `name`, counted as
        `other`), shown from its first NAME_MAX bytes, and never read further or cached by its
        bytes. Fail closed: no header name a browser, a proxy or an app sends is that long, the
        operator's lists cannot name one (config.py's limit is the same), and classifying only a
        prefix or suffix would let `x-aaaa…-msisdn-…`, a stem past the cut, through unflagged;
        reading all of it instead would cost time in proportion to its length on every request,
        as a name that long is never cached. Verdicts are kept by shown name (LONG_MAX of them)
        so that a client repeating one is bound and counted like any flagged name."""
        text = shown(raw[:NAME_MAX].decode("latin-1"))
        flag = self._long.get(text)
        if flag is None:
            if len(self._long) >= self.LONG_MAX:
                self._long.clear()
            flag = Flag(text, "other", "other", "name")
            if self._bind is not None:
                flag = flag._replace(bound=self._bind(flag))
            self._long[text] = flag
        return flag

    def _forget(self) -> None:
        """Back to the preset names, in place: the middleware holds `table` and `harmless`."""
        self.table.clear()
        self.table.update(self._preset_table)
        self.harmless.clear()
        self.harmless.update(self._preset_harmless)
        self._long.clear()

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
    costs one), on value bytes looked at and on comma-separated items looked at. Spent means
    stop scanning values."""

    __slots__ = ("checks", "exhausted", "items", "size")

    # Items per request: each costs a split, a strip and a length test (a regex only when it is
    # short enough to hold a number) whether or not it spends a check, so `1,1,1,…` is bounded
    # by this rather than by the value's size.
    ITEMS = 256

    def __init__(self, checks: int, size: int, items: int = ITEMS) -> None:
        self.checks = checks
        self.size = size
        self.items = items
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
# The shortest and longest item `_item` can find anything in: 7 digits (fewer never reach it),
# and `tel:+` with 15 digits (E.164's most; `_item` looks at no more) and a separator between
# each two. Anything outside is passed over before the regex, which would otherwise allocate
# ~190 bytes per character of a long digit run.
_DIGITS_MAX = 15
_ITEM_MIN = 7
_ITEM_MAX = len("tel:+") + _DIGITS_MAX + (_DIGITS_MAX - 1)
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
    allowed = budget.items
    items = value.split(b",", allowed)  # at most `allowed` items split off, the rest left whole
    unread = len(items) > allowed
    if unread:
        del items[allowed:]
    budget.items -= len(items)
    for raw in items:
        item = raw.strip()
        if not _ITEM_MIN <= len(item) <= _ITEM_MAX:
            continue
        if item.isdigit():  # bare digits, as carriers send them: what `_ITEM` would give
            hit = _item(None, item.decode("ascii"), budget, region)
        else:
            match = _ITEM.fullmatch(item)
            if match is None:
                continue
            digits = match.group(2).translate(None, _SEPARATORS).decode("ascii")
            if len(digits) < _ITEM_MIN:
                continue
            hit = _item(match.group(1), digits, budget, region)
        if hit is not None or budget.exhausted:
            return hit
    if unread:
        budget.exhausted = True
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
