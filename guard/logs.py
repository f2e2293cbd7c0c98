"""Keep identifiers out of log lines: a structlog processor, a logging filter and one pipeline.

The guard removes identifying headers before the app sees them, but every log line around the
app can still carry a number: the access log prints the request target with its query string
(`/pay?msisdn=…`), an app logs the headers it received, an exception message quotes a value. This
module finds identifiers in free text and in structured values and replaces each with a marker
that keeps its kind (`[msisdn]`, `[imsi]`, `[subscriber_token]`, …).

Two rules, both shared with the middleware:

- **Names.** The value of a mapping key, query parameter or `name: value` / `name=value` pair
  whose name is identifying (catalog, name rules, `PRIVACY_GUARD_EXTRA_HEADERS`) is replaced,
  whatever it looks like: `msisdn=…`, `"x-up-calling-line-id": "…"`.
- **Values.** A digit run in any text (optional `+`, `%2B` or `tel:`; single spaces or hyphens
  between digits; not the tail or head of a longer alphanumeric token; not dotted like an IP
  address, a version or a decimal) is checked by `guard.detect.scan_value`, the middleware's own
  value rule: phone number, then IMSI, then IMEI. A `%XX` escape of punctuation ends a token.

A percent-encoded query pair (`ms%69sdn=…`, `subscriber[msisdn]=…`, `to=61%20491%20570%20006`) is
read as the middleware reads it: the name decoded as `guard.pairs` decodes it, the value decoded
once and searched with both rules.

Nothing here is configured on import. `configure_logging()` is what `privacy-guard run` and
`demo` call, and what an application can call at start-up.

Notes:
    Redaction fails closed: a record whose redaction raised is replaced by a fixed message, never
    emitted as it was.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import IO, Any, NamedTuple
from urllib.parse import unquote_plus, unquote_to_bytes

import structlog
from phonenumbers import PhoneNumber

from .catalog import CATALOG, SHOWN_MAX, fold, shown
from .config import LOG_FORMATS, LOG_LEVELS, GuardConfig
from .detect import Budget, Flag, Names, scan_value
from .pairs import pair_name_kind, query_hits

__all__ = [
    "NAME_STEMS",
    "SERVER_LOGGERS",
    "WITHHELD",
    "Match",
    "RedactingFilter",
    "Redactor",
    "configure_logging",
    "find_identifiers",
    "redact_identifiers",
    "redact_text",
]

# Loggers of the servers `privacy-guard run` and the examples use. Their records also reach the
# root handler; a filter on the logger itself covers handlers a server installs of its own.
SERVER_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
    "hypercorn.error",
    "hypercorn.access",
    "_granian",
    "granian.access",
)
WITHHELD = "[log record withheld: privacy-guard could not redact it]"

# --- finding identifiers in text ----------------------------------------------------------------

# A candidate number: 7+ digits with single spaces (or `%20`, as an access log re-encodes a path's
# spaces) or hyphens between them. The pattern opens with a digit so the regex engine only tries
# positions that hold one, and checks what precedes that digit in lookbehinds: not the tail of a
# token (`ab61491570006`, `x_61491570006`) nor of a dotted run (`1.61491570006`), except after a
# `%XX` escape (below). Possessive repeats take the whole run or nothing, so a run that runs into a
# token (`61491570006x`, `…0006.5`) is skipped, not shortened until it fits. A space-separated group
# that starts a clock time (`… 10:20`) or is dotted (`… 0.25s`, `… 1.1`, `… 10.0.0.1`) ends the
# run, and an ISO date (`2024-01-15`) is never one, nor does a run start at its month or day: a
# timestamp is not a phone number. A prefix (`+`, `%2B`, `tel:`) or a bracketed area code before
# the run is taken by `_BEFORE`. A `%XX` escape of a character that is no letter, digit or `_`
# (`%20`, `%2B`, `%2C`, `%3D`, …) ends a token as the character itself would: `to%3D61491570006`,
# `…%2C61491570007`. An escaped letter (`%41`) does not: `%4161491570006` is `A61491570006`, a
# token. Nor does a backslash escape, as `repr()` writes what it cannot print (`\n`, `\t`,
# `\ufeff`, `\u200b`, `\xa0`): `KeyError: '\ufeff61491570006'` holds a number.
_ESCAPED_DELIMITER = r"%(?:[01][0-9A-Fa-f]|2[0-9A-Fa-f]|3[A-Fa-f]|40|5[B-Eb-e]|60|7[B-Fb-f])"
# A backslash escape before a digit. `_find` blanks these out (same length) before it looks for
# runs, rather than `_NUMBER` testing four more lookbehinds at every digit of every line.
_REPR_ESCAPE = re.compile(r"\\(?:[nrtvfab]|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})(?=[0-9])")
_NUMBER = re.compile(
    rf"""
    [0-9]
    (?:(?<![0-9A-Za-z_][0-9])(?<![0-9][.][0-9])|(?<={_ESCAPED_DELIMITER}[0-9]))
    (?![0-9]{{3}}-[01][0-9]-[0-3][0-9](?![0-9]))
    (?<![0-9]{{4}}-[01])(?<![0-9]{{4}}-[01][0-9]-[0-3])
    (?:-?[0-9]|[ ](?![0-9]{{1,2}}:[0-9]|[0-9]+[.][0-9])[0-9]|%20[0-9]){{6,}}+
    (?![0-9A-Za-z_]|[.][0-9])
    """,
    re.VERBOSE,
)
# An escape whose two characters are digits (`%20`, `%26`, `%40`): a run read from its first digit
# (`%2061491570006` gives `2061491570006`) must be read after it as well.
_DIGIT_ESCAPE = re.compile(rf"(?={_ESCAPED_DELIMITER})%[0-9][0-9]")
_BEFORE = re.compile(
    r"""
    (?:(?:\+|%2[Bb]|[Tt][Ee][Ll]:(?:\+|%2[Bb])?)?(?:[0-9]{1,3}[ -]?)?\([0-9]{1,5}\)[ -]?
      | \(\+[0-9]{1,3}\)[ -]? | \+ | %2[Bb] | [Tt][Ee][Ll]:(?:\+|%2[Bb])?
    )\Z
    """,
    re.VERBOSE,
)
_GROUP = re.compile(r"(?: |%20)*((?:(?!%20)[^ ])+)")  # a run's groups, between spaces or `%20`
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_PLUS = re.compile(r"%2[Bb]")
_UNBRACKET = str.maketrans("", "", "()")
_MAX_GROUPS = 12  # space-separated groups of one run whose sub-runs are tried

# A `name <sep> value` pair: query parameters (`?msisdn=…&`), header lines (`X-MSISDN: …`), JSON
# and Python reprs (`"x-msisdn": "…"`, `'x-msisdn': '…'`, a list of them: `'msisdn': ['…']`),
# logfmt (`msisdn=…`), also inside an escaped JSON string (`\"x-msisdn\": \"…\"`). A value that
# is a number may contain single spaces; any other value runs to the next delimiter.
_DELIMITERS = r"""\s"'\\&;,(){}\[\]<>|"""
_FORMAT = r"%(?:\([^)]*\))?[-#0 +]*(?:[0-9]+|\*)?(?:\.(?:[0-9]+|\*))?[diouxXeEfFgGcrsa]"
# A number as people write one: `+`, `%2B` or `tel:`, digits with single blanks or hyphens, and
# bracketed groups (`+1 (201) 555-0123`, `+44 (0)7700 900123`, `(020) 7946 0000`).
_DIAL_FIRST = r"(?:\(\+?[0-9]{1,5}\)[ -]?)?[0-9]"  # a first digit, a bracketed group before it
_DIAL_NEXT = r"(?:[ -]?[0-9]|[ -]?\([0-9]{1,5}\)[ -]?[0-9])"  # each next digit
_DIALLED = rf"(?:\+|%2[Bb]|[Tt][Ee][Ll]:\+?)?{_DIAL_FIRST}{_DIAL_NEXT}*+"
_KEYED = re.compile(
    rf"""
    (?<![\w.-])(?P<key>[A-Za-z_-][\w.-]{{0,127}})
    \\?["']?[ \t]*[:=][ \t]*
    (?:[\[(][ \t]*(?=b?\\?["']|[+0-9])(?!\+?[0-9]{{1,5}}\)))?(?:b(?=\\?["']))?\\?["']?
    (?P<value>
        {_DIALLED}(?:,{_DIALLED})*+(?![^{_DELIMITERS}./]|[.][^{_DELIMITERS}])
      | (?!{_FORMAT})(?!b\\?["'])[^{_DELIMITERS}]+
    )
    """,
    re.VERBOSE,
)
# A `(name, value)` pair written as a Python or JSON sequence: `[('x-uidh', '…')]`,
# `dict_items([(b'x-msisdn', b'…')])`, `ValueError('x-msisdn', '…')`, `[["x-msisdn", "…"]]`, also
# escaped inside a JSON string, once or twice. Both elements quoted (prose like `msisdn, 447…`
# is no pair) and the pair opened and closed by brackets.
_TUPLE = re.compile(
    r"""
    [(\[][ \t]*b?\\{0,3}(?P<q>["'])(?P<key>[A-Za-z_-][\w.-]{0,127})\\{0,3}(?P=q)[ \t]*,[ \t]*
    b?\\{0,3}(?P<r>["'])(?P<value>[^"'\\\n]++)\\{0,3}(?P=r)[ \t]*[)\]]
    """,
    re.VERBOSE,
)
# A header as a name/value object, written as JSON, a repr or a dataclass:
# `{"name": "X-UIDH", "value": "…"}`, `Header(name='x-msisdn', value='…')`.
_NAME_VALUE = re.compile(
    r"""
    \bname\\?["']?[ \t]*[:=][ \t]*\\?["'](?P<key>[A-Za-z_-][\w.-]{0,127})\\?["'][ \t]*,[ \t]*
    \\?["']?value\\?["']?[ \t]*[:=][ \t]*b?\\?["'](?P<value>[^"'\\\n]++)
    """,
    re.VERBOSE,
)
# A validation error's field and input, as pydantic and FastAPI log them: the name is the last
# item of `loc`, the value is `input`, a message apart. `errors()` as a repr or JSON (`'loc':
# ('query', 'msisdn'), 'msg': '…', 'input': '…'`; never past the next error's `loc`), and a
# `ValidationError` as text: the dotted `loc` on a line of its own, the input on the next
# (`msisdn\n  Input should be … [type=…, input_value='…', input_type=str]`).
_LOC_INPUT = re.compile(
    r"""
    \bloc\\?["']?[ \t]*:[ \t]*[\[(][^\[\]()\n]{0,512}?
    \\?["'](?P<key>[A-Za-z_-][\w.-]{0,127})\\?["'][ \t]*,?[ \t]*[\])]
    (?:(?!\bloc\\?["'])[^\n]){0,1024}?
    \binput\\?["']?[ \t]*:[ \t]*b?\\?["']?(?P<value>[^"'\\\s,{}\[\]][^"'\\\n,{}\[\]]*+)
    """,
    re.VERBOSE,
)
_LOC_LINE = re.compile(
    r"""
    ^(?:[\w-]+\.)*(?P<key>[A-Za-z_-][\w-]{0,127})\n
    [ ]{2}[^\n]{0,1024}?\[type=[\w.]+,[ ]input_value=
    b?["']?(?P<value>[^"'\s,{}\[\]][^"'\n,{}\[\]]*+)
    """,
    re.VERBOSE | re.MULTILINE,
)
# An XML element, as SOAP and XML APIs log them (Parlay X, carriers' own): `<msisdn>…</msisdn>`,
# `<ns2:MSISDN xsi:type="…">…</ns2:MSISDN>`. A namespace prefix stays in the key: a name rule
# finds its stem anywhere, a catalog name needs the bare name, which `name_kind` tries too.
_ELEMENT = re.compile(
    r"<(?P<key>[A-Za-z_-][\w.:-]{0,127})(?:[ \t][^<>]{0,512})?>(?P<value>[^<]++)</(?P=key)>"
)
# An identifying name and a number after nothing but blanks (also a tab escaped in a JSON
# string), an arrow, a slash, a bracket or a bar, as prose, ad-hoc debug lines and REST paths
# write them: `msisdn 447700900123`, `X-IMEISV\t4901542032375101`, `msisdn -> …`,
# `/msisdn/…/balance`. Only a number of 7+ digits: `msisdn lookup failed` is no pair.
_SPACED = re.compile(
    rf"""
    (?<![\w.-])(?P<key>[A-Za-z_-][\w.-]{{0,127}})
    (?:(?:[ \t]|\\t)+|[ \t]*(?:->|=>|[/|;,<\[(])[ \t]*)
    (?P<value>(?:\+|[Tt][Ee][Ll]:\+?)?{_DIAL_FIRST}{_DIAL_NEXT}{{6,}}+)(?![\w]|[.][\w])
    """,
    re.VERBOSE,
)
# How phonenumbers prints a `PhoneNumber`: `str()` gives `Country Code: 61 National Number:
# 491570006`, `repr()` gives `PhoneNumber(country_code=61, national_number=491570006, …)` — as an
# f-string, `%s` / `%r` argument or exception message writes it. The national number alone is too
# short to be read as a number without a region, so the label decides.
_PHONE_OBJECT = re.compile(r"(?:National Number: |national_number=)(?P<value>[0-9]++)")
_MARKER = re.compile(r"\[[a-z_]+\]")  # a value redacted already
_ALNUM = re.compile(r"[0-9A-Za-z]")
_FORMAT_ONLY = re.compile(_FORMAT)
# `msisdn=%s` in a logging format string: the name is in the message, the number in an argument.
_NAMED_FORMAT = re.compile(
    rf"""(?<![\w.-])(?P<key>[A-Za-z_-][\w.-]{{0,127}})\\?["']?[ \t]*[:=][ \t]*\\?["']?{_FORMAT}"""
)
# Values that say "nothing here" are left as they are, so they are neither hidden nor counted.
_PLACEHOLDERS = frozenset({"-", "null", "none", "None", "true", "false", "undefined", "nil"})

