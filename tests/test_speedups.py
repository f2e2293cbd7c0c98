"""The C versions of the clean path's checks (`guard/_speedups.c`) against their Python definitions.

`guard.harmless.PyHarmlessNames` and `guard.pairs.marked` define what the C code must answer. The
C `prefix` may stop earlier than the definition on lines it does not read (anything but a tuple
or list of two bytes objects), never later; on well-formed headers the two must be equal. The
whole suite also runs once on the Python definitions (`.ci/run`, PRIVACY_GUARD_SPEEDUPS=off).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import STRICT

from guard import GuardConfig, speedups
from guard.config import ConfigError
from guard.detect import COOKIE, KEEP, Names
from guard.harmless import PyHarmlessNames, harmless_names
from guard.pairs import marked

try:
    from guard import _speedups
except ImportError:  # built without a compiler: fail in CI, skip locally
    if STRICT:
        raise
    pytest.skip("guard._speedups was not built", allow_module_level=True)

Line = tuple[bytes, bytes]

MARKERS = (b"msisdn", b"imsi", b"imei", b"calling")
# Names a request carries: known-harmless, Cookie, carrier names, and names no rule knows.
POOL = (
    b"host",
    b"accept",
    b"user-agent",
    b"sec-fetch-mode",
    b"accept-language",
    b"cookie",
    b"Cookie",
    b"x-msisdn",
    b"x-up-calling-line-id",
    b"x-foo",
    b"",
    b"a" * 200,
)


def case_mixed(word: bytes, flips: int) -> bytes:
    return bytes(c ^ 0x20 if flips >> i & 1 else c for i, c in enumerate(word))


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """Bytes, often around a marker word in any case, or a near miss (a word cut short)."""
    before, after = draw(st.binary(max_size=40)), draw(st.binary(max_size=40))
    word = draw(st.sampled_from(MARKERS))
    word = case_mixed(word, draw(st.integers(0, 127)))
    cut = draw(st.integers(0, len(word)))
    return draw(st.sampled_from([before, before + word + after, before + word[:cut] + after]))


names = st.one_of(st.sampled_from(POOL), st.binary(max_size=24))
lines = st.tuples(names, values())


def pair(
    known: Sequence[bytes],
) -> tuple[_speedups.HarmlessNames, PyHarmlessNames, Names]:
    """The C and Python sets of one `Names`, holding the same names."""
    table = Names()
    for name in known:
        table.classify(name)
    fast = _speedups.HarmlessNames(table.table, COOKIE)
    slow = PyHarmlessNames(table.table, COOKIE)
    harmless = [name for name, verdict in table.table.items() if verdict is KEEP]
    fast.update(harmless)
    slow.update(harmless)
    return fast, slow, table


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(known=st.lists(names, max_size=8), headers=st.lists(lines, max_size=12))
def test_prefix_equals_the_definition_on_well_formed_headers(
    known: list[bytes], headers: list[Line]
) -> None:
    fast, slow, _ = pair(known)
    assert fast.prefix(headers) == slow.prefix(headers)
    assert fast.prefix(tuple(headers)) == slow.prefix(headers)
    assert fast.prefix([list(line) for line in headers]) == slow.prefix(headers)


odd = st.one_of(
    lines,
    st.builds(list, lines),
    st.tuples(names),  # one item
    st.tuples(names, values(), values()),  # three
    st.tuples(st.text(max_size=8), values()),  # str name
    st.tuples(names, st.text(max_size=8)),  # str value
    st.tuples(st.binary(max_size=8).map(bytearray), values()),
    st.tuples(names, st.binary(max_size=8).map(bytearray)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.lists(odd, max_size=10))
def test_prefix_never_skips_further_than_the_definition(headers: list[Any]) -> None:
    """Odd lines the definition may read (or fail on) are where the C scan stops."""
    fast, slow, _ = pair([b"accept", b"x-foo"])
    try:
        expected = slow.prefix(headers)
    except (IndexError, TypeError, AttributeError):
        expected = None  # the definition fails at the first odd line: the request is refused
    got = fast.prefix(headers)
    if expected is not None:
        assert got <= expected
    assert all(type(line) in (tuple, list) and len(line) == 2 for line in headers[:got])
    assert all(type(line[0]) is bytes for line in headers[:got])


def test_prefix_of_other_iterables_is_zero() -> None:
    """The middleware hands over a list or a tuple; anything else goes to the full inspection."""
    fast, _, _ = pair([])
    assert fast.prefix(iter([(b"host", b"x")])) == 0  # type: ignore[arg-type]
    assert fast.prefix([]) == 0


@settings(max_examples=500)
@given(raw=values())
def test_marked_equals_the_definition(raw: bytes) -> None:
    assert _speedups.marked(raw) is marked(raw)
    assert _speedups.marked(bytearray(raw)) is marked(raw)


@pytest.mark.parametrize("word", MARKERS)
@pytest.mark.parametrize("where", ["alone", "start", "middle", "end"])
def test_marked_finds_each_word_in_every_case_and_place(word: bytes, where: str) -> None:
    for flips in range(1 << len(word)):
        mixed = case_mixed(word, flips)
        raw = {
            "alone": mixed,
            "start": mixed + b"=1",
            "middle": b"a=" + mixed + b";",
            "end": b"x" + mixed,
        }[where]
        assert _speedups.marked(raw)
        assert marked(raw)
        assert not _speedups.marked(raw.replace(mixed, mixed[:-1]))


def test_marked_reads_no_byte_as_a_letter_it_is_not() -> None:
    """`| 0x20` folds A-Z onto a-z; no other byte becomes a marker's letter (0x4D-0x6D, ...)."""
    for byte in range(256):
        for word in MARKERS:
            for at in range(len(word)):
                raw = word[:at] + bytes([byte]) + word[at + 1 :]
                assert _speedups.marked(raw) is marked(raw), (word, at, byte)


