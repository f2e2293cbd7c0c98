"""Cookie pairs and query parameters cost a bounded amount per request, whatever a client sends.

Every Cookie line and the query string of a request draw on one `pairs.Allowance`: MAX_HITS
identifying pairs reported, MAX_PAIRS pairs parsed, MAX_BYTES bytes of names classified. Past it
a Cookie line that still holds a marker word is removed whole in strip mode (fail closed) and
reported once per request; the query string (only ever reported) is read until it runs out.
Work is asserted on operation counts (pairs parsed, names classified, names decoded), never on
time. For requests within the allowance the old per-pair reading is the oracle, kept here.
Numbers are fictional (UK drama range).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from conftest import RecordingApp, call, http_scope
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from guard import Finding, GuardConfig, PrivacyGuard, pairs
from guard import middleware as middleware_module

Line = tuple[bytes, bytes]
NUMBER = b"447700900123"
HOST = (b"host", b"shop.example")
ACCEPT = (b"accept", b"*/*")
CUT = Finding("cookie:*", "other", "removed", "name")
CUT_REPORTED = CUT._replace(action="reported")
KINDS = ("msisdn", "imsi", "imei", "other")


def guard_for(**config: Any) -> tuple[PrivacyGuard, RecordingApp, CollectorRegistry]:
    app = RecordingApp()
    registry = CollectorRegistry()
    guard = PrivacyGuard(app, config=GuardConfig(**config), registry=registry)
    return guard, app, registry


def through(guard: PrivacyGuard, app: RecordingApp, headers: list[Line], query: bytes = b"") -> Any:
    app.scopes.clear()
    scope = http_scope(headers)
    scope["query_string"] = bytes(bytearray(query))  # a fresh object, as a server hands over
    call(guard, scope)
    return app.scope


def identifying_line(pairs_per_line: int, serial: int = 0) -> bytes:
    """A Cookie value of `pairs_per_line` identifying pairs (`msisdn0=1;msisdn1=1;…`)."""
    return b";".join(b"msisdn%d=%d" % (i, serial) for i in range(pairs_per_line))


def cookie_counts(registry: CollectorRegistry, action: str) -> float:
    return sum(
        registry.get_sample_value(
            "privacy_guard_identifiers_total", {"header": "cookie", "kind": k, "action": action}
        )
        or 0.0
        for k in KINDS
    )


class Counter:
    """Counting wrappers around the pair parser's steps."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed = 0  # pairs parsed: every pair `_marked` hands over
        self.classified = 0  # pair names classified (cache hits included)
        self.decoded = 0  # query names percent-decoded
        marked, classify, unquote = pairs._marked, pairs._classify, pairs.unquote_to_bytes

        def counting_marked(*args: Any, **kwargs: Any) -> Iterator[tuple[int, int, int]]:
            for found in marked(*args, **kwargs):
                self.parsed += 1
                yield found

        def counting_classify(name: bytes) -> Any:
            self.classified += 1
            return classify(name)

        def counting_unquote(raw: bytes) -> bytes:
            self.decoded += 1
            return unquote(raw)

        monkeypatch.setattr(pairs, "_marked", counting_marked)
        monkeypatch.setattr(pairs, "_classify", counting_classify)
        monkeypatch.setattr(pairs, "unquote_to_bytes", counting_unquote)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Counter:
    return Counter(monkeypatch)


# --- (a) findings per request are capped --------------------------------------------------------