# Substrings of every name the name rules flag (`guard.detect.name_rule`): a text without any of
# them and without a catalog or extra name as a token has no identifying `name=value` pair, and
# the (slower) pair pattern is not run on it. tests/test_logs.py keeps this in step with detect.
NAME_STEMS = ("msisdn", "mdn", "clid", "calling", "imsi", "imei", "subno", "uidh", "acr", "subnym")
_NAME_TOKEN = re.compile(r"[a-z0-9][a-z0-9-]*")
_HEADER_ATOM = re.compile(r"\{([^{}]+)\}[ieo]")
# The next item of a list value, after its first: `, '…'`, `, b"…"`, `,…` (closing quote first).
_NEXT_ITEM = re.compile(rf"""\\?["']?[ \t]*,[ \t]*b?\\?["']?(?P<value>[^{_DELIMITERS}]+)""")
_LIST_ITEMS = 64
_LINES_FROM = 4096  # longer texts are narrowed to the lines that hold a name
_RESCANS = 16  # values of pairs searched again for a pair inside them, per text or line

_CHECKS_PER_CANDIDATE = 8  # scan_value spends at most 4; a candidate is never cut short
_NAME_CACHE_MAX = 4096

# Query strings as a server logs them: percent-encoded (`ms%69sdn=…`, `to=61%20491%20570%20006`,
# `to=+61+491+570+006`) or with bracketed names (`subscriber[msisdn]=…`). A run is a token (no
# space, quote, backslash, `<>{}|^` or backtick) that holds `=`; it is found only from the start
# of a token, so a token without `=` costs one failed lookbehind per character.
_RUN_STOPS = r"""\s"'\\<>{}|^`"""
_QUERY_RUN = re.compile(rf"(?<![^{_RUN_STOPS}])[^{_RUN_STOPS}=]*+=[^{_RUN_STOPS}]*+")
_QUERY_PART = re.compile(r"[^&;]+")
_ENCODED = re.compile(r"[%+\[]")  # what the plain rules cannot see through
_NAME_SEGMENT = re.compile(r"[^\[\]]+")  # `subscriber[msisdn][0]`: subscriber, msisdn, 0
_INNER_PAIR = re.compile(r"[=:,]|%(?:3[AaDd]|2[Cc])")
_PAIR_WORDS = re.compile(r"msisdn|im[se]i|calling")  # every name guard.pairs flags holds one
# Percent-escaped delimiters that make a pair: uvicorn re-encodes `:`, `;` and `=` in a logged
# path (`/subscribers/msisdn%3A…`, `;msisdn%3D…`), browsers send quotes escaped in a JSON query
# value (`?variables={%22msisdn%22:%22…%22}`). Tokens holding one are read with them decoded.
_PAIR_ESCAPE = re.compile(r"%(?:3[AaBbDd]|2[27Cc])")
_PAIR_ESCAPES = {"%3a": ":", "%3b": ";", "%3d": "=", "%22": '"', "%27": "'", "%2c": ","}
_TOKEN = re.compile(rf"(?<![^{_RUN_STOPS}])[^{_RUN_STOPS}]++")
_QUERY_NAME_MAX = 256  # longer is no parameter name worth decoding
_QUERY_VALUE_MAX = 16384  # decoded values are searched up to this length (h11's request-line cap)


