"""Adversarial header lists, the oracle they are judged by, and an in-process driver.

Shared by `tests/test_fuzz.py` (a bounded run inside the test suite) and `python -m tests.fuzz`
(the long run, outside it). The oracle restates DESIGN's precedence from the data and the
public rules (`guard.catalog`, `guard.detect.name_rule`), not from the guard's internal tables.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from guard import Finding, GuardConfig, PrivacyGuard
from guard.catalog import CATALOG, LOW_RISK, SHOWN_MAX, fold
from guard.detect import NAME_MAX, Budget, name_rule, scan_value
from guard.pseudonym import HEADER, HEADER_PREVIOUS

__all__ = [
    "CATALOG_NAMES",
    "CONFIG_NAMES",
    "FICTIONAL_NUMBERS",
    "GUARD_NAMES",
    "LOW_RISK_NAMES",
    "PSEUDONYM_KEY",
    "VALID_NUMBERS",
    "Outcome",
    "Recorder",
    "call",
    "check_strip",
    "configs",
    "expected_flag",
    "guard_for",
    "header_lists",
    "safe_shown",
]

Header = tuple[bytes, bytes]

# Numbers for values. UK drama numbers (phonenumbers calls them invalid: only names decide) and
# numbers phonenumbers accepts (Australia's 0491 570 006-159 range, NANP 555-01xx).
FICTIONAL_NUMBERS = (b"447700900123", b"+447700900987", b"07700900456")
VALID_NUMBERS = (b"+61491570006", b"61491570157", b"+12015550123", b"+1 201 555 0199")
PSEUDONYM_KEY = "5f" * 32  # a test key, 32 bytes in hex
CATALOG_NAMES = sorted(CATALOG)
LOW_RISK_NAMES = sorted(LOW_RISK)
# Some allow / extra names the fuzzed configurations use: catalog names, name-rule shaped names,
# low-risk names and ordinary ones, so that every step of the precedence gets exercised.
CONFIG_NAMES = (
    "x-msisdn",
    "x-up-calling-line-id",
    "x-vf-acr",
    "x-acme-msisdn",
    "x-tenant",
    "x-carrier-ref",
    "via",
    "x-imsi",
)
_SHOWN_BAD = re.compile(r"[0-9\x00-\x1f\x7f-\x9f]")
_LONG_DIGITS = re.compile(rb"[0-9]{6,}")
_MARKER = re.compile(rb"msisdn|im[se]i|calling")  # guard.pairs' marker words
GUARD_NAMES = (HEADER.decode(), HEADER_PREVIOUS.decode())


# --- the in-process driver -----------------------------------------------------------------------


class Recorder:
    """An ASGI app that records the scopes it is called with and answers 204."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


@dataclass
class Outcome:
    scope: dict[str, Any] | None  # what the app was called with, None if it was not called
    sent: list[dict[str, Any]] = field(default_factory=list)  # what went back to the server
    events: list[dict[str, Any]] = field(default_factory=list)  # what the guard logged

    @property
    def status(self) -> int | None:
        for message in self.sent:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return None


def guard_for(
    config: GuardConfig | None = None,
    registry: CollectorRegistry | None = None,
    app: Any = None,
    **options: Any,
) -> PrivacyGuard:
    """A guard around `app` (a fresh `Recorder` by default), with its own registry unless one is
    given; metrics on, as in production."""
    config = GuardConfig(**options) if config is None else config
    registry = CollectorRegistry() if registry is None else registry
    return PrivacyGuard(Recorder() if app is None else app, config=config, registry=registry)


