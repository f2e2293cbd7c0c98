"""What a hostile client can make the name cache and the value scan hold or do: bounded.

A flood of distinct names costs only while it lasts (the cache forgets what it learned and
learns the browser's names again), no cached name is longer than NAME_MAX bytes, a longer name is
flagged without being read past NAME_MAX, `shown` reads only as much of a name as its capped
result needs, and a value of thousands of comma-separated items looks at no more than
`Budget.ITEMS` of them. Counted, never timed.

Numbers are fictional: Australia's +61 491 570 xxx, the UK drama range +44 7700 900xxx and the
documented example IMEI 490154203237518.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import BROWSER, RecordingApp, call, http_scope
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from guard import ConfigError, Finding, GuardConfig, PrivacyGuard, detect
from guard.catalog import SHOWN_MAX, fold, shown
from guard.detect import KEEP, NAME_MAX, Budget, Flag, Names, scan_value

# A browser's names the clean path must know: the ones the audit saw fall out of the cache.
BROWSER_NAMES = [
    b"accept-language",
    b"accept-encoding",
    b"sec-ch-ua",
    b"sec-ch-ua-mobile",
    b"sec-ch-ua-platform",
    b"sec-fetch-site",
    b"sec-fetch-mode",
    b"sec-fetch-dest",
    b"if-none-match",
]
CLEAN = [*BROWSER, *((name, b"?1") for name in BROWSER_NAMES)]


def started(registry: CollectorRegistry | None = None, **config: Any) -> PrivacyGuard:
    app = RecordingApp()
    guard = PrivacyGuard(
        app,
        config=GuardConfig(**config),
        registry=CollectorRegistry() if registry is None else registry,
    )
    call(guard, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    app.scopes.clear()
    return guard


def inspections(monkeypatch: pytest.MonkeyPatch, guard: PrivacyGuard) -> list[int]:
    """Count the requests that leave the clean path for `_inspect`."""
    calls = [0]
    inspect = guard._inspect

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return inspect(*args, **kwargs)

    monkeypatch.setattr(guard, "_inspect", counting)
    return calls


def flood(guard: PrivacyGuard, requests: int, start: int = 0) -> None:
    for batch in range(requests):
        first = start + batch * 1000
        call(guard, http_scope([(b"x-junk-%d" % n, b"1") for n in range(first, first + 1000)]))


# --- the cache forgets a flood ----------------------------------------------------------------


@pytest.mark.parametrize("requests", [1, 5, 12, 30])
def test_after_a_flood_of_junk_names_a_clean_request_takes_the_clean_path_again(
    monkeypatch: pytest.MonkeyPatch, requests: int
) -> None:
    guard = started()
    names = guard._names
    harmless, table = names.harmless, names.table
    flood(guard, requests)  # just after start-up: the browser's names are not yet known

    call(guard, http_scope(list(CLEAN)))  # learns them again
    counted = inspections(monkeypatch, guard)
    call(guard, http_scope(list(CLEAN)))

    assert counted[0] == 0
    assert {name for name, _ in CLEAN if name != b"cookie"} <= names.harmless
    assert len(names.table) <= names._preset + names.CACHE_MAX
    # Emptied and refilled in place: the middleware's references are still the cache.
    assert names.harmless is harmless is guard._harmless_prefix.__self__
    assert names.table is table is guard._verdicts


def test_a_flood_interleaved_with_clean_requests_costs_only_while_it_lasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = started()
    names = guard._names
    sizes = []
    for batch in range(10):
        flood(guard, 1, start=batch * 1000)
        call(guard, http_scope(list(CLEAN)))
        sizes.append(len(names.table))
    counted = inspections(monkeypatch, guard)
    for _ in range(5):
        call(guard, http_scope(list(CLEAN)))

    assert counted[0] == 0
    assert max(sizes) <= names._preset + names.CACHE_MAX


def test_forgetting_keeps_the_preset_names_and_the_harmless_set_exact() -> None:
    names = Names(extra=["x-acme-sub"], allow=["x-nokia-msisdn"])
    names.CACHE_MAX = 16  # type: ignore[misc]
    preset = dict(names.table)
    for n in range(100):
        names.classify(b"x-junk-%d" % n)
        names.classify(b"sec-junk-%d" % n)  # KEEP: learned into `harmless` too
        assert len(names.table) <= len(preset) + 16
        assert names.harmless == {name for name, v in names.table.items() if v is KEEP}
        assert preset.items() <= names.table.items()


def test_classifying_a_cached_name_when_full_forgets_nothing() -> None:
    names = Names()
    names.CACHE_MAX = 4  # type: ignore[misc]
    learned = [b"x-a", b"x-b", b"x-c", b"x-d"]
    for name in learned:
        names.classify(name)
    names.classify(b"x-c")  # the middleware classifies a Cookie line's name again
    assert set(learned) <= set(names.table)


# --- the cache's bytes --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [NAME_MAX, NAME_MAX + 1, 8 * 1024, 64 * 1024])
def test_no_cached_name_is_longer_than_the_bound(size: int) -> None:
    guard = started()
    names = guard._names
    count = names.CACHE_MAX + 300 if size == NAME_MAX else 320  # cached ones fill it and forget
    for start in range(0, count, 16):
        lines = [((b"x-%06d-" % n).ljust(size, b"q"), b"1") for n in range(start, start + 16)]
        call(guard, http_scope(lines))

    assert max(map(len, names.table)) <= NAME_MAX
    assert len(names.table) <= names._preset + names.CACHE_MAX
    assert len(names._long) <= names.LONG_MAX
    # Memory is bounded by entries x bound, whatever the clients send.
    assert sum(map(len, names.table)) <= (names._preset + names.CACHE_MAX) * NAME_MAX


def test_name_max_is_the_longest_name_an_operator_can_configure() -> None:
    GuardConfig(extra_headers=("x" * NAME_MAX,), allow_headers=("y" * NAME_MAX,))
    with pytest.raises(ConfigError):
        GuardConfig(extra_headers=("x" * (NAME_MAX + 1),))


# --- over-long names ----------------------------------------------------------------------------

OVERLONG = {
    "a name-rule stem past the bound": b"x-" + b"a" * NAME_MAX + b"-msisdn",
    "a name-rule stem before it": b"x-msisdn-" + b"a" * NAME_MAX,
    "digits": b"x-imsi-" + b"7" * 8192,
    "an unknown name": b"x-" + b"q" * 8192,
    "a standard prefix": b"sec-" + b"a" * NAME_MAX,
    "an operator's allowed name, padded": b"x-acme-sub" + b" " * NAME_MAX,
    "control bytes and HTML": b"<script>\r\n" * 100,
}


@pytest.mark.parametrize("name", OVERLONG.values(), ids=OVERLONG.keys())
def test_an_over_long_name_is_flagged_as_other_by_the_name_rule(name: bytes) -> None:
    names = Names(extra=["x-acme-sub"], allow=["x-acme-sub"])
    verdict = names.classify(name)

    assert verdict == Flag(shown(name[:NAME_MAX].decode("latin-1")), "other", "other", "name")
    assert name not in names.table
    assert names.classify(name) is verdict  # one verdict per shown name, bound once


@pytest.mark.parametrize("mode", ["strip", "report"])
@pytest.mark.parametrize("name", OVERLONG.values(), ids=OVERLONG.keys())
def test_an_over_long_name_is_found_and_counted_as_other(name: bytes, mode: str) -> None:
    registry = CollectorRegistry()
    guard = started(registry, mode=mode)
    app = guard.app
    assert isinstance(app, RecordingApp)
    headers = [*BROWSER, (name, b"+61491570006")]
    call(guard, http_scope(headers))

    action = "removed" if mode == "strip" else "reported"
    shown_name = shown(name[:NAME_MAX].decode("latin-1"))
    assert app.scope["privacy_guard"] == (Finding(shown_name, "other", action, "name"),)
    assert ((name, b"+61491570006") in app.scope["headers"]) is (mode == "report")
    labels = {"header": "other", "kind": "other", "action": action}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1
    assert max(map(len, guard._names.table)) <= NAME_MAX


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        (b"x-" + b"a" * (NAME_MAX - 2), "SCAN"),
        (b"x-msisdn-" + b"a" * (NAME_MAX - 9), "msisdn"),
        (b"sec-" + b"a" * (NAME_MAX - 4), "KEEP"),
        (b"x-" + b"a" * (NAME_MAX - 1), "other"),
        (b"x-msisdn-" + b"a" * (NAME_MAX - 8), "other"),
        (b"sec-" + b"a" * (NAME_MAX - 3), "other"),
    ],
)
def test_names_up_to_the_bound_are_classified_as_usual(name: bytes, verdict: str) -> None:
    names = Names()
    found = names.classify(name)
    assert (found.kind if isinstance(found, Flag) else repr(found)) == verdict
    assert (name in names.table) is (len(name) <= NAME_MAX)


def test_many_distinct_over_long_names_keep_a_bounded_set_of_verdicts() -> None:
    names = Names()
    sizes = set()
    for n in range(names.LONG_MAX * 3):
        # Distinct as shown: digits would all be masked to one `#`, so spell `n` in letters.
        spelled = b"%05d" % n
        name = b"x-" + spelled.translate(bytes.maketrans(b"0123456789", b"abcdefghij")) + b"-"
        assert names.classify(name + b"a" * 200).label == "other"  # type: ignore[union-attr]
        sizes.add(len(names._long))
    assert max(sizes) == names.LONG_MAX


# --- shown: the same result, reading less -------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown_whole(name: str) -> str:
    """`shown` as it was: every substitution over the whole name, then the cap."""
    safe = _DIGITS.sub("#", _CONTROL.sub("", fold(name)))
    return safe if len(safe) <= SHOWN_MAX else safe[: SHOWN_MAX - 1] + "…"


# Characters whose handling could differ between a prefix and the whole name: digit runs and
# control bytes (which merge or vanish), whitespace (stripped at a cut), `Σ` (lower-cased by what
# follows it), `İ` (lower-cased into two characters), `_` and `.` (folded).
_HARD = st.sampled_from(list("0123456789\x00\x1f\x7f\x85\x9f \t\n_.-aZΣσİß'\u0301é"))
_NAMES = st.one_of(
    st.text(_HARD, max_size=700),
    st.text(max_size=400),
    st.builds(
        lambda head, run, tail: head + run + tail,
        st.text(_HARD, max_size=140),
        st.sampled_from(
            ["7" * 600, "\x00" * 600, " " * 600, "'" * 600, "\u0301" * 600, "1\x002" * 200]
        ),
        st.text(_HARD, max_size=140),
    ),
)


@given(_NAMES)
@example("a" * 60 + " " * 80 + "b" * 20)
@example("xΣ" + "'" * 300 + "a")  # is the Σ final? Only the `a` past any cut can tell
@example("xΣ" + "\u0301" * 300)
@example("x" * 127 + "Σ" + "'" * 40 + "a")
@example("x" * 126 + "ΑΣ")
@example("x-" + "7" * 5000 + "-msisdn")
@example("\x00" * 1000 + "x-msisdn")
@example(" " * 300 + "x" * 100)
def test_shown_is_what_it_was_on_the_whole_name(name: str) -> None:
    assert shown(name) == shown_whole(name)


@pytest.mark.parametrize("size", [0, SHOWN_MAX - 1, SHOWN_MAX, SHOWN_MAX + 1, 2 * SHOWN_MAX, 9000])
@pytest.mark.parametrize("fill", ["a", "7", "\x00", "a7", "a\x00", " a", "Σa"])
def test_shown_around_the_cap(size: int, fill: str) -> None:
    name = "x-" + (fill * size)[:size] + "-msisdn"
    assert shown(name) == shown_whole(name)


@pytest.mark.parametrize("size", [SHOWN_MAX - 1, SHOWN_MAX, SHOWN_MAX + 1, SHOWN_MAX + 40])
def test_a_name_is_shown_whole_up_to_the_cap_and_cut_past_it(size: int) -> None:
    name = "x-" + "a" * (size - 2)
    if size <= SHOWN_MAX:
        assert shown(name) == name
    else:
        assert shown(name) == name[: SHOWN_MAX - 1] + "…"


# --- the name rule without the regex, where it can ----------------------------------------------


def rule_by_regex(folded: str) -> str | None:
    match = detect._NAME_RULE.search(folded)
    return None if match is None else detect._STEM_KIND[match.group(1) or match.group(2)]


_PARTS = st.sampled_from(
    [*detect._STEM_KIND, "calling", "line", "id", "lineid", "x", "ms", "isdn", "imeis", "a", ""]
)


@given(st.lists(_PARTS, max_size=8), st.sampled_from(["-", "", "x", "--"]))
@example(["x", "imsi", "xmsisdn"], "-")
@example(["xcalling", "line", "imsi"], "-")
@example(["calling", "linex"], "-")
def test_the_name_rule_decides_as_its_regex(parts: list[str], joint: str) -> None:
    folded = joint.join(parts)
    assert detect.name_rule(folded) == rule_by_regex(folded)


# --- value items ----------------------------------------------------------------------------------


class Counting:
    """`_ITEM` with its `fullmatch` calls counted."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.calls = 0

    def fullmatch(self, value: bytes) -> re.Match[bytes] | None:
        self.calls += 1
        return self.pattern.fullmatch(value)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    item = Counting(detect._ITEM)
    monkeypatch.setattr(detect, "_ITEM", item)
    checks = {"regex": item, "phone": 0, "mcc/luhn": 0}
    for name in ("international_type", "national_type"):
        original = getattr(detect.phone, name)

        def counting(*args: Any, _original: Any = original) -> Any:
            checks["phone"] += 1
            return _original(*args)

        monkeypatch.setattr(detect.phone, name, counting)
    luhn = detect._luhn

    def counting_luhn(digits: str) -> bool:
        checks["mcc/luhn"] += 1
        return luhn(digits)

    monkeypatch.setattr(detect, "_luhn", counting_luhn)
    return checks


