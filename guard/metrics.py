"""Prometheus metrics: registered once per registry, children bound up front, labels closed.

Every label value comes from a closed set (the catalog, the operator's extra names, fixed enums,
phonenumbers' regions), never from what a client sent. A `.labels()` lookup costs ~1.7 µs and a
lock-taking `inc()` ~0.45 µs, so the request path never calls either: it calls a pre-bound tick
(`_Ticks`), one C call without a lock, and a scrape adds the ticks up.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from .catalog import KINDS

__all__ = ["STAGES", "GuardMetrics", "exposition", "start_listener"]

STAGES = ("names", "values", "metrics", "logging", "exposition", "placement")
TYPES = ("http", "websocket")
OVERHEAD_SAMPLE = 64  # time one request in this many
# Fine where the guard's costs lie (2–20 µs: clean, carrier headers, a value-rule hit), so a
# quantile reads within ~1.5× of the truth there; coarse above, where only floods land.
_OVERHEAD_BUCKETS = tuple(
    microseconds * 1e-6
    for microseconds in (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50, 100, 250, 1000, 5000, 25000)
)


class _Families(NamedTuple):
    requests: Counter
    identifiers: Counter
    info: Gauge
    numbers: Counter
    exhausted: Counter
    errors: Counter
    overhead: Histogram
    layers_in_front: Gauge


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Families] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _families(registry: CollectorRegistry) -> _Families:
    """The metric families of `registry`, created on first use.

    Starlette may build its middleware stack more than once and tests build many guards: a second
    registration would raise "Duplicated timeseries", and a second unregistered family would be a
    counter nobody ever scrapes.
    """
    with _LOCK:
        found = _BY_REGISTRY.get(registry)
        if found is None:
            found = _BY_REGISTRY[registry] = _Families(
                Counter(
                    "privacy_guard_requests",
                    "Requests the guard inspected, by scope type and whether anything was found.",
                    ["type", "result"],
                    registry=registry,
                ),
                Counter(
                    "privacy_guard_identifiers",
                    "Identifying header lines found (one per line), by header, kind and action.",
                    ["header", "kind", "action"],
                    registry=registry,
                ),
                Gauge(
                    "privacy_guard_info",
                    "Always 1; the guard's version, mode and catalog version.",
                    ["version", "mode", "catalog_version"],
                    registry=registry,
                    # live: a worker gone (gunicorn reload, a crash) stops counting, so a mode
                    # changed by the reload is not reported twice.
                    multiprocess_mode="livemax",
                ),
                Counter(
                    "privacy_guard_numbers",
                    "Requests carrying a phone number, by the region of the first one"
                    " (ZZ: unknown, or an MSISDN header whose value is not a number).",
                    ["region"],
                    registry=registry,
                ),
                Counter(
                    "privacy_guard_scan_budget_exhausted",
                    "Requests whose value-scan budget ran out before every value was checked.",
                    ["type"],
                    registry=registry,
                ),
                Counter(
                    "privacy_guard_errors",
                    "Internal errors, by the stage that failed.",
                    ["stage"],
                    registry=registry,
                ),
                Histogram(
                    "privacy_guard_overhead_seconds",
                    f"The guard's own time per request, sampled 1 in {OVERHEAD_SAMPLE}.",
                    buckets=_OVERHEAD_BUCKETS,
                    registry=registry,
                ),
                Gauge(
                    "privacy_guard_layers_in_front",
                    "ASGI layers found running before the guard at start-up (0: it is outermost);"
                    " its log event privacy_guard.not_outermost names them.",
                    registry=registry,
                    multiprocess_mode="livemax",
                ),
            )
    return found


class GuardMetrics:
    """One guard's view of the families: pre-bound children for everything the hot path counts."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str,
        mode: str,
        catalog_version: str,
        actions: Iterable[str],
        labels: Iterable[str],
    ) -> None:
        fam = self._families = _families(registry)
        fam.info.labels(version, mode, catalog_version).set(1)
        self.layers_in_front = fam.layers_in_front  # set at start-up; reads 0 until then
        self.requests = {
            (t, r): fam.requests.labels(t, r) for t in TYPES for r in ("clean", "flagged")
        }
        self.clean = {t: _bump(self.requests[t, "clean"]) for t in TYPES}
        self.flagged = {t: _bump(self.requests[t, "flagged"]) for t in TYPES}
        self.exhausted = {t: fam.exhausted.labels(t) for t in TYPES}
        self.errors = {stage: fam.errors.labels(stage) for stage in STAGES}
        self.overhead = fam.overhead
        self._labels = frozenset(labels)
        self._identifiers: dict[tuple[str, str, str], Counter] = {}
        # numbers_total's increment by region, bound on first use: `self.numbers[region]()`.
        # Regions are phonenumbers' (~245), "001" for non-geographic plans and "ZZ": closed.
        self.numbers: _Bound[str] = _Bound(lambda region: _bump(fam.numbers.labels(region)))
        # identifiers_total's increment by (header, kind, action), bound on first use; the
        # labels are checked against the closed sets then (`identifier`).
        self.identifier_counts: _Bound[tuple[str, str, str]] = _Bound(
            lambda key: _bump(self.identifier(*key))
        )
        # Pre-initialised so that dashboards read 0, not "No data", before the first finding.
        for action in actions:
            for kind in KINDS:
                self.identifier("other", kind, action)
        self.numbers["ZZ"]  # looked up once: the series exists from start-up

    def identifier(self, label: str, kind: str, action: str) -> Counter:
        key = (label, kind, action)
        child = self._identifiers.get(key)
        if child is None:
            if label not in self._labels or kind not in KINDS:
                raise ValueError("label outside the closed set")  # a bug, never client data
            child = self._identifiers[key] = self._families.identifiers.labels(*key)
        return child