class Match(NamedTuple):
    """An identifier found in a text: where it is and what it is — never the text itself."""

    start: int
    end: int
    kind: str  # msisdn, imsi, imei, subscriber_token, device_id, …
    rule: str  # "name": the value of an identifying name; "value": the value rule
    name: str | None  # the identifying name as shown (folded, digits masked) for rule "name"


class Redactor:
    """Finds and replaces identifiers in text and in structured log values.

    `region` enables national-format numbers (as `PRIVACY_GUARD_DEFAULT_REGION` does for the
    middleware); `extra_headers` are names treated as identifying, like
    `PRIVACY_GUARD_EXTRA_HEADERS`. An instance is a structlog processor.
    """

    __slots__ = ("_kinds", "_names", "_stems", "_tokens", "region")

    def __init__(self, region: str | None = None, extra_headers: Iterable[str] = ()) -> None:
        self.region = region
        # No allow-list here: an operator who lets a header reach the app still wants it out of
        # the logs.
        extra = [fold(name) for name in extra_headers]
        self._names = Names(extra=extra)
        self._kinds: dict[str, str | None] = {}
        self._stems = NAME_STEMS
        # As `_NAME_TOKEN` finds them: `-rapmin` (a catalog name) and `--x-wsb-cli` (a logged
        # command-line option) are both found by the token without its leading hyphens.
        self._tokens = frozenset(name.lstrip("-") for name in [*CATALOG, *extra])

    # --- names ---

    def name_kind(self, name: str) -> str | None:
        """The kind an identifying name (header, parameter, key) carries, or None."""
        kind = self._kinds.get(name, "")
        if kind != "":
            return kind
        kind = self._name_kind(name)
        # An access-log atom of gunicorn and hypercorn (`%({x-uidh}i)s`: a request header), or an
        # XML name with a namespace prefix (`ns2:x-wsb-cli`): the name inside.
        atom = _HEADER_ATOM.fullmatch(name)
        local = atom[1] if atom else name.rpartition(":")[2]
        if kind is None and local != name:
            kind = self._name_kind(local)
        if kind is None and local[:1] == "-":
            # A command-line option in a logged argv: `--msisdn=…`, `--x-up-subno …`; a name
            # may itself start with one `-` (the catalog's `-RAPMIN`: `---rapmin=…`).
            bare = local.lstrip("-")
            kind = self._name_kind(bare) or self._name_kind(f"-{bare}")
        if len(self._kinds) < _NAME_CACHE_MAX:
            self._kinds[name] = kind
        return kind

    def _name_kind(self, name: str) -> str | None:
        folded = fold(name)
        verdict = self._names.classify_folded(folded)
        if isinstance(verdict, Flag):
            # The guard's own pseudonym header is meant for the app (rate limits, fraud scores)
            # and holds no number: it is only "identifying" when a client forges it.
            return None if verdict.forced else verdict.kind
        # A name logged as `name=value` may be a query parameter or a cookie pair, which the
        # middleware reads by the pair rule: `callingline=` is one, though no header name.
        return pair_name_kind(folded)

    # --- text ---

    def find(self, text: str) -> list[Match]:
        """Every identifier in `text`, in order, not overlapping."""
        found = self._find(text)
        encoded = self._query(text)
        if "%" in text and _PAIR_ESCAPE.search(text) is not None:
            encoded += self._escaped(text)
        return _merge([*found, *encoded]) if encoded else found

    def _find(self, text: str) -> list[Match]:
        """`find` without the query pass: names, pairs and digit runs as written."""
        keyed = self._pairs(text)
        if "ational" in text:
            printed = [
                Match(*number.span("value"), "msisdn", "name", "national-number")
                for number in _PHONE_OBJECT.finditer(text)
            ]
            if printed:
                keyed = _merge(keyed + printed)
        found = list(keyed)
        next_pair = 0  # runs and pairs both come in order: the first pair not yet behind a run
        blanked = _REPR_ESCAPE.sub(_blank, text) if "\\" in text else text
        for run in _NUMBER.finditer(blanked):
            start, end = run.span()
            if start and (
                text[start - 1] in _PREFIX_ENDS
                or (text[start - 1] in " -" and text[start - 2 : start - 1] == ")")
            ):
                start = _with_prefix(text, start)
            if keyed:
                while next_pair < len(keyed) and keyed[next_pair].end <= start:
                    next_pair += 1
                if next_pair < len(keyed) and keyed[next_pair].start < end:
                    continue  # inside the value of an identifying name: already found
            if _in_uuid(text, start, end):
                continue
            candidate = text[start:end]
            kind = self._check(candidate)
            if kind is None and start and _DIGIT_ESCAPE.match(text, start - 1, start + 2):
                start += 2  # the run began inside an escape: `/call%2061491570006`
                candidate = text[start:end]
                kind = self._check(candidate)
            if kind is not None:
                found.append(Match(start, end, kind, "value", None))
            elif " " in candidate or "%20" in candidate:
                self._sub_runs(text, start, end, found)
        if keyed and len(found) > len(keyed):
            found.sort()
        return found

    def may_hold_names(self, text: str) -> bool:
        """False when `text` cannot hold an identifying `name=value` pair: no name-rule stem and
        no catalog or extra name as a token. Cheap, so the pair pattern runs on few texts."""
        low = text.lower()
        for stem in self._stems:
            if stem in low:
                return True
        if "_" in low or "." in low:
            low = low.replace("_", "-").replace(".", "-")
        return not self._tokens.isdisjoint(_NAME_TOKEN.findall(low))

    def _pairs(self, text: str) -> list[Match]:
        if (
            "=" not in text and ":" not in text and "," not in text and _DIGIT.search(text) is None
        ) or not self.may_hold_names(text):
            return []
        if len(text) <= _LINES_FROM:
            return self._pairs_in(text, 0, len(text))
        # A long text (a block of a log file): only the lines around a stem or a name.
        low = text.lower()
        if len(low) != len(text):  # a few characters lower-case to two: positions would drift
            return [m for line in _line_spans(text) for m in self._pairs_in(text, *line)]
        folded = low.replace("_", "-").replace(".", "-")
        needles = [*self._stems, *self._tokens.intersection(_NAME_TOKEN.findall(folded))]
        lines: set[tuple[int, int]] = set()
        for needle in needles:
            at = folded.find(needle)
            while at >= 0:
                start = text.rfind("\n", 0, at) + 1
                end = text.find("\n", at)
                end = len(text) if end < 0 else end + 1
                lines.add((start, end))
                at = folded.find(needle, end)
        found: list[Match] = []
        for start, end in sorted(lines):
            found.extend(self._pairs_in(text, start, end))
        return found

    def _pairs_in(self, text: str, start: int, end: int) -> list[Match]:
        found = self._named(_KEYED, text, start, end)
        more = self._named(_SPACED, text, start, end)
        part = text[start:end] if start or end != len(text) else text
        if "," in part:
            more += self._named(_TUPLE, text, start, end)
        if "</" in part:
            more += self._named(_ELEMENT, text, start, end)
        if "value" in part:
            more += self._named(_NAME_VALUE, text, start, end)
        if "input" in part:
            if "loc" in part:
                more += self._named(_LOC_INPUT, text, start, end)
            if "input_value=" in part:
                more += self._named(_LOC_LINE, text, start, end)
        return _merge(found + more) if more else found

    def _named(self, pattern: re.Pattern[str], text: str, start: int, end: int) -> list[Match]:
        """The values of `pattern`'s (key, value) matches whose key is an identifying name.

        The value of a `name=value` pair whose name is not identifying may hold one that is:
        `url=https://shop.example/pay?msisdn=…`, `error: msisdn=…`, `headers: x-uidh: …`. It
        is searched again, at most _RESCANS times per call (`a=b=c=…` would otherwise cost one
        pass per `=`)."""
        found = []
        spans = [(start, end)]
        rescans = _RESCANS
        while spans:
            low, high = spans.pop()
            for pair in pattern.finditer(text, low, high):
                value = pair["value"]
                if value in _PLACEHOLDERS or _MARKER.fullmatch(value):
                    continue
                key = pair["key"]
                kind = self.name_kind(key)
                # `['x-msisdn', 'x-imsi']` is a list of names, not a pair.
                if kind is not None and (pattern is not _TUPLE or self.name_kind(value) is None):
                    found.append(Match(*pair.span("value"), kind, "name", shown(key)))
                    between = text[pair.end("key") : pair.start("value")]
                    if pattern is _KEYED and ("[" in between or "(" in between):
                        found += _list_items(text, pair.end("value"), high, kind, shown(key))
                elif (
                    kind is None
                    and rescans
                    and pattern is _KEYED
                    and ("=" in value or ":" in value)
                    and self.may_hold_names(value)
                ):
                    rescans -= 1
                    inner_low, inner_high = pair.span("value")
                    if value[-1] in ":=":  # `headers: x-uidh: …`: its value lies past this one
                        inner_high = high
                    spans.append((inner_low, inner_high))
        return found if rescans == _RESCANS else _merge(found)

    # --- query strings ---

    def _query(self, text: str) -> list[Match]:
        """Identifiers the plain rules miss in percent-encoded or bracketed query pairs.

        Only pairs holding `%`, `+` or `[` are looked at. A name is decoded as the middleware
        decodes it (`guard.pairs.query_hits`: `%XX`, `+` as space, Latin-1) and, bracketed, by its
        parts; an identifying name hides its raw value. Otherwise the value is decoded and searched
        (one level, no further decoding); if it holds an identifier, its whole raw span is one.
        """
        if "=" not in text or ("%" not in text and "+" not in text and "[" not in text):
            return []
        found: list[Match] = []
        for run in _QUERY_RUN.finditer(text):
            start, end = run.span()
            if _ENCODED.search(text, start, end) is None:
                continue
            mark = text.find("?", start, end)
            if mark >= 0 and mark < text.find("=", start, end):
                start = mark + 1  # `/pay?…`: the path is no parameter name
            for part in _QUERY_PART.finditer(text, start, end):
                low, high = part.span()
                if _ENCODED.search(text, low, high) is None:
                    continue
                equals = text.find("=", low, high)
                if equals > low:
                    match = self._query_pair(text, low, equals, high)
                    if match is not None:
                        found.append(match)
        return found

    def _escaped(self, text: str) -> list[Match]:
        """Identifying pairs whose delimiters are percent-escaped (`_PAIR_ESCAPE`): each token
        holding such an escape is read with those escapes decoded, and the pairs found there are
        mapped back to the raw text. Numbers need no decoding: an escape ends a token for them."""
        if not self.may_hold_names(_PAIR_ESCAPE.sub(" ", text)):
            return []  # the escapes stand for delimiters, never letters: a name is written out
        found: list[Match] = []
        done = 0  # the lines before this have been read
        for escape in _PAIR_ESCAPE.finditer(text):
            if escape.start() < done:
                continue
            line = text.rfind("\n", 0, escape.start()) + 1
            done = text.find("\n", escape.end())
            done = len(text) if done < 0 else done
            for token in _TOKEN.finditer(text, line, done):
                low, high = token.span()
                if high - low > _QUERY_VALUE_MAX or not _PAIR_ESCAPE.search(text, low, high):
                    continue
                decoded, at = _decode_delimiters(text, low, high)
                pairs = self._pairs(decoded)  # nothing, cheaply, when it cannot hold a name
                found += [m._replace(start=at[m.start], end=at[m.end]) for m in pairs]
        return found

    def _query_pair(self, text: str, low: int, equals: int, high: int) -> Match | None:
        value = text[equals + 1 : high]
        if _ALNUM.search(value) is None or value in _PLACEHOLDERS:
            return None  # empty, or only punctuation: `msisdn=['…']` cut at the quote is `[`
        if _MARKER.match(value.lstrip("(")) and _DIGIT.search(value) is None:
            return None  # redacted already: `[msisdn]`, `([msisdn],`, `[msisdn]/orders`
        if "%" in value and _FORMAT_ONLY.fullmatch(value):
            return None  # `msisdn=%s` in a format string: the argument is redacted on its own
        name = text[low:equals]
        if len(name) <= _QUERY_NAME_MAX:
            decoded_name, kind = self._query_name(name)
            if kind is not None:
                return Match(equals + 1, high, kind, "name", shown(decoded_name))
        if ("%" not in value and "+" not in value) or len(value) > _QUERY_VALUE_MAX:
            return None  # nothing to decode: the plain rules read it as it is
        if len(_DIGIT.findall(value)) < 7 and _INNER_PAIR.search(value) is None:
            # Decoding never adds digits (`%3X` shows two) nor separators it does not spell
            # out: fewer than 7 digits and no `=`, `:` or `,` is neither a number nor a pair.
            return None
        decoded = unquote_plus(value, errors="replace")
        inner = self._find(decoded)
        if not inner:
            return None
        first = inner[0]
        return Match(equals + 1, high, first.kind, first.rule, first.name)

    def _query_name(self, name: str) -> tuple[str, str | None]:
        """A parameter name decoded as the middleware decodes it, and the kind it carries."""
        decoded = name
        if "%" in name or "+" in name:
            # Lone surrogates (text decoded with `surrogateescape`) pass as the bytes they were.
            raw = name.replace("+", " ").encode("utf-8", "surrogatepass")
            decoded = unquote_to_bytes(raw).decode("latin-1")
        kind = self.name_kind(decoded)
        if kind is None and ("[" in decoded or "]" in decoded):
            for segment in _NAME_SEGMENT.findall(decoded):
                kind = self.name_kind(segment)
                if kind is not None:
                    break
        if kind is None and _PAIR_WORDS.search(decoded.lower()) is not None:
            # The middleware's own verdict, should its decoding see more than this one.
            hits = query_hits(name.encode("latin-1", "replace"))
            if hits:
                kind = hits[0].kind
        return decoded, kind

    def text(self, text: str) -> str:
        """`text` with every identifier replaced by its marker (`[msisdn]`)."""
        matches = self.find(text)
        if not matches:
            return text
        parts = []
        position = 0
        for match in matches:
            parts.append(text[position : match.start])
            parts.append(f"[{match.kind}]")
            position = match.end
        parts.append(text[position:])
        return "".join(parts)

    def _check(self, candidate: str) -> str | None:
        if len(candidate) < 10 and self.region is None and candidate[0].isdigit():
            return None  # bare and under 10 digits: only a national number could be that short
        if "%" in candidate:
            candidate = _PLUS.sub("+", candidate).replace("%20", " ")
        if "(" in candidate:
            # `+44 (0)20 …`: the bracketed 0 is the trunk prefix, dropped when dialled abroad.
            candidate = candidate.replace("(0)", "").translate(_UNBRACKET).replace("  ", " ")
        value = candidate.encode("ascii")
        hit = scan_value(value, Budget(_CHECKS_PER_CANDIDATE, len(value)), self.region)
        return None if hit is None else hit.kind

    def _sub_runs(self, text: str, start: int, end: int, found: list[Match]) -> None:
        """A run of space-separated groups that is no identifier as a whole may hold one:
        `status 3 61491570006` is one run. Try its contiguous groups, longest first."""
        groups = [g.span(1) for g in _GROUP.finditer(text, start, end)]
        count = len(groups)
        sizes: Iterable[int] = range(count - 1, 0, -1) if count <= _MAX_GROUPS else (1,)
        taken: list[tuple[int, int]] = []
        for size in sizes:
            for first in range(count - size + 1):
                low, high = groups[first][0], groups[first + size - 1][1]
                if any(a < high and low < b for a, b in taken):
                    continue
                candidate = text[low:high]
                if sum(c.isdigit() for c in candidate) < 7:
                    continue
                kind = self._check(candidate)
                if kind is not None:
                    taken.append((low, high))
                    found.append(Match(low, high, kind, "value", None))
        if taken:
            found.sort()

    # --- structured values ---

    def value(self, value: Any, depth: int = 0, names: bool = False) -> Any:
        """`value` with identifiers replaced: strings and bytes, mappings (by key and by value),
        lists, tuples, sets and mapping views, numbers (a whole float as the integer it is), a
        `phonenumbers.PhoneNumber` always; anything else as structlog's JSON renderer shows it
        (`__structlog__()`) and by its `repr`, as other renderers do.
        `names`: `value` is a collection of header, cookie or parameter names (see `mapping`).
        """
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            text = _number_text(value)
            return value if text is None else _same_or(value, text, self.text(text))
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("latin-1")
            redacted = self.text(text)
            return value if redacted == text else redacted.encode("latin-1")
        if isinstance(value, PhoneNumber):
            return "[msisdn]"  # its repr spells the national number out in a field of its own
        if depth >= 16:
            text = repr(value)
            return _same_or(value, text, self.text(text))
        if isinstance(value, Mapping):
            return self.mapping(value, depth + 1, names)
        if isinstance(value, list | tuple):
            items = self._pair(value, names)
            if items is None:
                items = [self.value(item, depth + 1, names) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, set | frozenset):
            return {self.value(item, depth + 1) for item in value}
        if isinstance(value, ItemsView | KeysView | ValuesView):
            # `headers.items()`: a list of (name, value) pairs, redacted by name.
            return self.value(list(value), depth + 1, names)
        hook = getattr(type(value), "__structlog__", None)
        if callable(hook):
            # What JSONRenderer prints instead of the repr (a hook that fails: the repr).
            try:
                rendered = hook(value)
            except Exception:
                rendered = None
            redacted = self.value(rendered, depth + 1)
            if redacted is not rendered and redacted != rendered:
                return redacted
        text = repr(value)
        return _same_or(value, text, self.text(text))

    def mapping(
        self, mapping: Mapping[Any, Any], depth: int = 0, names: bool = False
    ) -> dict[Any, Any]:
        """A copy of `mapping`: the values of identifying keys replaced by a marker, other values
        redacted, keys a client could have chosen made safe to show.

        Keys of a mapping logged as `headers`, `cookies` or `query` (and their `request_`,
        `response_`, `raw_` forms) are names a client sent: they are shown as the guard shows
        names (`catalog.shown`: folded, control bytes dropped, digits masked, capped). Other keys
        only when they hold control characters, are longer than 64 characters or hold as many
        digits as a phone number.
        """
        out: dict[Any, Any] = {}
        named = mapping.get("name") if "value" in mapping else None
        if isinstance(named, str) and len(mapping) <= 3 and 0 < len(named) <= 128:
            # `{"name": "X-UIDH", "value": "…"}`: a header as HAR files, gateways and OpenAPI
            # examples write one. Its value is the named header's.
            mapping = self._named_field(mapping, named, "value")
        loc = mapping.get("loc") if "input" in mapping else None
        if isinstance(loc, list | tuple) and loc and isinstance(loc[-1], str):
            # A validation error (pydantic's `errors()`): its input is the value of `loc`'s field.
            mapping = self._named_field(mapping, loc[-1], "input")
        for key, item in mapping.items():
            if key in _UNTOUCHED:
                out[key] = item
                continue
            text = key.decode("latin-1") if isinstance(key, bytes) else key
            if not isinstance(text, str):
                # JSONRenderer shows a number key as a string: `{"61491570006": …}`.
                number = _number_text(key) if isinstance(key, int | float) else None
                redacted = number if number is None else self.text(number)
                out[key if redacted == number else redacted] = self.value(item, depth)
                continue
            kind = self.name_kind(text)
            safe_text = shown(text) if names else _safe_key(text)
            safe = key if safe_text == text else safe_text
            if kind is not None and not _placeholder(item):
                out[safe] = _marker(kind, item)
            else:
                out[safe] = self.value(item, depth, fold(text) in _NAMED)
        return out

    def _named_field(self, mapping: Mapping[Any, Any], name: str, field: str) -> Mapping[Any, Any]:
        """`mapping` with `field` replaced by a marker if `name` is identifying: an object that
        names the header (or parameter) its `field` holds the value of."""
        kind = self.name_kind(name)
        if kind is None or _placeholder(mapping[field]):
            return mapping
        return {**mapping, field: _marker(kind, mapping[field])}

    def _pair(self, value: list[Any] | tuple[Any, ...], names: bool = False) -> list[Any] | None:
        """A `(name, value)` pair, as ASGI headers and `headers.items()` hold them: the name made
        safe to show and, when it is identifying, the value replaced by a marker. None when
        `value` is not such a pair or there is nothing to change."""
        if len(value) != 2:
            return None
        first = value[0]
        name = first.decode("latin-1") if isinstance(first, bytes) else first
        if not isinstance(name, str) or not 0 < len(name) <= 128 or " " in name:
            return None
        kind = self.name_kind(name)
        safe = shown(name) if names else _safe_key(name)
        if safe != name:
            first = safe.encode("latin-1") if isinstance(first, bytes) else safe
        elif kind is None or _placeholder(value[1]):
            return None
        if kind is None or _placeholder(value[1]):
            return [first, self.value(value[1])]
        return [first, _marker(kind, value[1])]

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        """The structlog processor; see `redact_identifiers`. Fails closed: an event whose
        redaction raised is replaced by WITHHELD, never passed on as it was nor raised into the
        application's logging call."""
        try:
            if not isinstance(event_dict, Mapping):
                return self.value(event_dict)
            redacted = self.mapping(event_dict)
        except Exception:
            return {"event": WITHHELD}
        if isinstance(event_dict, MutableMapping):
            event_dict.clear()
            event_dict.update(redacted)
            return event_dict
        return redacted