SIZE = 64 * 1024
HOSTILE_VALUES = {
    "1,1,1,…": b"1," * (SIZE // 2),
    ",,,,": b"," * SIZE,
    "1234567,…": b"1234567," * (SIZE // 8),
    "12345678901234567,…": b"12345678901234567," * (SIZE // 18),
    "spaced digits, one item": b"1 " * (SIZE // 2),
    "a digit run, one item": b"7" * SIZE,
    "tel: and 40 digits, …": (b"tel:+" + b"4" * 40 + b",") * (SIZE // 46),
}


@pytest.mark.parametrize("region", [None, "GB"])
@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_a_value_of_many_items_looks_at_a_bounded_number_of_them(
    counted: dict[str, Any], value: bytes, region: str | None
) -> None:
    budget = Budget(32, SIZE)

    assert scan_value(value, budget, region) is None
    assert counted["regex"].calls <= Budget.ITEMS
    assert counted["phone"] + counted["mcc/luhn"] <= 32
    assert budget.items >= 0


@pytest.mark.parametrize(
    "value", [b"7" * SIZE, b"1 " * (SIZE // 2), b"+" + b"4" * 35, b"  " + b"4" * 35 + b"  "]
)
def test_an_item_too_long_to_be_a_number_never_reaches_the_regex(
    counted: dict[str, Any], value: bytes
) -> None:
    assert scan_value(value, Budget(32, SIZE)) is None
    assert counted["regex"].calls == 0


def test_the_longest_item_a_rule_can_match_still_reaches_it(counted: dict[str, Any]) -> None:
    longest = b"tel:+" + b"-".join(b"%d" % (n % 10) for n in range(15))
    assert len(longest) == detect._ITEM_MAX
    scan_value(longest, Budget(32, SIZE))
    assert counted["regex"].calls == 1
    assert counted["phone"] == 1  # a 15-digit `tel:+` number is checked


def test_items_past_the_bound_exhaust_the_budget() -> None:
    number = b"+61491570006"
    within = b",".join([b"1"] * (Budget.ITEMS - 1) + [number])
    beyond = b",".join([b"1"] * Budget.ITEMS + [number])

    budget = Budget(32, SIZE)
    assert scan_value(within, budget) == detect.Hit("msisdn", "AU")
    assert not budget.exhausted
    budget = Budget(32, SIZE)
    assert scan_value(beyond, budget) is None
    assert budget.exhausted
    assert budget.items == 0


def test_a_value_of_exactly_the_bound_of_items_is_read_whole() -> None:
    """Every item was looked at: nothing left unread, so the budget is spent but not exhausted."""
    budget = Budget(32, SIZE)
    assert scan_value(b",".join([b"1"] * Budget.ITEMS), budget) is None
    assert budget.items == 0
    assert not budget.exhausted


def test_items_are_charged_across_a_requests_values() -> None:
    budget = Budget(32, SIZE)
    value = b",".join([b"1"] * 100)
    scan_value(value, budget)
    scan_value(value, budget)
    assert budget.items == Budget.ITEMS - 200
    scan_value(value, budget)
    assert budget.exhausted


# Values the rules find or pass, unchanged by the item bound (tests/test_values.py has the rest).
LEGITIMATE = [
    (b"+61491570006", "msisdn"),
    (b"tel:+61-491-570-006", "msisdn"),
    (b"TEL:+61 491 570 006", "msisdn"),
    (b"61491570006", "msisdn"),
    (b"  +61491570006  ", "msisdn"),
    (b"447700900123, +61 491 570 006", "msisdn"),
    (b"abc,def, 12, +61491570157", "msisdn"),
    (b"490154203237518", "imei"),
    (b"1700000000000", None),
    (b"+61491570006123456", None),
    (b"1.2.3.4", None),
    (b"2026-01-01", None),
    (b"9,99,999,9999", None),
]


@pytest.mark.parametrize(("value", "kind"), LEGITIMATE)
def test_legitimate_values_keep_their_verdicts(value: bytes, kind: str | None) -> None:
    hit = scan_value(value, Budget(32, SIZE))
    assert (hit.kind if hit is not None else None) == kind


def test_a_hostile_list_spends_the_requests_items_and_is_counted_as_exhausted() -> None:
    registry = CollectorRegistry()
    guard = started(registry)
    app = guard.app
    assert isinstance(app, RecordingApp)
    contact = (b"x-acme-contact", b"+61491570006")
    headers = [
        *BROWSER,
        contact,
        (b"x-acme-list", b"1," * 2000),
        (b"x-acme-other", b"+61491570157"),
    ]
    call(guard, http_scope(headers))

    # As with checks and bytes: what comes before is scanned, what comes after is not.
    assert app.scope["privacy_guard"] == (Finding("x-acme-contact", "msisdn", "removed", "value"),)
    exhausted = registry.get_sample_value(
        "privacy_guard_scan_budget_exhausted_total", {"type": "http"}
    )
    assert exhausted == 1
