"""The request path's counters: lock-free ticks that every scrape reads exactly."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry, Counter, generate_latest

from guard import GuardConfig, PrivacyGuard
from guard.catalog import KINDS
from guard.metrics import OVERHEAD_SAMPLE, GuardMetrics, _bump, _Ticks

LABELS = {"header", "other", "cookie", "query"}


def _metrics(registry: CollectorRegistry) -> GuardMetrics:
    return GuardMetrics(
        registry, version="t", mode="strip", catalog_version="c", actions={"removed"}, labels=LABELS
    )


def _requests(registry: CollectorRegistry, result: str = "clean") -> float | None:
    labels = {"type": "http", "result": result}
    return registry.get_sample_value("privacy_guard_requests_total", labels)


def test_a_tick_is_seen_by_the_next_scrape_and_reads_change_nothing() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    assert _requests(registry) == 0
    for expected in range(1, 6):
        metrics.clean["http"]()
        assert _requests(registry) == expected
        assert _requests(registry) == expected  # a read is not a tick
    assert b'privacy_guard_requests_total{result="clean",type="http"} 5.0' in generate_latest(
        registry
    )


def test_ticks_from_many_threads_are_never_lost() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    tick = metrics.clean["http"]
    threads, each = 8, 20_000
    stop = threading.Event()

    def scrape() -> None:  # reads racing the ticks
        while not stop.is_set():
            _requests(registry)

    def work() -> None:
        for _ in range(each):
            tick()

    reader = threading.Thread(target=scrape)
    reader.start()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    reader.join()
    assert _requests(registry) == threads * each


def test_the_public_counter_interface_still_works_alongside_ticks() -> None:
    registry = CollectorRegistry()
    child = Counter("c", "c", ["a"], registry=registry).labels("x")
    child.inc(2.5)
    tick = _bump(child)
    assert isinstance(child._value, _Ticks)
    tick()
    tick()
    child.inc(0.5)
    assert registry.get_sample_value("c_total", {"a": "x"}) == 5.0
    child.reset()
    assert registry.get_sample_value("c_total", {"a": "x"}) == 0.0
    tick()
    assert registry.get_sample_value("c_total", {"a": "x"}) == 1.0


def test_guards_sharing_a_registry_share_one_count() -> None:
    registry = CollectorRegistry()
    first, second = _metrics(registry), _metrics(registry)
    assert first.clean["http"] == second.clean["http"]
    first.clean["http"]()
    second.clean["http"]()
    assert _requests(registry) == 2


@pytest.mark.parametrize("mode", ["strip", "report"])
def test_every_request_is_counted_exactly_through_the_guard(mode: str) -> None:
    registry = CollectorRegistry()

    async def app(scope, receive, send) -> None:
        pass

    guard = PrivacyGuard(app, config=GuardConfig(mode=mode), registry=registry)

    async def run() -> None:
        for index in range(300):
            headers = [(b"host", b"a.test")]
            if index % 3 == 0:
                headers.append((b"x-msisdn", b"447700900123"))
            await guard({"type": "http", "path": "/", "headers": headers}, None, None)

    asyncio.run(run())
    assert _requests(registry, "clean") == 200
    assert _requests(registry, "flagged") == 100
    action = "removed" if mode == "strip" else "reported"
    labels = {"header": "x-msisdn", "kind": "msisdn", "action": action}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 100
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "GB"}) == 100


@pytest.mark.parametrize(
    ("headers", "first", "other"),
    [
        # Two catalog headers (a remembered plan from the second request on), two countries.
        ([(b"x-msisdn", b"447700900123"), (b"x-up-calling-line-id", b"61491570006")], "GB", "AU"),
        ([(b"x-up-calling-line-id", b"61491570006"), (b"x-msisdn", b"447700900123")], "AU", "GB"),
        # A value-rule number first, then a catalog header; and the other way round.
        ([(b"x-contact", b"+61 491 570 006"), (b"x-msisdn", b"447700900123")], "AU", "GB"),
        ([(b"x-msisdn", b"61491570006"), (b"x-contact", b"+1 201 555 0123")], "AU", "US"),
    ],
    ids=["catalog GB, AU", "catalog AU, GB", "value AU, catalog GB", "catalog AU, value US"],
)
def test_numbers_count_each_request_once_by_its_first_number(
    headers: list[tuple[bytes, bytes]], first: str, other: str
) -> None:
    """A gateway may send two numbers; numbers_total counts the request once, by the first."""
    registry = CollectorRegistry()
    guard = PrivacyGuard(RecordingApp(), config=GuardConfig(), registry=registry)
    for _ in range(3):
        call(guard, http_scope([(b"host", b"a.test"), *headers]))

    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": first}) == 3
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": other}) is None


def test_number_counts_are_bound_once_per_region_and_zz_exists_from_the_start() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "ZZ"}) == 0
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "AU"}) is None
    count = metrics.numbers["AU"]
    assert metrics.numbers["AU"] is count
    count()
    count()
    assert registry.get_sample_value("privacy_guard_numbers_total", {"region": "AU"}) == 2


def test_identifier_counts_are_bound_once_and_only_for_the_closed_label_set() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    count = metrics.identifier_counts["cookie", "msisdn", "removed"]
    assert metrics.identifier_counts["cookie", "msisdn", "removed"] is count
    for _ in range(3):
        count()
    labels = {"header": "cookie", "kind": "msisdn", "action": "removed"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 3
    with pytest.raises(ValueError, match="closed set"):
        metrics.identifier_counts["x-not-a-label", "msisdn", "removed"]
    assert ("x-not-a-label", "msisdn", "removed") not in metrics.identifier_counts


def test_the_overhead_is_timed_for_exactly_one_request_in_the_sample() -> None:
    """The histogram's help says "sampled 1 in OVERHEAD_SAMPLE": its count must agree, or a
    dashboard scaling the count by the sample misstates the request rate."""
    registry = CollectorRegistry()
    guard = PrivacyGuard(RecordingApp(), config=GuardConfig(), registry=registry)

    def timed() -> float | None:
        return registry.get_sample_value("privacy_guard_overhead_seconds_count")

    for _ in range(OVERHEAD_SAMPLE - 1):
        call(guard, http_scope([(b"host", b"a.test")]))
    assert timed() == 0
    call(guard, http_scope([(b"host", b"a.test"), (b"x-msisdn", b"447700900123")]))
    assert timed() == 1
    for _ in range(OVERHEAD_SAMPLE * 3):
        call(guard, http_scope([(b"host", b"a.test")]))
    assert timed() == 4


def test_a_request_without_a_phone_number_is_not_counted_in_numbers() -> None:
    """numbers_total counts requests carrying a number; an IMSI-only or device-token request
    found and removed adds no region (and never a "None" one)."""
    registry = CollectorRegistry()
    guard = PrivacyGuard(RecordingApp(), config=GuardConfig(), registry=registry)

    for _ in range(2):  # the second is a replayed plan
        call(guard, http_scope([(b"host", b"a.test"), (b"x-imsi", b"001010123456789")]))

    numbers = [
        (sample.labels["region"], sample.value)
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "privacy_guard_numbers_total"
    ]
    assert numbers == [("ZZ", 0.0)]
    flagged = {"type": "http", "result": "flagged"}
    assert registry.get_sample_value("privacy_guard_requests_total", flagged) == 2


def test_identifier_series_of_every_kind_read_zero_from_start_up() -> None:
    """Pre-initialised for each action the guard can take, so that dashboards read 0, not
    "No data", before the first finding; and for no other action."""
    registry = CollectorRegistry()
    _metrics(registry)

    for kind in KINDS:
        labels = {"header": "other", "kind": kind}
        removed = registry.get_sample_value(
            "privacy_guard_identifiers_total", labels | {"action": "removed"}
        )
        assert removed == 0, kind
        reported = registry.get_sample_value(
            "privacy_guard_identifiers_total", labels | {"action": "reported"}
        )
        assert reported is None, kind