@pytest.mark.parametrize("mode", ["strip", "report"])
@pytest.mark.parametrize(
    ("lines", "per_line"), [(1, 1), (1, 64), (1, 65), (2, 40), (3, 64), (10, 64), (1000, 64)]
)
def test_cookie_findings_per_request_are_capped(lines: int, per_line: int, mode: str) -> None:
    guard, app, registry = guard_for(mode=mode)
    headers = [HOST, *[(b"cookie", identifying_line(per_line, n)) for n in range(lines)], ACCEPT]

    seen = through(guard, app, headers)

    findings = seen["privacy_guard"]
    total = lines * per_line
    pairs_found = [f for f in findings if f.header != "cookie:*"]
    assert len(pairs_found) == min(total, pairs.MAX_HITS)
    cut = [f for f in findings if f.header == "cookie:*"]
    assert cut == ([] if total <= pairs.MAX_HITS else [CUT if mode == "strip" else CUT_REPORTED])
    assert len(findings) <= pairs.MAX_HITS + 1
    action = "removed" if mode == "strip" else "reported"
    assert cookie_counts(registry, action) == len(findings)  # one count per finding, no more


def test_cookie_and_query_share_the_cap() -> None:
    guard, app, _ = guard_for()
    query = b"&".join(b"imsi-%d=1" % i for i in range(10))

    seen = through(guard, app, [(b"cookie", identifying_line(60))], query)

    findings = seen["privacy_guard"]
    assert len([f for f in findings if f.header.startswith("cookie:msisdn")]) == 60
    assert len([f for f in findings if f.header.startswith("query:")]) == 4
    assert seen["query_string"] == query


# --- (b) past the cap: fail closed for Cookie lines, byte-for-byte for the rest -------------------


@pytest.mark.parametrize("mode", ["strip", "report"])
@pytest.mark.parametrize("extra", [1, 5, 300])
def test_past_the_cap_a_cookie_line_goes_whole_and_the_rest_arrives_intact(
    mode: str, extra: int
) -> None:
    guard, app, _ = guard_for(mode=mode)
    ordinary = [
        (b"cookie", b"session=3f9c2a7b; theme=dark"),  # no marker: never parsed
        (b"user-agent", b"Mozilla/5.0 (Linux; Android 10; K)"),
        (b"Cookie", b"  _ga=GA1.2.3 ;uid=447700900124;;"),
    ]
    full = (b"cookie", identifying_line(pairs.MAX_HITS))
    late = [(b"cookie", b"session=abc; x-msisdn=%d; theme=dark" % n) for n in range(extra)]
    headers = [HOST, ordinary[0], full, ordinary[1], *late, ordinary[2], ACCEPT]

    seen = through(guard, app, headers)

    if mode == "report":
        assert seen["headers"] is headers
    else:
        assert seen["headers"] == [HOST, ordinary[0], ordinary[1], ordinary[2], ACCEPT]
    assert seen["privacy_guard"][-1] == (CUT if mode == "strip" else CUT_REPORTED)


def test_past_the_hit_cap_a_line_without_identifying_pairs_is_still_read() -> None:
    guard, app, _ = guard_for()
    hint = (b"cookie", b"hint=anytimeimei; q=calling")  # markers in values only
    mixed = (b"cookie", b"a=1; msisdn=" + NUMBER)

    seen = through(guard, app, [(b"cookie", identifying_line(pairs.MAX_HITS)), hint, mixed])

    assert seen["headers"] == [hint]  # `mixed` has an identifying pair past the cap: gone whole
    assert seen["privacy_guard"][-1] == CUT


def test_past_the_pair_allowance_every_marked_line_goes_whole() -> None:
    guard, app, _ = guard_for()
    busy = (b"cookie", b";".join([b"q=calling"] * pairs.MAX_PAIRS))  # uses up the pairs
    hint = (b"cookie", b"hint=anytimeimei")  # nothing identifying, but can no longer be read
    clean = (b"cookie", b"session=abc")

    seen = through(guard, app, [busy, clean, hint, ACCEPT])

    assert seen["headers"] == [busy, clean, ACCEPT]
    assert seen["privacy_guard"] == (CUT,)


def test_past_the_byte_allowance_a_marked_line_goes_whole() -> None:
    guard, app, _ = guard_for()
    long_name = b"x-" + b"a" * pairs.MAX_BYTES + b"-msisdn"
    headers = [(b"cookie", b"session=abc; " + long_name + b"=1"), (b"cookie", b"theme=dark")]

    seen = through(guard, app, headers)

    assert seen["headers"] == [(b"cookie", b"theme=dark")]
    assert seen["privacy_guard"] == (CUT,)