_K = TypeVar("_K")


class _Bound(dict[_K, Callable[[], object]]):
    """Ready-to-call increments by label value, each bound the first time it is looked up: one
    C-level dict lookup on the request path."""

    def __init__(self, bind: Callable[[_K], Callable[[], object]]) -> None:
        super().__init__()
        self._bind = bind

    def __missing__(self, key: _K) -> Callable[[], object]:
        count = self[key] = self._bind(key)
        return count


class _Ticks:
    """A counter child's value that the request path bumps without taking a lock.

    `tick` is `itertools.count().__next__`: one C call that holds the GIL from start to end, so
    bumps from any number of threads are never lost, and it costs ~40 ns where the child's own
    locked `inc` costs ~450. A read takes one more number from the same count and subtracts the
    numbers earlier reads took, so what a scrape sees is exact. The rest of prometheus-client's
    value interface (`inc` by an amount, `set`, exemplars) works as before, under a lock.
    """

    _multiprocess = False

    def __init__(self, start: float) -> None:
        self._lock = threading.Lock()
        self._value = start
        self._exemplar: object = None
        self._reads = 0
        self._count = itertools.count()
        self.tick: Callable[[], object] = self._count.__next__

    def _ticked(self) -> int:
        # Under self._lock: the count has handed out one number per tick and one per read.
        taken = next(self._count) - self._reads
        self._reads += 1
        return taken

    def inc(self, amount: float) -> None:
        with self._lock:
            self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        with self._lock:
            self._value = value - self._ticked()

    def get(self) -> float:
        with self._lock:
            return self._value + self._ticked()

    def set_exemplar(self, exemplar: object) -> None:
        with self._lock:
            self._exemplar = exemplar

    def get_exemplar(self) -> object:
        with self._lock:
            return self._exemplar


def _bump(child: Counter) -> Callable[[], object]:
    """A ready-to-call increment of `child` for the request path.

    Single-process, the child's value becomes a `_Ticks` (once: guards sharing a registry share
    its children). Multiprocess values live in a shared file that every write must reach, so they
    keep prometheus-client's own `inc`, minus its argument checks.

    Notes: relies on prometheus-client keeping a child's value in `_value` (a `MutexValue`, or
    an mmap-backed value with `inc(amount)`); anything else falls back to the public `inc`.
    """
    with _LOCK:  # two threads binding one child must end up with one count
        value = getattr(child, "_value", None)
        if isinstance(value, _Ticks):
            return value.tick
        if type(value) is values.MutexValue:
            ticks = _Ticks(value.get())  # type: ignore[no-untyped-call]
            child._value = ticks
            return ticks.tick
    inc = getattr(value, "inc", None)
    return child.inc if inc is None else functools.partial(inc, 1)


def _exposition_registry(registry: CollectorRegistry) -> CollectorRegistry:
    if registry is REGISTRY and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its own files; a fresh registry per scrape sums them all.
        fresh = CollectorRegistry()
        MultiProcessCollector(fresh)  # type: ignore[no-untyped-call]
        return fresh
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(_exposition_registry(registry)), CONTENT_TYPE_LATEST


class _AggregatingRegistry(CollectorRegistry):
    """Hands `start_http_server` a registry that aggregates all workers at every scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(auto_describe=False)
        self._source = registry

    def collect(self):  # type: ignore[no-untyped-def]
        yield from _exposition_registry(self._source).collect()


_LISTENING: set[tuple[str, int]] = set()


def start_listener(host: str, port: int, registry: CollectorRegistry) -> bool:
    """Serve the exposition on host:port, once per host: True if this process now serves it.

    With several workers every one of them tries; the first binds the port and the others find
    it taken (`EADDRINUSE`) and carry on without a listener of their own.
    """
    with _LOCK:
        if (host, port) in _LISTENING:
            return False
        try:
            start_http_server(port, addr=host, registry=_AggregatingRegistry(registry))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
        _LISTENING.add((host, port))
        return True