def call(
    guard: PrivacyGuard,
    headers: list[Header],
    *,
    scope_type: str = "http",
    path: str = "/",
    query: bytes = b"",
) -> Outcome:
    """One request through `guard`, driven without an event loop (nothing in it suspends)."""
    recorder = _recorder(guard)
    before = len(recorder.scopes)
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {
        "type": scope_type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http" if scope_type == "http" else "ws",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        if scope_type == "websocket":
            return {"type": "websocket.connect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    coroutine = guard(scope, receive, send)
    with capture_logs() as events:
        try:
            coroutine.send(None)
        except StopIteration:
            pass
        else:  # pragma: no cover - the guard must never wait on anything but the app
            coroutine.close()
            raise AssertionError("the guard suspended on a request that needs no I/O")
    seen = recorder.scopes[before:]
    del recorder.scopes[before:]  # a long run must not keep every request alive
    assert len(seen) <= 1, "the app was called more than once"
    return Outcome(seen[0] if seen else None, sent, events)


def _recorder(app: Any) -> Recorder:
    while not isinstance(app, Recorder):
        app = app.app  # through nested guards
    return app


# --- the oracle ---------------------------------------------------------------------------------


def expected_flag(raw_name: bytes, config: GuardConfig) -> bool | None:
    """DESIGN's precedence for one name: True flagged, False kept, None "value decides"."""
    if len(raw_name) > NAME_MAX:
        return True  # no real header name is that long: flagged without being read
    folded = fold(raw_name.decode("latin-1"))
    if folded in GUARD_NAMES:
        return True  # only the guard adds these: a client-sent copy is a forgery
    if folded in config.allow_headers:
        return False
    if folded in CATALOG or folded in config.extra_headers:
        return True
    if folded in LOW_RISK:
        return False
    if name_rule(folded) is not None:
        return True
    return None


def safe_shown(text: str) -> bool:
    """A client-sent name as the guard may show it: no digits, no control bytes, capped."""
    for prefix in ("cookie:", "query:"):  # cookie pairs and query parameters
        text = text.removeprefix(prefix)
    return len(text) <= SHOWN_MAX and not _SHOWN_BAD.search(text)


def check_strip(config: GuardConfig, headers: list[Header], outcome: Outcome) -> None:
    """Every invariant of strip mode for one request (raises AssertionError)."""
    assert config.mode == "strip"
    assert outcome.scope is not None, "a request was refused or swallowed"
    seen = outcome.scope["headers"]
    findings: tuple[Finding, ...] = outcome.scope["privacy_guard"]
    body = [line for line in seen if fold(line[0].decode("latin-1")) not in GUARD_NAMES]
    added = seen[len(body) :]
    assert body == seen[: len(body)], "the guard's own lines must come last"
    if added:
        assert config.pseudonym_key is not None
        assert len(added) <= 2
    # Past the request's cookie allowance, Cookie lines still holding a marker word go whole,
    # reported once as `cookie:*`.
    cut = any(f.header == "cookie:*" for f in findings)
    removed, rewritten = _changes(headers, body, cut)
    for index, (name, value) in enumerate(headers):
        verdict = expected_flag(name, config)
        if verdict is True:
            assert index in removed, f"line {index} should have been removed"
        elif index in rewritten or _is_cookie(name):
            continue  # `_changes` checked what happened to its pairs
        elif verdict is False or config.scan_values == "off":
            assert index not in removed, f"line {index} should have been kept"
        elif index in removed:
            # Only the value rules may have removed it: the value must really hold an identifier.
            assert _holds_identifier(value, config), f"line {index} was removed for nothing"
    if not removed and not rewritten and not added:
        assert seen is headers, "the clean path must hand the app the server's own list"
    lines = [f for f in findings if not f.header.startswith(("cookie:", "query:"))]
    dropped = [i for i in removed if not _is_cookie(headers[i][0])]
    assert len([f for f in lines if f.action != "reported"]) == len(dropped)
    for finding in findings:
        assert safe_shown(finding.header), "a finding shows a name unmasked"
    values = {headers[i][1] for i in removed} | {headers[i][1] for i in rewritten}
    _no_value_in(repr(findings), values)
    _no_value_in(repr(outcome.events), values)


def _is_cookie(name: bytes) -> bool:
    return fold(name.decode("latin-1")) == "cookie"


def _holds_identifier(value: bytes, config: GuardConfig) -> bool:
    return scan_value(value, Budget(10_000, 1 << 30), config.default_region) is not None


def _changes(
    headers: Sequence[Header], seen: Sequence[Header], cut: bool = False
) -> tuple[set[int], set[int]]:
    """Indices of `headers` missing from `seen`, and of Cookie lines whose identifying pairs were
    cut out. Asserts that `seen` is otherwise an in-order subsequence of the very same lines,
    byte-for-byte, duplicates included.

    A Cookie line may go whole when it held nothing but identifying or empty pairs, or — `cut`:
    the request's cookie allowance ran out (`guard.pairs.Allowance`) — when it still held a
    marker word. Then a line the app saw can be read two ways (this line with pairs cut out, or
    the next line kept), so every reading is followed, one set of positions in `seen` per line,
    and the first that accounts for all of `seen` is taken, preferring kept, then cut, then gone.
    """
    reached: dict[int, tuple[int, str] | None] = {0: None}  # position in seen -> how
    steps: list[dict[int, tuple[int, str] | None]] = [reached]
    for line in headers:
        cookie = _is_cookie(line[0])
        removable = not cookie or _droppable_cookie(line[1], cut)
        following: dict[int, tuple[int, str] | None] = {}
        for position in sorted(reached):
            here = seen[position] if position < len(seen) else None
            if here == line:
                following.setdefault(position + 1, (position, "kept"))
            elif here is not None and cookie and _cut_cookie(line, here):
                following.setdefault(position + 1, (position, "cut"))
        for position in sorted(reached):
            if removable:
                following.setdefault(position, (position, "gone"))
        assert following, "a Cookie line went whole that held an ordinary pair (cookie dropped)"
        reached = following
        steps.append(reached)
    assert len(seen) in reached, "the app saw a line that was not sent, or out of order"
    removed: set[int] = set()
    rewritten: set[int] = set()
    position = len(seen)
    for index in range(len(headers), 0, -1):
        how = steps[index][position]
        assert how is not None
        position, action = how
        if action == "gone":
            removed.add(index - 1)
        elif action == "cut":
            rewritten.add(index - 1)
    return removed, rewritten


def _droppable_cookie(value: bytes, cut: bool) -> bool:
    pairs = value.split(b";")
    if all(_identifying_pair(p) or not p.strip() for p in pairs):
        return True
    return cut and _MARKER.search(value.lower()) is not None


def _cut_cookie(line: Header, new: Header) -> bool:
    """Is `new` the Cookie line `line` minus some identifying pairs, the rest kept byte-for-byte?"""
    if new[0] != line[0]:
        return False
    kept = new[1].split(b";")
    pairs = line[1].split(b";")
    position = 0
    for pair in pairs:
        if position < len(kept) and kept[position] in (pair, pair.lstrip()):
            position += 1
        elif not _identifying_pair(pair):
            return False
    return position == len(kept) and len(kept) < len(pairs)


def _identifying_pair(pair: bytes) -> bool:
    name = fold(pair.split(b"=", 1)[0].decode("latin-1")).replace("-", "")
    return any(stem in name for stem in ("msisdn", "imsi", "imei", "callingline"))


def _no_value_in(text: str, values: Iterable[bytes]) -> None:
    for value in values:
        for run in set(_LONG_DIGITS.findall(value)):
            assert run.decode() not in text, "a finding or a log event holds a removed value"


# --- strategies ---------------------------------------------------------------------------------

_SEPARATOR = st.sampled_from("-_.")


@st.composite
def _variant(draw: st.DrawFn, names: Sequence[str]) -> bytes:
    """A catalog-style name in some spelling: random case, `-`/`_`/`.`, surrounding blanks."""
    name = draw(st.sampled_from(names))
    # One draw for the whole spelling: per-character draws make generation ten times slower.
    spelling = random.Random(draw(st.integers(0, 2**32)))
    chars = [
        spelling.choice("-_.")
        if char in "-_."
        else char.upper()
        if spelling.random() < 0.5
        else char
        for char in name
    ]
    blanks = [" ", "\t", "", "", ""]
    spelled = spelling.choice(blanks) + "".join(chars) + spelling.choice(blanks)
    return spelled.encode("latin-1")


_STEMS = ("msisdn", "imsi", "imei", "imeisv", "mdn", "clid", "calling-line-id", "subno", "acr")
_NAME_RULE_SHAPED = st.builds(
    lambda vendor, stem, sep: f"x{sep}{vendor}{sep}{stem}".encode(),
    st.sampled_from(["acme", "op", "gw", "nokia", "h3g", "447700900123", "61491570006"]),
    st.sampled_from(_STEMS),
    _SEPARATOR,
)
_HOSTILE_NAMES = st.sampled_from(
    [
        b"x-447700900123-msisdn",
        b"x-61491570006",
        b"x-msisdn\r\nx-injected: 1",
        b"<script>alert(1)</script>-msisdn",
        b"x-imsi\x00",
        b"\x00x-msisdn",
        b"x-msisdn\xff",
        b"x-\xe9-msisdn",
        b"x-msisdn " + b"a" * 8192,
        b"x-" + b"7" * 8192,
        b"",
    ]
)
_NAMES = st.one_of(
    _variant(CATALOG_NAMES),
    _variant(GUARD_NAMES),
    _variant(LOW_RISK_NAMES),
    _variant(CONFIG_NAMES),
    _NAME_RULE_SHAPED,
    _HOSTILE_NAMES,
    st.sampled_from([b"host", b"user-agent", b"cookie", b"x-request-id", b"x-forwarded-for"]),
    st.binary(max_size=40),
)


@st.composite
def _split_number(draw: st.DrawFn) -> bytes:
    """A number with separators (some allowed by the value rules, some not)."""
    number = draw(st.sampled_from(FICTIONAL_NUMBERS + VALID_NUMBERS))
    separator = draw(st.sampled_from([b" ", b"-", b".", b"/", b"  ", b"\t", b"%20"]))
    step = draw(st.integers(1, 4))
    return separator.join(number[i : i + step] for i in range(0, len(number), step))


_NUMBERS = st.sampled_from(FICTIONAL_NUMBERS + VALID_NUMBERS)
_VALUES = st.one_of(
    _NUMBERS,
    _split_number(),
    st.lists(_NUMBERS, min_size=2, max_size=5).map(b", ".join),  # several numbers in one value
    st.builds(lambda n: b"tel:" + n, _NUMBERS),
    st.builds(lambda a, b: a + b"\r\n " + b, _NUMBERS, _NUMBERS),  # obs-fold
    st.builds(lambda n: b"\x00" + n + b"\xff\x80", _NUMBERS),  # NUL and high bytes
    st.builds(lambda n, size: (n + b",") * size, _NUMBERS, st.integers(1, 6000)),  # ~64 KiB
    st.builds(lambda size: b"9" * size, st.sampled_from([7, 15, 16, 4096, 65536])),
    st.binary(max_size=64),
    st.text(max_size=30).map(lambda t: t.encode("utf-8")),
)
_COOKIE_PAIRS = st.tuples(
    st.sampled_from(
        [
            b"sessionid",
            b"_ga",
            b"gclid",
            b"uid",
            b"clid",
            b"User-Identity-Forward-msisdn",
            b"x-up-calling-line-id",
            b"IMSI",
            b" msisdn",
            b"theme",
        ]
    ),
    st.sampled_from([b"=", b"= ", b""]),
    st.one_of(_NUMBERS, st.just(b'"quoted; value"'), st.binary(max_size=12)),
).map(b"".join)
_COOKIES = st.tuples(
    _variant(["cookie"]),
    st.lists(_COOKIE_PAIRS, min_size=1, max_size=6).flatmap(
        lambda pairs: st.sampled_from([b"; ", b";", b" ;  "]).map(lambda sep: sep.join(pairs))
    ),
)
_LINES = st.one_of(st.tuples(_NAMES, _VALUES), _COOKIES)


def header_lists() -> st.SearchStrategy[list[Header]]:
    """Header lists as a hostile client or a misbehaving gateway could hand the guard: short ones,
    and long ones (up to 1,000 lines) made by repeating a short pattern."""
    short = st.lists(_LINES, max_size=16)
    long = st.builds(
        lambda lines, size: (lines * (size // max(len(lines), 1) + 1))[:size],
        st.lists(_LINES, min_size=1, max_size=8),
        st.integers(200, 1000),
    )
    return st.one_of(short, short, short, long)


def configs() -> st.SearchStrategy[GuardConfig]:
    """Strip-mode configurations with allow and extra lists drawn from `CONFIG_NAMES`."""

    @st.composite
    def build(draw: st.DrawFn) -> GuardConfig:
        names = draw(st.lists(st.sampled_from(CONFIG_NAMES), unique=True, max_size=4))
        split = draw(st.integers(0, len(names)))
        return GuardConfig(
            mode="strip",
            allow_headers=tuple(names[:split]),
            extra_headers=tuple(names[split:]),
            scan_values=draw(st.sampled_from(["strip", "report", "off"])),
            default_region=draw(st.sampled_from([None, "AU", "US"])),
            pseudonym_key=draw(st.sampled_from([None, PSEUDONYM_KEY])),
        )

    return build()