@pytest.mark.parametrize(("over", "kept"), [(0, b"session=abc"), (1, None)])
def test_a_name_of_exactly_the_byte_allowance_is_still_read(over: int, kept: bytes | None) -> None:
    """The allowance is MAX_BYTES bytes of names: a name of that many is classified, one byte
    more gives the line up (removed whole)."""
    name = b"x-" + b"a" * (pairs.MAX_BYTES - len(b"x--msisdn") + over) + b"-msisdn"
    assert len(name) == pairs.MAX_BYTES + over
    allowance = pairs.Allowance()

    value, hits = pairs.cookie_hits(name + b"=1; session=abc", allowance)

    assert value == kept
    assert allowance.cut == over
    assert [hit.kind for hit in hits] == ["msisdn"] * (1 - over)


def test_a_reporting_outer_guard_and_a_stripping_inner_guard_agree_past_the_cap() -> None:
    alone, alone_app, _ = guard_for()
    inner, inner_app, _ = guard_for()
    outer = PrivacyGuard(inner, config=GuardConfig(mode="report"), registry=CollectorRegistry())
    headers = [
        (b"cookie", identifying_line(50)),
        (b"cookie", b"a=1; " + identifying_line(30)),
        (b"cookie", b"b=2; msisdn=" + NUMBER),
        (b"cookie", b"hint=imei"),
    ]

    expected = through(alone, alone_app, headers)["headers"]
    nested = through(outer, inner_app, headers)["headers"]

    assert expected == [(b"cookie", b"hint=imei")]
    assert nested == expected


# --- (c) the work is bounded: operation counts, not time -----------------------------------------

ADVERSARIAL: dict[str, tuple[list[Line], bytes]] = {
    "1000 lines of 64 identifying pairs": (
        [(b"cookie", identifying_line(64))] * 1000,
        b"",
    ),
    "cookie msisdn=1 then 64 KiB of ;": ([(b"cookie", b"msisdn=1;" + b";" * 65527)], b""),
    "cookie calling; x 8192": ([(b"cookie", b"calling;" * 8192)], b""),
    "query msisdn=1 then 64 KiB of &": ([], b"msisdn=1&" + b"&" * 65527),
    "query %63alling& x 6553": ([], b"%63alling&" * 6553),
    "query %41 x 21845": ([], b"%41" * 21845),
    "cookie and query together": (
        [(b"cookie", b"calling;" * 4000)] * 4,
        b"%63alling&" * 6553,
    ),
}


@pytest.mark.parametrize("mode", ["strip", "report"])
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_the_work_per_request_is_bounded(counter: Counter, name: str, mode: str) -> None:
    headers, query = ADVERSARIAL[name]
    guard, app, _ = guard_for(mode=mode)
    suspicious_lines = sum(1 for _, value in headers if pairs.suspicious(value))

    seen = through(guard, app, [HOST, *headers], query)

    assert counter.classified <= pairs.MAX_PAIRS
    assert counter.decoded <= pairs.MAX_PAIRS
    # A line past the allowance costs the one pair that finds it spent.
    assert counter.parsed <= pairs.MAX_PAIRS + suspicious_lines + 1
    assert len(seen["privacy_guard"]) <= pairs.MAX_HITS + 1


