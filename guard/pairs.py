"""Identifiers in name=value pairs: Cookie headers and query strings.

Some gateways put the number in a cookie (`User-Identity-Forward-msisdn=…`, FortiOS reads
`x-up-calling-line-id=…` from one) or a billing flow puts it in the query string. The list of
names here is deliberately narrower than the header rules: cookies and parameters called `uid`,
`user_id`, `client_id` or `clid` (think `gclid`, `fbclid`) are everywhere, and removing them
would log users out or flag every ad click. Only names built on msisdn, imsi, imei/imeisv or
calling-line count.

A matching cookie pair is removed and the rest of the Cookie header kept byte-for-byte. The query
string is only reported, never rewritten: URLs are signed, cached and logged upstream already.

Cost is bounded per request, not per line: every Cookie line and the query string of a request
draw on one `Allowance` (MAX_HITS identifying pairs, MAX_PAIRS pairs parsed, MAX_BYTES bytes of
names classified). Only pairs whose bytes hold a marker word are parsed at all; the rest of a
value is passed over by three C-speed literal searches. A Cookie line that can no longer be
examined is given up on (`Allowance.cut`) and the caller removes it whole: only its own sender
builds such a request. The query string, which is only reported, is examined until the allowance
runs out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from .catalog import CATALOG, fold, shown
from .speedups import compiled

__all__ = [
    "MAX_BYTES",
    "MAX_HITS",
    "MAX_PAIRS",
    "Allowance",
    "PairHit",
    "cookie_hits",
    "marked",
    "pair_name_kind",
    "query_hits",
    "suspicious",
    "suspicious_query",
]

_NAME = re.compile(
    r"msisdn|(?:^|-)(?:imsi|imei|imeisv)(?=-|$)|(?:^|-)calling-?line(?:-?id)?(?=-|$)"
)
_KIND = {"msisdn": "msisdn", "imsi": "imsi", "imei": "imei", "imeisv": "imei"}
# Every name `_NAME` accepts holds one of these words. Three literal searches, on lower-cased
# bytes, beat one `msisdn|im[se]i|calling`: SRE skips through a string for a literal prefix
# (`im` here), but tries the alternation at every m, i and c — as fast on a 50-byte cookie,
# 2.5x slower on 1 KiB. (`in` on bytes is slower still: ~2x on both.) The same three searches,
# resumed after each pair, find the pairs to parse (`_marked`): ~1 ns per byte on 64 KiB where
# the alternation takes ~3.7.
_MSISDN, _IMSI_IMEI, _CALLING = _WORDS = tuple(
    re.compile(word).search for word in (rb"msisdn", rb"im[se]i", rb"calling")
)
# A query parameter whose (raw) name holds a `%`: it may decode to a marker word.
_ESCAPED_NAME = re.compile(rb"(?:^|(?<=[&;]))[^&;=%]*%").search
_QUERY_SEPARATOR = re.compile(rb"[&;]").search
# What `bytes.strip()` removes, and `;`: a Cookie line of nothing else holds no pair to keep.
_BLANK = b"; \t\n\r\x0b\x0c"
# The percent-escapes of the marker words' letters, lower-cased (`%4D` and `%6d` are both an m
# once folded), in the order `_decoded_marker` replaces them: `%4x`/`%5x` first become `%6x`/`%7x`.
_LETTER_ESCAPES = tuple(
    (b"%" + b"%02x" % ord(letter), letter.encode()) for letter in sorted(set("msisdnimeicalling"))
)

MAX_HITS = 64  # identifying pairs one request may report: Cookie lines and query string together
MAX_PAIRS = 256  # pairs one request may parse: those holding a marker word (or an escaped name)
MAX_BYTES = 16 * 1024  # bytes of pair names one request may decode and classify

# Classification by raw (stripped) name: a gateway sends the same few names on every request.
# Bounded: names of at most _CACHE_NAME bytes, _CACHE_MAX of them (the table starts afresh).
_CACHE_MAX = 1024
_CACHE_NAME = 128


class PairHit(NamedTuple):
    shown: str  # folded, digit-masked cookie or parameter name
    kind: str
    rule: str  # catalog or name


class Allowance:
    """What one request may still spend on cookie pairs and query parameters: identifying pairs
    reported, pairs parsed, bytes of names classified. `spent`: it ran out in the value looked
    at last. `cut` counts the Cookie lines given up on because it ran out; the caller removes
    them whole (strip mode) and reports them once."""

    __slots__ = ("cut", "hits", "pairs", "size", "spent")

    def __init__(self, hits: int = MAX_HITS, pairs: int = MAX_PAIRS, size: int = MAX_BYTES) -> None:
        self.hits = hits
        self.pairs = pairs
        self.size = size
        self.cut = 0
        self.spent = False


def marked(raw: bytes) -> bool:
    """Could `raw` (a Cookie value or a query string) hold an identifying name at all?

    A cheap test before any parsing: every name `_NAME` accepts contains one of these words. This
    is the definition; `suspicious` is its C version when that was built (`guard.speedups`): one
    pass, no lower-cased copy.
    """
    low = raw.lower()
    return (_MSISDN(low) or _IMSI_IMEI(low) or _CALLING(low)) is not None


suspicious: Callable[[bytes], bool] = marked if compiled is None else compiled.marked


def suspicious_query(query: bytes) -> bool:
    """`suspicious` for a raw query string, whose names may be percent-encoded (`ms%69sdn`)."""
    return suspicious(query) or (b"%" in query and _decoded_marker(query))


def _decoded_marker(query: bytes) -> bool:
    """Could percent-decoding `query` make a marker word? Without decoding it: the escapes of the
    marker words' letters (a dozen C-speed `replace`s, most finding nothing) become the letters.

    Never a false negative: every `%hh` that `unquote_to_bytes` would decode to one of these
    letters is replaced, and no replacement overlaps another escape. It may say yes for a query
    that does not decode to a marker (`%6%64` → `%6d` → `m`); `query_hits` decides those.
    """
    low = query.lower().replace(b"%4", b"%6").replace(b"%5", b"%7")
    for escape, letter in _LETTER_ESCAPES:
        low = low.replace(escape, letter)
    return (_MSISDN(low) or _IMSI_IMEI(low) or _CALLING(low)) is not None


def pair_name_kind(folded: str) -> str | None:
    """The kind the pair rule gives a folded cookie or parameter name, or None."""
    match = _NAME.search(folded)
    return None if match is None else _KIND.get(match.group(0).strip("-"), "msisdn")


def _classify_name(name: bytes) -> PairHit | None:
    folded = fold(name.decode("latin-1"))
    kind = pair_name_kind(folded)
    if kind is None:
        return None
    entry = CATALOG.get(folded)
    if entry is not None:
        return PairHit(shown(folded), entry.kind, "catalog")
    return PairHit(shown(folded), kind, "name")


_classified: dict[bytes, PairHit | None] = {}
_UNKNOWN = PairHit("", "", "")  # a cache miss (never a real hit: `shown` is never empty there)


def _classify(name: bytes) -> PairHit | None:
    hit = _classified.get(name, _UNKNOWN)
    if hit is not _UNKNOWN:
        return hit
    hit = _classify_name(name)
    if len(name) <= _CACHE_NAME:
        if len(_classified) >= _CACHE_MAX:
            _classified.clear()
        _classified[name] = hit
    return hit


Search = Callable[[bytes, int], "re.Match[bytes] | None"]


def _marked(
    low: bytes, searches: tuple[Search, ...], query: bool
) -> Iterator[tuple[int, int, int]]:
    """(start, end, first) of each pair of `low` that holds a match of one of `searches`, in
    order, each pair once: `first` is where its first match starts. Every byte is looked at a
    bounded number of times (each search resumes after the last pair yielded), so a value with no
    match costs the searches alone, however many pairs it has."""
    size = len(low)
    at = []
    for search in searches:
        match = search(low, 0)
        at.append(size if match is None else match.start())
    end = 0  # the end of the last pair yielded: no separator between it and the next match
    while True:
        first = min(at)
        if first >= size:
            return
        if query:
            start = max(low.rfind(b"&", end, first), low.rfind(b";", end, first)) + 1
            separator = _QUERY_SEPARATOR(low, first)
            end = size if separator is None else separator.start()
        else:
            start = low.rfind(b";", end, first) + 1
            end = low.find(b";", first)
            if end < 0:
                end = size
        yield start, end, first
        for position, search in enumerate(searches):
            if at[position] < end:
                match = search(low, end)
                at[position] = size if match is None else match.start()


def cookie_hits(
    value: bytes, allowance: Allowance | None = None
) -> tuple[bytes | None, list[PairHit]]:
    """Identifying cookie pairs in one Cookie header, and the header without them.

    The new value is None when every pair was identifying (drop the line) or when the request's
    `allowance` ran out before the line was examined to the end (`allowance.cut` counts it: the
    line is removed whole, fail closed); `value` itself when nothing was found. Only the pairs
    holding a marker word are parsed, and only their names: values are never looked at.
    """
    allowance = Allowance() if allowance is None else allowance
    found = list(_pair_hits(value, _WORDS, False, allowance))
    hits = [hit for _, _, hit in found]
    if allowance.spent:
        allowance.cut += 1
        return None, hits
    if not found:
        return value, hits
    return _without(value, [(start, end) for start, end, _ in found]), hits


def _pair_hits(
    raw: bytes, searches: tuple[Search, ...], query: bool, allowance: Allowance
) -> Iterator[tuple[int, int, PairHit]]:
    """(start, end, hit) of each identifying pair of a Cookie value or query string, in order,
    while the request's `allowance` lasts; `allowance.spent` says whether it ran out here.

    Each pair holding a marker word costs one pair; its name, if the marker is in it, costs its
    bytes, is percent-decoded in a query, and is classified; a hit costs one hit."""
    allowance.spent = False
    low = raw.lower()
    for start, end, first in _marked(low, searches, query):
        equals = low.find(b"=", start, end)
        stop = end if equals < 0 else equals
        allowance.pairs -= 1
        if allowance.pairs < 0:
            break
        if first >= stop:
            continue  # the marker is in the value
        name = raw[start:stop]
        allowance.size -= len(name)
        if allowance.size < 0:
            break
        if query and (b"%" in name or b"+" in name):
            name = unquote_to_bytes(name.replace(b"+", b" "))
            if not suspicious(name):
                continue
        hit = _classify(name.strip())
        if hit is not None:
            allowance.hits -= 1
            if allowance.hits < 0:
                break
            yield start, end, hit
    else:
        return  # every marked pair examined
    allowance.spent = True


def _without(value: bytes, removed: list[tuple[int, int]]) -> bytes | None:
    """`value` without the pairs at `removed` (in order), as `b";".join` of the pairs kept with
    the first one left-stripped; None when no pair kept holds anything but whitespace."""
    chunks = []  # runs of kept pairs, each with its own `;` between its pairs
    kept_from = 0  # where the pairs after the last removed one start
    for start, end in removed:
        if start > kept_from:
            chunks.append(value[kept_from : start - 1])
        kept_from = end + 1
    if kept_from <= len(value):
        chunks.append(value[kept_from:])
    kept = b";".join(chunks)
    if not kept.translate(None, _BLANK):
        return None
    return kept.lstrip()


def query_hits(query: bytes, allowance: Allowance | None = None) -> list[PairHit]:
    """Identifying parameter names in a raw query string (reported, never removed), while the
    request's `allowance` lasts. Only parameters whose name holds a marker word or a `%` are
    parsed, and a name is percent-decoded only then."""
    allowance = Allowance() if allowance is None else allowance
    searches = (*_WORDS, _ESCAPED_NAME) if b"%" in query else _WORDS
    return [hit for _, _, hit in _pair_hits(query, searches, True, allowance)]