# Mappings (and lists of pairs) whose keys are names a client sent.
_NAMED = frozenset(
    f"{prefix}{what}"
    for prefix in ("", "request-", "response-", "raw-")
    for what in ("headers", "cookies", "cookie", "query", "query-params", "params")
)


def _marker(kind: str, value: Any) -> Any:
    marker = f"[{kind}]"
    return marker.encode("ascii") if isinstance(value, bytes) else marker


# Left for the exception formatter and ProcessorFormatter (`exc_info` is redacted as the text the
# formatter makes of it).
_UNTOUCHED = frozenset({"exc_info", "_record", "_from_structlog"})


def _same_or(original: Any, text: str, redacted: str) -> Any:
    return original if redacted == text else redacted


def _number_text(number: int | float) -> str | None:
    """A number as the digits a log line would show, when it has enough of them (7+) to be an
    identifier: `61491570006`, `61491570006.0` and `-61491570006` alike. None otherwise (a
    fraction is a measurement, as the text rule reads `…0006.5`; and for bool)."""
    if isinstance(number, bool):
        return None
    if isinstance(number, float):
        if not (math.isfinite(number) and number.is_integer() and abs(number) >= 1e6):
            return None
        number = int(number)
    text = str(abs(number))
    return text if len(text) >= 7 else None