@pytest.mark.parametrize(
    "build",
    [
        lambda n: ([(b"cookie", identifying_line(64))] * n, b""),
        lambda n: ([(b"cookie", b"calling;" * n)], b""),
        lambda n: ([(b"cookie", b"msisdn=1;" + b";" * n)], b""),
        lambda n: ([], b"%63alling&" * n),
        lambda n: ([], b"msisdn=1&" + b"&" * n),
    ],
    ids=["lines", "cookie-words", "cookie-separators", "query-escaped", "query-separators"],
)
def test_past_the_allowance_the_work_stays_flat(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    # Doubling the input past the allowance adds no parsing: the same counts at 1x, 2x and 4x.
    seen = []
    for size in (2000, 4000, 8000):
        counter = Counter(monkeypatch)
        guard, app, _ = guard_for()
        headers, query = build(size)
        through(guard, app, headers, query)
        seen.append((counter.classified, counter.decoded, counter.parsed - len(headers)))
        monkeypatch.undo()
    assert seen[0] == seen[1] == seen[2]


def test_a_query_without_a_marker_is_never_decoded(counter: Counter) -> None:
    guard, app, _ = guard_for()
    query = b"next=%2Fhome%2Fa&q=%41%42%43&utm_source=news%20letter&" + b"%41" * 20000

    seen = through(guard, app, [HOST], query)

    assert seen["privacy_guard"] == ()
    assert counter.decoded == 0
    assert counter.parsed == 0


def test_only_escaped_names_are_decoded(counter: Counter) -> None:
    query = b"a=%2F&b=%41&ms%69sdn=" + NUMBER + b"&c=%6d%73%69%73%64%6e&%78_imsi=3"

    hits = pairs.query_hits(query)

    assert [h.shown for h in hits] == ["msisdn", "x-imsi"]
    assert counter.decoded == 2  # `ms%69sdn` and `%78_imsi`; the escapes in values never


@pytest.mark.parametrize(
    "shape",
    ["clean lines", "a carrier line", "a known carrier shape"],
)
def test_the_query_is_tested_once_per_request(monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    calls: list[bytes] = []
    original = middleware_module.suspicious_query

    def counting(query: bytes) -> bool:
        calls.append(query)
        return original(query)

    monkeypatch.setattr(middleware_module, "suspicious_query", counting)
    guard, app, _ = guard_for()
    headers = [HOST, ACCEPT] if shape == "clean lines" else [HOST, (b"x-msisdn", NUMBER)]
    if shape == "a known carrier shape":
        through(guard, app, list(headers))  # the plan for this shape
    calls.clear()

    for query in (b"msisdn=" + NUMBER, b"page=2"):
        calls.clear()
        seen = through(guard, app, list(headers), query)
        assert len(calls) == 1
        assert seen["query_string"] == query


# --- the classification cache is bounded ----------------------------------------------------------


def test_the_classification_cache_is_bounded() -> None:
    pairs._classified.clear()
    for serial in range(pairs._CACHE_MAX * 3):
        pairs.cookie_hits(b"a=1; x-%d-msisdn=1; b=2" % serial)
        assert len(pairs._classified) <= pairs._CACHE_MAX
    pairs._classified.clear()
    long_name = b"x-" + b"a" * pairs._CACHE_NAME + b"-msisdn"
    assert pairs.cookie_hits(long_name + b"=1") == (
        None,
        [pairs.PairHit("x-" + "a" * 61 + "…", "msisdn", "name")],
    )
    assert long_name not in pairs._classified
    assert pairs.cookie_hits(b"imsi=1") == (None, [pairs.PairHit("imsi", "imsi", "name")])
    assert pairs._classified == {b"imsi": pairs.PairHit("imsi", "imsi", "name")}


# --- (d) within the allowance: the same as reading every pair (the old code as oracle) -----------

_MARKER = re.compile(rb"msisdn|im[se]i|calling")
reference_classify = pairs._classify_name  # the name rules themselves are unchanged, uncached


def reference_cookie_hits(value: bytes) -> tuple[bytes | None, list[pairs.PairHit]]:
    """The per-pair reading before the allowance: split every pair, test every name."""
    kept: list[bytes] = []
    hits: list[pairs.PairHit] = []
    for pair in value.split(b";"):
        name = pair.split(b"=", 1)[0]
        hit = reference_classify(name.strip()) if _MARKER.search(name.lower()) else None
        if hit is None:
            kept.append(pair)
            continue
        hits.append(hit)
    if not hits:
        return value, hits
    if not any(pair.strip() for pair in kept):
        return None, hits
    kept[0] = kept[0].lstrip()
    return b";".join(kept), hits


def reference_query_hits(query: bytes) -> list[pairs.PairHit]:
    hits = []
    for part in re.split(rb"[&;]", query):
        name = part.split(b"=", 1)[0]
        name = unquote_to_bytes(name.replace(b"+", b" "))
        if _MARKER.search(name.lower()):
            hit = reference_classify(name.strip())
            if hit is not None:
                hits.append(hit)
    return hits


TOKENS = st.sampled_from(
    [b"msisdn", b"MSISDN", b"imsi", b"imei", b"imeisv", b"calling", b"-line", b"-id", b"x", b"_",
     b"-", b"=", b";", b"; ", b" ", b"\t", b"&", b"%", b"%69", b"%6D", b"%4d", b"%6", b"%25",
     b"+", b"1", NUMBER, b"session=abc", b"calling_line_id", b"User-Identity-Forward-msisdn"]
)  # fmt: skip
RAW = st.one_of(st.lists(TOKENS, max_size=24).map(b"".join), st.binary(max_size=40))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(RAW)
@example(b"a=1;; msisdn=1;")
@example(b" ; msisdn=1 ;  b=2")
@example(b"%6%64sisdn=1&ms%69sdn=2")
def test_within_the_allowance_cookies_and_queries_read_as_before(raw: bytes) -> None:
    assert pairs.cookie_hits(raw) == reference_cookie_hits(raw)
    assert pairs.query_hits(raw) == reference_query_hits(raw)
    if reference_query_hits(raw):
        assert pairs.suspicious_query(raw)


def _kept_pairs_of(original: bytes, seen: bytes) -> bool:
    """Is `seen` the Cookie value `original` minus some pairs, every kept pair byte-for-byte (the
    first one maybe left-stripped), in order?"""
    kept = seen.split(b";")
    position = 0
    for pair in original.split(b";"):
        if position < len(kept) and kept[position] in (pair, pair.lstrip()):
            position += 1
    return position == len(kept)


LINES = st.lists(
    st.one_of(
        st.tuples(st.just(b"cookie"), RAW),
        st.tuples(
            st.sampled_from([b"accept", b"user-agent", b"x-request-id"]), st.binary(max_size=20)
        ),
    ),
    max_size=12,
)


@SETTINGS
@given(LINES, st.integers(0, 80))
@example([(b"cookie", b"")], 1)
@example([(b"cookie", b"msisdn=1; a=1"), (b"cookie", b"a=1")], 64)
def test_lines_not_removed_reach_the_app_byte_for_byte(lines: list[Line], padding: int) -> None:
    # Padding spends some of the allowance first, so that lines past it are drawn too. Each Cookie
    # line starts with a pair of its own (`k<index>=1`), which tells where a kept line came from.
    guard, app, _ = guard_for()
    tagged = [
        (name, b"k%d=1;" % index + value if name == b"cookie" else value)
        for index, (name, value) in enumerate(lines)
    ]
    headers = [(b"cookie", identifying_line(padding))] if padding else []
    headers += tagged

    scope = through(guard, app, headers)

    seen = scope["headers"]
    others = [line for line in tagged if line[0] != b"cookie"]
    assert [line for line in seen if line[0] != b"cookie"] == others
    origins = []
    for name, value in seen:
        if name != b"cookie":
            continue
        index = int(value.split(b"=", 1)[0].removeprefix(b"k"))
        origins.append(index)
        assert _kept_pairs_of(tagged[index][1], value)
    assert origins == sorted(set(origins))
    gone = [v for i, v in enumerate(tagged) if v[0] == b"cookie" and i not in origins]
    for _, value in gone:  # never all identifying (the tag stays): removed whole, fail closed
        assert pairs.suspicious(value)
    assert (CUT in scope["privacy_guard"]) == bool(gone or padding > pairs.MAX_HITS)
    assert len(scope["privacy_guard"]) <= pairs.MAX_HITS + 1