def test_marked_refuses_what_is_not_bytes() -> None:
    with pytest.raises(TypeError):
        _speedups.marked("msisdn")  # type: ignore[arg-type]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), names),
        st.tuples(st.just("update"), st.lists(names, max_size=6)),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(ops=operations, probes=st.lists(names, max_size=10))
def test_the_c_set_is_a_set(ops: list[tuple[str, Any]], probes: list[bytes]) -> None:
    fast = _speedups.HarmlessNames({}, COOKIE)
    model: set[bytes] = set()
    for op, argument in ops:
        if op == "clear":
            fast.clear()
            model.clear()
        else:
            getattr(fast, op)(argument)
            getattr(model, op)(argument)
    assert len(fast) == len(model)
    assert set(fast) == model
    assert fast == model
    assert model <= fast  # type: ignore[operator]
    for name in [*probes, *model]:
        assert (name in fast) is (name in model)
        expected = 1 if name in model else 0
        assert fast.prefix([(name, b"")]) == expected


def test_the_set_grows_and_every_name_is_still_found() -> None:
    """Past the table's size (16,384 slots, a quarter of them used) names fall back to the set."""
    fast = _speedups.HarmlessNames({}, COOKIE)
    many = [b"x-name-%d" % n for n in range(20_000)]
    fast.update(many)
    assert len(fast) == 20_000
    headers = [(name, b"v") for name in many]
    assert fast.prefix(headers) == len(headers)
    assert fast.prefix([*headers[:5], (b"x-other", b"v")]) == 5
    fast.clear()
    assert len(fast) == 0
    assert fast.prefix(headers) == 0
    fast.add(b"x-name-7")
    assert fast.prefix(headers[7:9]) == 1


def test_a_bytes_subclass_is_a_member_and_read_by_the_definition() -> None:
    class Name(bytes):
        pass

    fast, slow, _ = pair([])
    fast.add(Name(b"x-sub"))
    slow.add(Name(b"x-sub"))
    assert b"x-sub" in fast
    headers = [(b"x-sub", b"1")]
    assert fast.prefix(headers) == slow.prefix(headers) == 1
    # A subclass instance as a request's name: the C scan stops, the definition reads it.
    assert fast.prefix([(Name(b"accept"), b"1")]) == 0


def test_what_is_not_a_name_is_refused() -> None:
    fast = _speedups.HarmlessNames({}, COOKIE)
    for bad in ("host", 1, None, bytearray(b"host")):
        with pytest.raises(TypeError):
            fast.add(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.HarmlessNames([], COOKIE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(fast)


def test_add_and_clear_hold_no_references_after_they_are_done() -> None:
    """Names are owned by the table and released by `clear` and when the set goes."""
    name = b"x-" + os.urandom(8).hex().encode()
    before = sys.getrefcount(name)
    fast = _speedups.HarmlessNames({}, COOKIE)
    fast.add(name)
    assert sys.getrefcount(name) > before
    fast.clear()
    assert sys.getrefcount(name) == before
    fast.update([name] * 3)
    del fast
    gc.collect()
    assert sys.getrefcount(name) == before


def test_no_memory_is_kept_across_fill_and_clear_cycles() -> None:
    fast = _speedups.HarmlessNames({}, COOKIE)
    batch = [b"x-junk-%d" % n for n in range(5000)]

    def cycle() -> None:
        fast.update(batch)
        fast.prefix([(name, b"1") for name in batch[:100]])
        fast.clear()

    cycle()
    tracemalloc.start()
    try:
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            cycle()
        growth = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024


def test_names_and_the_guard_use_the_c_set_unless_turned_off() -> None:
    if speedups.compiled is None:
        assert os.environ.get(speedups.VARIABLE, "").strip().lower() == "off"
        assert isinstance(Names().harmless, PyHarmlessNames)
    else:
        assert isinstance(Names().harmless, _speedups.HarmlessNames)
        assert isinstance(harmless_names({}, COOKIE), _speedups.HarmlessNames)


@pytest.mark.parametrize(("value", "compiled"), [("off", False), ("OFF ", False), ("on", True)])
def test_the_variable_chooses_for_the_process(value: str, compiled: bool) -> None:
    """Read at import; the start-up event says which version serves."""
    code = (
        "import json, guard.speedups as s, guard.pairs as p, guard.detect as d\n"
        "print(json.dumps([s.compiled is not None, type(d.Names().harmless).__name__,"
        " p.suspicious is p.marked]))"
    )
    env = {**os.environ, speedups.VARIABLE: value}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == (
        [True, "HarmlessNames", False] if compiled else [False, "PyHarmlessNames", True]
    )


@pytest.mark.parametrize("value", ["no", "", "true", "c"])
def test_an_unusable_value_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env({speedups.VARIABLE: value})
    assert caught.value.variable == speedups.VARIABLE
    assert "on, off" in str(caught.value)


@pytest.mark.parametrize("value", ["on", "off", " Off"])
def test_a_usable_value_is_not_an_unknown_variable(value: str) -> None:
    assert GuardConfig.from_env({speedups.VARIABLE: value}) == GuardConfig()