_FLOAT_FORMAT = re.compile(r"%[-#0 +]*[0-9]*\.0[fFeEgG]")


def _fraction(value: Any) -> bool:
    """A float with a fraction and 7+ digits before its point, which `%.0f` prints whole."""
    return (
        isinstance(value, float)
        and math.isfinite(value)
        and not value.is_integer()
        and abs(value) >= 1e6
    )


def _placeholder(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, str) and value in _PLACEHOLDERS)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DIGIT = re.compile(r"[0-9]")


def _safe_key(key: str) -> str:
    """A mapping key as it may be logged. A header or cookie name is client bytes: one with
    control characters, too long, or with as many digits as a phone number is shown as
    `catalog.shown` shows names (folded, control bytes dropped, digits masked, capped)."""
    if len(key) <= SHOWN_MAX and not _CONTROL.search(key) and len(_DIGIT.findall(key)) < 7:
        return key
    return shown(key)


_PREFIX_ENDS = frozenset("+:)Bb")


def _line_spans(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield start, end
        start = end


def _with_prefix(text: str, start: int) -> int:
    """Where a number starting at `start` really starts: with its `+`, `%2B` or `tel:` and a
    bracketed area code (`+1 (201) 555-0123`), when what precedes them ends a token."""
    before = _BEFORE.search(text, max(0, start - 24), start)
    if before is None or before.start() == start:
        return start
    first = before.start()
    previous = text[first - 1 : first] if first else ""
    if previous and (
        previous.isalnum()
        or previous == "_"
        or (previous == "." and text[first - 2 : first - 1].isdigit())
    ):
        return start
    return before.start()


def _merge(matches: list[Match]) -> list[Match]:
    """`matches` in order, overlapping ones joined into one span (the earlier one's kind)."""
    out: list[Match] = []
    for match in sorted(matches, key=lambda m: (m.start, -m.end)):
        if out and match.start < out[-1].end:
            if match.end > out[-1].end:
                out[-1] = out[-1]._replace(end=match.end)
            continue
        out.append(match)
    return out


def _decode_delimiters(text: str, low: int, high: int) -> tuple[str, list[int]]:
    """`text[low:high]` with the escapes of `_PAIR_ESCAPES` decoded, and for each position of
    the decoded text (and its end) the position in `text` it came from."""
    parts: list[str] = []
    at: list[int] = []
    position = low
    for escape in _PAIR_ESCAPE.finditer(text, low, high):
        start = escape.start()
        parts += (text[position:start], _PAIR_ESCAPES[escape[0].lower()])
        at += range(position, start + 1)
        position = escape.end()
    parts.append(text[position:high])
    at += range(position, high + 1)
    return "".join(parts), at


def _blank(match: re.Match[str]) -> str:
    return " " * len(match[0])


def _list_items(text: str, position: int, end: int, kind: str, name: str) -> list[Match]:
    """The items after the first of an identifying name's list value: `'msisdn': ['…', '…']`
    (`parse_qs` gives a list per name), at most _LIST_ITEMS of them."""
    found = []
    for _ in range(_LIST_ITEMS):
        item = _NEXT_ITEM.match(text, position, end)
        if item is None:
            break
        found.append(Match(*item.span("value"), kind, "name", name))
        position = item.end("value")
    return found


def _in_uuid(text: str, start: int, end: int) -> bool:
    """A group of a UUID is never a phone number, even when it is all digits."""
    if not (text[start - 1 : start] == "-" or text[end : end + 1] == "-"):
        return False
    window = text[max(0, start - 36) : end + 36]
    offset = max(0, start - 36)
    return any(
        u.start() + offset <= start and end <= u.end() + offset for u in _UUID.finditer(window)
    )


_DEFAULT = Redactor()


def find_identifiers(text: str, region: str | None = None) -> list[Match]:
    """Every identifier in `text` (spans, kind, rule; never the digits). See `Redactor.find`."""
    return (_DEFAULT if region is None else Redactor(region)).find(text)


def redact_text(text: str, region: str | None = None) -> str:
    """`text` with every identifier replaced by a marker that keeps its kind."""
    return (_DEFAULT if region is None else Redactor(region)).text(text)


def redact_identifiers(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: replace identifiers in an event with `[kind]` markers.

    Redacts the values of identifying keys at any depth (a `headers` dict the app logs:
    `{"x-msisdn": "[msisdn]"}`), phone numbers, IMSIs and IMEIs inside any string (`msg="call
    [msisdn]"`, `/pay?msisdn=[msisdn]`), lists, tuples and nested dicts; client-chosen keys with
    control characters or number-like digit runs are shown as `catalog.shown` shows names.

    Where it goes: after every processor that adds or formats text from outside — after
    `structlog.stdlib.PositionalArgumentsFormatter`, `format_exc_info` / `ExceptionRenderer`
    and `StackInfoRenderer` — and before anything that renders or emits: before `JSONRenderer`,
    `ConsoleRenderer`, `KeyValueRenderer`, `LogfmtRenderer`, and before
    `ProcessorFormatter.wrap_for_formatter` (then put it in `ProcessorFormatter(processors=[…])`
    too, after its exception formatting, so stdlib records are covered)::

        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            redact_identifiers,                       # <- here
            structlog.processors.JSONRenderer(),
        ])

    `exc_info` itself is left for the exception formatter and is only redacted as the text that
    formatter produces; that is why it has to come first. `configure_logging()` builds this chain
    for you, with national numbers and extra names from the environment.
    """
    return _DEFAULT(logger, method_name, event_dict)


# --- the stdlib filter -------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """A `logging.Filter` that redacts a record in place and never drops it.

    Redacts `record.msg` and `record.args` — for `uvicorn.access` the args hold the request line
    `GET /path?msisdn=… HTTP/1.1`, for gunicorn's access log a mapping of atoms — the exception
    text (rendered once, cached in `exc_text`), `stack_info`, and `extra` attributes (by value,
    and by name: `extra={"msisdn": …}` becomes the marker). Positional args stay a tuple (uvicorn's
    AccessFormatter unpacks it) and keep their types so `%d` still formats; an object argument is
    redacted as `%s` shows it (`str()`); a number argument that is an identifier and cannot take
    a marker (`%d`) makes the filter render the message and redact it whole. Mapping args are
    redacted by key and the message rendered once and redacted whole, so `"%(n)s=%(v)s"` with
    the name in one argument and the value in another is seen as the pair it is.

    Put it on the handler (it then sees records from every logger) and on loggers whose own
    handlers you do not control: `configure_logging()` does both.
    """

    def __init__(self, name: str = "", *, redactor: Redactor | None = None) -> None:
        super().__init__(name)
        self.redactor = _DEFAULT if redactor is None else redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.__dict__.get(_DONE):
            made = record.__dict__.get(_MADE)
            # Redacted by the record factory (`configure_logging`) as these very objects: only
            # `extra` attributes, set after the factory returned, are left.
            extras_only = made is not None and made[0] is record.msg and made[1] is record.args
            self.redact(record, extras_only=extras_only)
            record.__dict__[_DONE] = True
        return True

    def redact(
        self, record: logging.LogRecord, *, extras_only: bool = False, extras: bool = True
    ) -> None:
        """Redact `record` in place, whether or not it was before; never raises."""
        try:
            if not extras_only:
                self._redact(record)
            if extras:
                self._redact_extras(record)
        except Exception:
            record.msg, record.args = WITHHELD, None
            record.exc_info = record.exc_text = record.stack_info = None

    def _named_argument(self, msg: str) -> bool:
        return any(
            self.redactor.name_kind(m["key"]) is not None for m in _NAMED_FORMAT.finditer(msg)
        )

    def _redact(self, record: logging.LogRecord) -> None:
        redactor = self.redactor
        msg = record.msg
        args = record.args
        if isinstance(msg, str) and isinstance(args, Mapping) and args:
            self._redact_mapping_args(record, msg, args)
        elif isinstance(msg, str) and args and self._named_argument(msg):
            # An identifying name in the format, its value in an argument: only the whole
            # message shows they belong together.
            record.msg, record.args = redactor.text(record.getMessage()), None
        elif isinstance(msg, str):
            record.msg = redactor.text(msg)
        elif isinstance(msg, Mapping):
            record.msg = redactor.mapping(msg)  # a structlog event on its way to its formatter
        else:
            text = str(msg)
            redacted = redactor.text(text)
            if redacted != text:
                record.msg = redacted
        args = record.args
        if args is None:
            pass
        elif isinstance(args, Mapping):
            record.args = redactor.mapping(args)
        elif isinstance(args, tuple) and args:
            # `logger.info("header %s: %s", name, value)` is a pair too.
            first = args[0]
            named = (
                len(args) == 2 and isinstance(first, str) and redactor.name_kind(first) is not None
            )
            pair = redactor._pair(args) if named else None
            redacted_args = (
                tuple(self._argument(arg) for arg in args) if pair is None else tuple(pair)
            )
            if any(
                isinstance(old, int | float) and not isinstance(new, int | float)
                for old, new in zip(args, redacted_args, strict=True)
            ):
                # A number became a marker. `%s` takes it, and the args stay a tuple (uvicorn's
                # AccessFormatter unpacks them); `%d` or `%f` cannot: render, then redact.
                try:
                    str(record.msg) % redacted_args
                except (TypeError, ValueError):
                    self._render(record, args, redacted_args)
                else:
                    record.args = redacted_args
            elif any(_fraction(arg) for arg in args) and _FLOAT_FORMAT.search(str(record.msg)):
                # `%.0f` prints `61491570006.4` as the whole number a fraction hides: render.
                self._render(record, args, redacted_args)
            else:
                record.args = redacted_args
        if record.exc_info and not record.exc_text:
            record.exc_text = redactor.text(_FORMATTER.formatException(record.exc_info))
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)

    def _redact_extras(self, record: logging.LogRecord) -> None:
        redactor = self.redactor
        for key, item in list(record.__dict__.items()):
            if key not in _RECORD_FIELDS and not key.startswith("_") and item is not None:
                # `extra={"msisdn": …}`, shown by a `%(msisdn)s` format: redacted by its name too.
                kind = redactor.name_kind(key)
                if kind is not None and not _placeholder(item):
                    record.__dict__[key] = _marker(kind, item)
                else:
                    record.__dict__[key] = redactor.value(item)

    def _argument(self, arg: Any) -> Any:
        """One positional argument, redacted as `%s` shows it: an object whose `str()` holds an
        identifier (a `__str__` that prints the number) becomes that text, redacted."""
        if arg is None or isinstance(arg, _STRUCTURED):
            return self.redactor.value(arg)
        text = str(arg)
        redacted = self.redactor.text(text)
        return redacted if redacted != text else self.redactor.value(arg)

    def _redact_mapping_args(
        self, record: logging.LogRecord, msg: str, args: Mapping[Any, Any]
    ) -> None:
        """`"header %(n)s=%(v)s", {"n": "x-msisdn", "v": …}`: name and value in separate
        arguments. Redact by key, render once, redact the message. If the redacted args do not
        render (`%(msisdn)d` needs a number), the originals are rendered and redacted instead;
        if those do not render either, the args stay a mapping, redacted by key, and the
        formatter reports the error as it would have."""
        redactor = self.redactor
        safe = redactor.mapping(args)
        try:
            rendered = msg % safe
        except (TypeError, ValueError, KeyError):
            try:
                self._render(record, args.values(), [safe.get(key) for key in args])
            except (TypeError, ValueError, KeyError):
                # The format does not fit its own args: leave the error to the formatter.
                record.msg, record.args = redactor.text(msg), safe
            return
        record.msg, record.args = redactor.text(rendered), None

    def _render(self, record: logging.LogRecord, originals: Iterable[Any], redacted: Any) -> None:
        """Render the message with its original arguments and redact the text. An argument that
        redaction turned into a marker (by its name, or a number the format prints as `%d` /
        `%f`) is replaced wherever its text still shows in the rendering."""
        text = self.redactor.text(record.getMessage())
        for old, new in zip(originals, redacted, strict=False):
            marker = new.decode("latin-1") if isinstance(new, bytes) else new
            if not isinstance(marker, str) or not _MARKER.fullmatch(marker):
                continue
            if isinstance(old, int | float):
                shown_old = _number_text(old)
            elif isinstance(old, bytes):
                shown_old = old.decode("latin-1")
            else:
                shown_old = old if isinstance(old, str) else None
            if shown_old and shown_old != marker:
                text = text.replace(shown_old, marker)
        record.msg, record.args = text, None


# Argument types the redactor takes apart itself; any other object is redacted as `%s` shows it.
_STRUCTURED = (
    str,
    bytes,
    bytearray,
    int,
    float,
    Mapping,
    list,
    tuple,
    set,
    frozenset,
    ItemsView,
    KeysView,
    ValuesView,
    PhoneNumber,
)
_FORMATTER = logging.Formatter()
_DONE = "_privacy_guard_redacted"
_MADE = "_privacy_guard_made"  # (msg, args) as the record factory left them, redacted


# --- one pipeline for structlog and the stdlib --------------------------------------------------

_HANDLER_NAME = "privacy-guard"
_DROPPED_EXTRAS = frozenset({"color_message"})  # uvicorn's ANSI copy of the format string


def _extras(logger: Any, method_name: str, event_dict: Any) -> Any:
    """Like structlog's ExtraAdder, without private attributes and uvicorn's `color_message`."""
    record = event_dict.get("_record")
    if record is not None:
        for key, item in record.__dict__.items():
            if (
                key not in _RECORD_FIELDS
                and not key.startswith("_")
                and key not in _DROPPED_EXTRAS
                and key not in event_dict
            ):
                event_dict[key] = item
    return event_dict


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    if name not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, name.upper()))


def configure_logging(
    level: str | int | None = None,
    format: str | None = None,
    *,
    stream: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Route structlog and the stdlib through one redacting pipeline; safe to call again.

    `level` (`debug`, `info`, `warning`, `error`) and `format` (`json`, `console`) default to
    `PRIVACY_GUARD_LOG_LEVEL` / `PRIVACY_GUARD_LOG_FORMAT`; `PRIVACY_GUARD_DEFAULT_REGION` and
    `PRIVACY_GUARD_EXTRA_HEADERS` widen what is redacted. Raises `ConfigError` for a bad
    environment. Output goes to `stream` (default: standard error), one line per event.

    What it sets up:
      - structlog: contextvars, level, logger name, timestamp, `redact_identifiers`, then
        handed to the stdlib (`ProcessorFormatter.wrap_for_formatter`);
      - the root logger: one handler (replacing the one an earlier call installed) with
        `ProcessorFormatter` — exceptions formatted, redacted again, rendered as JSON or console
        — and a `RedactingFilter`; other handlers already on the root get the filter too;
      - `SERVER_LOGGERS` (uvicorn, gunicorn, hypercorn, granian): the filter on each logger and
        each of their handlers, so a server that installs its own handler still logs redacted
        lines;
      - the log record factory: every record is redacted as it is made, so a handler installed
        later (a framework's `dictConfig`) prints it redacted too;
      - daphne's access log, when daphne is running: it writes its lines to a stream itself,
        not through `logging` (`_redact_daphne_access`).
    """
    config = GuardConfig.from_env(environ)
    level = config.log_level if level is None else level
    format = config.log_format if format is None else format.strip().lower()
    if format not in LOG_FORMATS:
        raise ValueError(f"log format {format!r} is not one of {', '.join(LOG_FORMATS)}")
    numeric = _level(level)
    redactor = Redactor(config.default_region, config.extra_headers)
    stream = sys.stderr if stream is None else stream

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=_isatty(stream), exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            _extras,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    log_filter = RedactingFilter(redactor=redactor)
    handler.addFilter(log_filter)

    _set_record_factory(log_filter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    for other in root.handlers:
        _add_filter(other, log_filter)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        _add_filter(logger, log_filter)
        for own in logger.handlers:
            _add_filter(own, log_filter)
    _redact_daphne_access(redactor)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.processors.StackInfoRenderer(),
            redactor,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _redact_daphne_access(redactor: Redactor) -> None:
    """Redact the request line of daphne's access log before daphne writes it.

    daphne writes its access log straight to a stream (standard output at its default verbosity,
    or `--access-log FILE`), outside `logging`, so no filter sees it, and the line holds the
    query string (`"GET /pay?msisdn=…"`). Its writer is wrapped, once, in place. Only when daphne
    has been imported (its command line imports it before the app): the guard never imports it.
    """
    access = sys.modules.get("daphne.access")
    generator = getattr(access, "AccessLogGenerator", None)
    write = getattr(generator, "write_entry", None)
    if generator is None or write is None:
        return
    write = getattr(write, "__wrapped__", write)  # configured again: wrap daphne's own, anew

    @functools.wraps(write)
    def write_entry(self: Any, host: Any, date: Any, request: Any, *rest: Any, **named: Any) -> Any:
        try:
            request = redactor.text(request) if isinstance(request, str) else request
        except Exception:
            request = WITHHELD
        return write(self, host, date, request, *rest, **named)

    generator.write_entry = write_entry


class _RedactingFactory:
    """A log record factory that redacts each record as it is made.

    Filters sit on handlers, and frameworks install handlers of their own after start-up
    (Litestar's `dictConfig` replaces the root's when the app is built, Django's console handler
    sits on the `django` logger): a record made here reaches those redacted too. `extra`
    attributes are set on a record after its factory returns: the filters still redact those,
    and the rest again only if it is no longer what the factory left (`logging.makeLogRecord`
    fills an empty record from a dict).
    """

    def __init__(self, inner: Callable[..., logging.LogRecord], log_filter: RedactingFilter):
        self.inner = inner
        self.log_filter = log_filter

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        self.log_filter.redact(record, extras=False)  # none yet: they come after the factory
        record.__dict__[_MADE] = (record.msg, record.args)
        return record


def _set_record_factory(log_filter: RedactingFilter) -> None:
    """Redact every record as it is made; replaces the factory an earlier call set."""
    factory = logging.getLogRecordFactory()
    inner = factory.inner if isinstance(factory, _RedactingFactory) else factory
    logging.setLogRecordFactory(_RedactingFactory(inner, log_filter))


def _add_filter(target: logging.Handler | logging.Logger, log_filter: RedactingFilter) -> None:
    """Add `log_filter`, replacing a RedactingFilter an earlier call added."""
    for old in [f for f in target.filters if isinstance(f, RedactingFilter)]:
        target.removeFilter(old)
    target.addFilter(log_filter)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
