"""`PrivacyGuard`: the pure-ASGI middleware. The whole request path is in this file.

References:
    ASGI HTTP and WebSocket specification: https://asgi.readthedocs.io/en/latest/specs/www.html
    RFC 9110 §5.1 (field names are case-insensitive tokens).
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from . import checkpage, phone, placement, pseudonym, speedups
from .catalog import CATALOG_VERSION, fold, shown
from .config import ConfigError, GuardConfig
from .detect import (
    COOKIE,
    GUARD_HEADERS,
    KEEP,
    Budget,
    Finding,
    Flag,
    Names,
    Verdict,
    calling_region,
    scan_value,
)
from .events import (
    EVENT_ALLOWED,
    EVENT_CONFIG,
    EVENT_ERROR,
    EVENT_NOT_OUTERMOST,
    EVENT_STARTED,
    Events,
)
from .metrics import OVERHEAD_SAMPLE, GuardMetrics, exposition, start_listener
from .pairs import Allowance, cookie_hits, query_hits, suspicious, suspicious_query
from .pseudonym import PRIORITY

__all__ = ["SCOPE_KEY", "PrivacyGuard"]

# Any ASGI 3 application. Starlette's `ASGIApp` is too narrow for frameworks with stricter scope
# types (Litestar), which must still type-check when wrapped.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__version__ = "0.1.0"

SCOPE_KEY = "privacy_guard"
# A name's counter increment, bound the first time that name is counted. `identifier_counts`
# caches the same increments by (header, kind, action); the cell skips building and hashing that
# key per count (measured: 0.19 µs for three carrier headers).
_Cell = list[Callable[[], object] | None]
# metric label, kind, action, index of the header line (None: cookie pair, query), and the
# name's counter cell (None: look the counter up)
_Count = tuple[str, str, str, int | None, _Cell | None]


@dataclass(slots=True)
class _Inspection:
    headers: list[tuple[bytes, bytes]] | None  # the new header list; None: unchanged
    findings: tuple[Finding, ...]
    counts: Sequence[_Count]  # one per finding, in the same order
    region: str | None  # of the request's first phone number, for numbers_total
    exhausted: bool  # the value-scan budget ran out


@dataclass(frozen=True, slots=True)
class _Plan:
    """What inspecting one shape of request found, kept when nothing in it depended on a value.

    A carrier's gateway adds the same header names to every request it forwards, so a flagged
    request is mostly a shape seen before: the names from its first non-harmless line on. When
    those names are only flagged names (catalog, name rule, the operator's extra names, the
    guard's own headers) and harmless ones, the findings, counts and lines to drop are the same
    every time, and `_replay` reuses them. Values still decide what they always decide: a Cookie
    line and the query string are checked on every request, and the region of the first number
    is read from this request's value.
    """

    start: int  # the first line the shape covers; lines before it are plainly harmless
    findings: tuple[Finding, ...]
    counts: tuple[_Count, ...]
    drop: tuple[int, ...]  # header lines removed, last first
    cookies: tuple[int, ...]  # Cookie lines, whose values are checked every time
    number: int | None  # the first line of kind msisdn, whose value gives numbers_total's region


_INSPECTED = frozenset({"http", "websocket"})
# The one finding for the Cookie lines of a request removed whole (reported, in report mode)
# because its cookie allowance ran out (`guard.pairs.Allowance`): rule `name`, as their pair
# names hold marker words; DESIGN's set of rules stays closed.
_CUT = "cookie:*"
# Shapes remembered (the table starts afresh when full), and the largest shape remembered: a
# client sending ever-new shapes gets every request inspected line by line, in bounded memory.
_PLANS_MAX = 256
_PLAN_LINES = 32
_PLAN_NAME_BYTES = 2048
_name = itemgetter(0)
_NO_COUNT: dict[str, Callable[[], object]] = {"http": lambda: None, "websocket": lambda: None}
_ALLOW_GET = ((b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD"))
_REFUSED = b"Request refused: the privacy guard could not inspect it.\n"


class PrivacyGuard:
    """Removes carrier-injected subscriber identifiers from request headers before the app runs.

    Put it outermost (`app = PrivacyGuard(app)`), so that nothing before it — error reporters,
    request loggers, tracing — ever sees the headers it removes.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: GuardConfig | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.app = app
        self._refusal: str | None = None
        try:
            self.config = GuardConfig.from_env() if config is None else config
        except ConfigError as exc:
            # Notes: Starlette builds its middleware stack lazily, inside the first ASGI call —
            # the lifespan one. An exception there makes uvicorn (lifespan "auto") decide the app
            # has no lifespan and serve anyway. So when a framework builds us, we stay alive only
            # to refuse: `lifespan.startup.failed` with the message, and 500 for any request.
            if not _built_by_framework():
                raise
            self._refusal = str(exc)
            self.config = GuardConfig()
        config = self.config
        self._strip = config.mode == "strip"
        self._action = "removed" if self._strip else "reported"
        self._value_action = (
            "removed" if self._strip and config.scan_values == "strip" else "reported"
        )
        self._scan_off = config.scan_values == "off"
        self._region = config.default_region
        self._key = config.pseudonym_key
        self._key_previous = config.pseudonym_key_previous
        self._trusted_paths = config.trusted_paths
        self._trusted_names = frozenset(config.trusted_headers)
        self._allowed = frozenset(config.allow_headers)
        self._check_path = config.check_path
        self._registry = REGISTRY if registry is None else registry
        self._metrics: GuardMetrics | None = None
        if config.metrics:
            self._metrics = GuardMetrics(
                self._registry,
                version=__version__,
                mode=config.mode,
                catalog_version=CATALOG_VERSION,
                actions={self._action, self._value_action}
                | ({"replaced"} if self._key is not None else set()),
                labels=Names.labels_for(config.extra_headers),
            )
        self._count_clean = self._metrics.clean if self._metrics is not None else _NO_COUNT
        self._names = Names(
            config.extra_headers, config.allow_headers, config.trusted_headers, self._bind
        )
        self._metrics_path = config.metrics_path
        self._events = Events(debug=config.log_level == "debug")
        self._verdicts = self._names.table
        self._harmless_prefix = self._names.harmless.prefix
        # Shape -> plan. Off with pseudonyms: their tokens are computed from values.
        self._plans: dict[tuple[bytes, ...], _Plan] | None = {} if self._key is None else None
        # True once started, unless refusing: the one check that keeps `_elsewhere` off the path.
        self._ready = False
        # True for one request in OVERHEAD_SAMPLE: the guard's own time is observed for those.
        self._sampled = itertools.cycle(
            (False,) * (OVERHEAD_SAMPLE - 1) + (self._metrics is not None,)
        ).__next__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if (
            scope_type not in _INSPECTED
            or not self._ready
            or SCOPE_KEY in scope
            or (
                self._metrics_path is not None
                and scope_type == "http"
                and _route(scope) == self._metrics_path
            )
        ):
            await self._elsewhere(scope, receive, send)
            return

        sampled = self._sampled()
        started = time.perf_counter() if sampled else 0.0
        found: _Inspection | None
        try:
            # The clean path: the lines whose names are known harmless, and a Cookie line without
            # a marker word, are passed over in one call (`guard.harmless`). From the first line
            # that is not plainly harmless, the whole request goes through `_inspect`.
            headers = scope["headers"]
            if type(headers) is not list and type(headers) is not tuple:
                # Any other iterable the ASGI spec allows: read once, into a list to index.
                scope = {**scope, "headers": list(headers)}
                headers = scope["headers"]
            start = self._harmless_prefix(headers)
            if start < len(headers):
                found = self._inspect(scope, start)
            else:
                # Every line is harmless: only the query string is left, tested here once.
                query = scope.get("query_string")
                marked = query and suspicious_query(query)
                found = self._inspect(scope, len(headers), True) if marked else None
        except Exception:
            # Fail closed: a request whose names could not be checked never reaches the app.
            self._fault("names")
            await _refuse(scope, receive, send)
            return

        scope = dict(scope)  # the one copy: the server owns the scope it passed in
        if found is None:
            scope[SCOPE_KEY] = ()
            try:
                self._count_clean[scope_type]()
            except Exception:
                self._fault("metrics")
        else:
            scope[SCOPE_KEY] = found.findings
            if found.headers is not None:
                scope["headers"] = found.headers
            self._record(scope_type, scope, found)
        if sampled:
            self._observe(time.perf_counter() - started)
        if (
            self._check_path is not None
            and scope_type == "http"
            and _route(scope) == self._check_path
        ):
            await self._serve_check(scope, send)
            return
        await self.app(scope, receive, send)

    async def _elsewhere(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything that is not an ordinary request: lifespan and unknown scope types, a guard
        that must refuse or has not started, the metrics path, and a scope an outer guard saw."""
        scope_type = scope["type"]
        if scope_type not in _INSPECTED:
            if scope_type == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        elif self._refusal is not None:
            await _refuse(scope, receive, send)
        elif not self._ready:
            self._start()
            await self(scope, receive, send)
        elif SCOPE_KEY in scope:
            await self._nested(scope, receive, send)
        else:
            await self._serve_metrics(scope, send)

    def _inspect(
        self, scope: Scope, start: int = 0, marked: bool | None = None
    ) -> _Inspection | None:
        """One pass over the header lines from `start` (the lines before it are known harmless):
        what to drop, what was found, what to count. A shape seen before is replayed. `marked`:
        whether the query string holds a marker word, if the caller has tested it already."""
        headers = scope["headers"]
        query: bytes = scope.get("query_string") or b""
        if marked is None:
            marked = bool(query) and suspicious_query(query)
        shape = None
        if self._plans is not None and len(headers) - start <= _PLAN_LINES:
            shape = tuple(map(_name, headers[start:]))
            plan = self._plans.get(shape)
            if plan is not None and plan.start == start:
                replayed = _replay(plan, scope, marked)
                if replayed is not None:
                    return replayed
        verdicts = self._verdicts
        findings: list[Finding] = []
        counts: list[_Count] = []
        drop: list[int] = []
        cookies: list[int] = []  # Cookie lines without a marker
        fixed = True  # nothing found so far depended on a value or on the scope: a plan
        number: int | None = None
        rewrite: dict[int, tuple[bytes, bytes]] | None = None  # cookie lines, some pairs removed
        budget: Budget | None = None
        # Cookie pairs and query parameters: one allowance for all Cookie lines and the query.
        allowance: Allowance | None = None
        trusted: bool | None = None
        subscribers: list[tuple[int, int, str, bytes]] = []  # (priority, line, kind, value)
        # numbers_total counts a request's first number: a gateway often sends the same number
        # in two headers (x-up-calling-line-id and x-msisdn), which is one subscriber.
        region: str | None = None
        for index in range(start, len(headers)):
            name, value = headers[index]
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = self._names.classify(name)
            if verdict is KEEP:
                continue
            if isinstance(verdict, Flag):
                flag = verdict
                finding, action, count = flag.bound
                if region is None and flag.kind == "msisdn":
                    region = calling_region(value)
                    number = index
            elif verdict is COOKIE:
                if not suspicious(value):
                    cookies.append(index)
                else:
                    fixed = False
                    if allowance is None:
                        allowance = Allowance()
                    cut = allowance.cut
                    cookie, pairs = cookie_hits(value, allowance)
                    for pair in pairs:
                        findings.append(
                            Finding(f"cookie:{pair.shown}", pair.kind, self._action, pair.rule)
                        )
                        counts.append(("cookie", pair.kind, self._action, None, None))
                    if cut == 0 and allowance.cut:
                        # The first line given up on: one finding for every such line, fail closed.
                        findings.append(Finding(_CUT, "other", self._action, "name"))
                        counts.append(("cookie", "other", self._action, None, None))
                    if cookie is not value and self._strip:
                        if cookie is None:
                            drop.append(index)
                        else:
                            rewrite = rewrite or {}
                            rewrite[index] = (name, cookie)
                continue
            else:  # SCAN: an unknown name, whose value may still be a number
                if self._scan_off:
                    continue
                fixed = False
                if budget is not None and budget.exhausted:
                    continue
                if budget is None:
                    budget = Budget(self.config.scan_budget, self.config.scan_bytes)
                try:
                    hit = scan_value(value, budget, self._region)
                except Exception:
                    self._fault("values")  # a broken value check must not break the request
                    continue
                if hit is None:
                    continue
                folded = fold(name.decode("latin-1"))
                flag = Flag(
                    shown(folded), "other", hit.kind, "value", folded in self._trusted_names
                )
                action = self._value_action
                finding, count = Finding(flag.shown, flag.kind, action, "value"), None
                if region is None and hit.kind == "msisdn":
                    region = hit.region
            if flag.trusted and action == "removed":
                fixed = False
                trusted = self._trusted(scope) if trusted is None else trusted
                if trusted:
                    action = "reported"  # a partner flow from the carrier's own gateway
                    finding, count = finding._replace(action=action), None
            if action == "removed":
                drop.append(index)
                if self._key is not None and flag.kind in PRIORITY and not flag.forced:
                    subscribers.append((PRIORITY.index(flag.kind), index, flag.kind, value))
            findings.append(finding)
            counts.append((flag.label, flag.kind, action, index, count))

        if marked:
            fixed = False
            for pair in query_hits(query, allowance or Allowance()):
                findings.append(Finding(f"query:{pair.shown}", pair.kind, "reported", pair.rule))
                counts.append(("query", pair.kind, "reported", None, None))

        added = self._pseudonyms(sorted(subscribers)) if subscribers else None
        if added:
            for position, (finding, count) in enumerate(zip(findings, counts, strict=True)):
                label, kind, _, at, _ = count
                if (
                    finding.action == "removed"
                    and kind in PRIORITY
                    and label not in GUARD_HEADERS
                    and at is not None  # header lines; cookie pairs are just removed
                ):
                    findings[position] = finding._replace(action="replaced")
                    counts[position] = (label, kind, "replaced", at, None)
        exhausted = budget is not None and budget.exhausted
        if not findings and not exhausted:
            return None
        kept = None
        if drop or rewrite or added:
            kept = list(headers)
            if rewrite:
                for index, line in rewrite.items():
                    kept[index] = line
            for index in reversed(drop):
                del kept[index]
            if added:
                kept += added
        found = _Inspection(kept, tuple(findings), counts, region, exhausted)
        if fixed and shape is not None and findings:
            self._keep_plan(shape, found, start, drop, cookies, number)
        return found

    def _keep_plan(
        self,
        shape: tuple[bytes, ...],
        found: _Inspection,
        start: int,
        drop: list[int],
        cookies: list[int],
        number: int | None,
    ) -> None:
        """Keep a value-independent inspection as the plan for its shape, within the bounds."""
        plans = self._plans
        if plans is None or sum(map(len, shape)) > _PLAN_NAME_BYTES:
            return
        if len(plans) >= _PLANS_MAX:
            plans.clear()
        plans[shape] = _Plan(
            start,
            found.findings,
            tuple(found.counts),
            tuple(reversed(drop)),
            tuple(cookies),
            number,
        )

    def _bind(self, flag: Flag) -> tuple[Finding, str, _Cell]:
        """A name flag's ready-made finding and action, and a cell for its counter, bound on
        first use (series appear when something is found, not 115 zeros at start-up)."""
        action = "removed" if flag.forced else self._action
        return Finding(flag.shown, flag.kind, action, flag.rule), action, [None]

    def _pseudonyms(
        self, subscribers: list[tuple[int, int, str, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The pseudonym header lines for the first identifier that normalises (MSISDN first,
        then IMSI, then IMEI; by header order within a kind)."""
        for _, _, kind, value in subscribers:
            identifier = pseudonym.normalise(kind, value, self._region)
            if identifier is None or self._key is None:
                continue
            lines = [(pseudonym.HEADER, pseudonym.token(self._key, kind, identifier))]
            if self._key_previous is not None:
                previous = pseudonym.token(self._key_previous, kind, identifier)
                lines.append((pseudonym.HEADER_PREVIOUS, previous))
            return lines
        return []

    def _trusted(self, scope: Scope) -> bool:
        """Is this request from a trusted gateway (peer address) on a trusted path?

        A prefix matches whole path segments: `/billing` trusts `/billing` and `/billing/x`, not
        `/billing-admin`.
        """
        client = scope.get("client")
        path = _route(scope)
        if "/." in path and {".", ".."} & set(path.split("/")):
            return False  # `/billing/../admin` is not under `/billing` once an app collapses it
        if not client or not any(
            path == prefix or path.startswith(prefix.rstrip("/") + "/")
            for prefix in self._trusted_paths
        ):
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        return any(address in network for network in self.config.trusted_sources)

    def _record(self, scope_type: str, scope: Scope, found: _Inspection) -> None:
        """Count and log what `_inspect` found. Failures here are counted, never raised."""
        metrics = self._metrics
        if metrics is not None:
            try:
                if found.findings:
                    metrics.flagged[scope_type]()
                else:
                    metrics.clean[scope_type]()
                if found.exhausted:
                    metrics.exhausted[scope_type].inc()
                for label, kind, action, _, cell in found.counts:
                    count = cell[0] if cell is not None else None
                    if count is None:
                        count = metrics.identifier_counts[label, kind, action]
                        if cell is not None:
                            cell[0] = count
                    count()
                if found.region is not None:
                    metrics.numbers[found.region]()
            except Exception:
                self._fault("metrics")
        if found.findings:
            try:
                self._events.flagged(found.findings, scope)
            except Exception:
                self._fault("logging")

    def _observe(self, seconds: float) -> None:
        if self._metrics is not None:
            try:
                self._metrics.overhead.observe(seconds)
            except Exception:
                self._fault("metrics")

    async def _nested(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An outer guard already inspected this scope: neither scan nor count again.

        If the outer guard only reported and this one strips, remove what the outer one reported
        and nothing else: this guard's own extra names or pseudonyms are not applied to a request
        it did not inspect. A reported header this guard finds too loses the lines it finds; one
        only the outer guard could find, by rules of its own (its extra names, its region's
        national numbers), loses every line of that name, as findings show names. Reported cookie
        pairs go too. Lines this guard keeps on purpose stay: its allow-list, and a trusted partner
        flow it would itself only report.
        """
        prior: tuple[Finding, ...] = scope[SCOPE_KEY]
        reported = {f.header for f in prior if f.action == "reported"}
        if self._strip and reported:
            try:
                found = self._inspect(scope)
            except Exception:
                self._fault("names")
                await _refuse(scope, receive, send)
                return
            headers = scope["headers"]
            own: dict[int, str] = {}  # this guard's action for each header line it flags
            named: set[str] = set()  # the headers of those lines
            if found is not None:
                for finding, count in zip(found.findings, found.counts, strict=True):
                    if count[3] is not None:
                        own[count[3]] = finding.action
                        named.add(finding.header)
            drop = {
                index
                for index, (name, _) in enumerate(headers)
                if (shown_name := self._shown(name)) in reported
                and (shown_name not in named or index in own)
                and own.get(index) != "reported"
                and fold(name.decode("latin-1")) not in self._allowed
            }
            cookies = any(header.startswith("cookie:") for header in reported)
            # One allowance for all the lines, as in `_inspect`: the same lines go whole.
            allowance = Allowance()
            kept = []
            for index, line in enumerate(headers):
                if index in drop:
                    continue
                if cookies and self._verdict(line[0]) is COOKIE:
                    value, _ = cookie_hits(line[1], allowance)
                    if value is None:
                        continue
                    line = (line[0], value)
                kept.append(line)
            if len(kept) != len(headers) or kept != headers:
                gone = {self._shown(headers[index][0]) for index in drop}
                if found is not None:
                    gone.update(f.header for f in found.findings if f.action != "reported")
                scope = {
                    **scope,
                    "headers": kept,
                    SCOPE_KEY: tuple(
                        f._replace(action="removed")
                        if f.action == "reported" and f.header in gone
                        else f
                        for f in prior
                    ),
                }
        await self.app(scope, receive, send)

    def _verdict(self, name: bytes) -> Verdict:
        verdict = self._verdicts.get(name)
        return self._names.classify(name) if verdict is None else verdict

    def _shown(self, name: bytes) -> str:
        """A header line's name as a finding shows it."""
        verdict = self._verdict(name)
        return verdict.shown if isinstance(verdict, Flag) else shown(fold(name.decode("latin-1")))

    def _start(self) -> None:
        """Once per process: on `lifespan.startup`, or on the first request without lifespan."""
        if self._ready:
            return
        self._ready = True
        config = self.config
        if not self._scan_off:
            phone.warm()
        logger = self._events.logger
        serving = False
        if config.metrics_port is not None:
            try:
                serving = start_listener(config.metrics_host, config.metrics_port, self._registry)
            except (OSError, ValueError) as exc:
                # Asked for a listener it cannot have (an address of another host, a name that
                # does not resolve, a port it may not bind): a configuration error, found only
                # now. Refuse, as for any other. (A name IDNA cannot encode is a ValueError.)
                self._ready = False
                self._refusal = (
                    f"PRIVACY_GUARD_METRICS_HOST={config.metrics_host} with "
                    f"PRIVACY_GUARD_METRICS_PORT={config.metrics_port}: cannot listen there "
                    f"({getattr(exc, 'strerror', None) or type(exc).__name__}); give an "
                    "address of this host and a port this process may bind"
                )
                logger.error(EVENT_CONFIG, error=self._refusal)
                return
        logger.info(
            EVENT_STARTED,
            version=__version__,
            mode=config.mode,
            scan_values=config.scan_values,
            catalog_version=CATALOG_VERSION,
            metrics=config.metrics,
            metrics_path=config.metrics_path,
            metrics_listener=(f"{config.metrics_host}:{config.metrics_port}" if serving else None),
            speedups=speedups.compiled is not None,
        )
        if self._names.allowed_identifying:
            logger.warning(
                EVENT_ALLOWED,
                headers=self._names.allowed_identifying,
                note="PRIVACY_GUARD_ALLOW_HEADERS lets these identifying catalog headers through",
            )
        try:
            outside = placement.outer_layers(sys._getframe(1), _GUARD_CALL, self)
        except Exception:  # a check of our own must not stop the application starting
            self._fault("placement")
            return
        if self._metrics is not None:
            try:
                self._metrics.layers_in_front.set(len(outside))
            except Exception:
                self._fault("metrics")
        if outside:
            logger.warning(
                EVENT_NOT_OUTERMOST,
                outside=outside,
                note="these run before the guard and receive the headers it removes: wrap the "
                "application (app = PrivacyGuard(app)) or serve it with `privacy-guard run`",
            )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start before the app does, or fail the server's start-up with the refusal's reason."""
        message = await receive()
        starting = message["type"] == "lifespan.startup"
        if starting and self._refusal is None:
            self._start()  # sets the refusal if its listener cannot start, and logs it
        elif starting:
            self._events.logger.error(EVENT_CONFIG, error=self._refusal)
        if self._refusal is not None:
            if starting:
                await send({"type": "lifespan.startup.failed", "message": self._refusal})
            return
        first: list[Message] = [message]

        async def receive_after_first() -> Message:
            return first.pop() if first else await receive()

        await self.app(scope, receive_after_first, send)

    async def _serve_check(self, scope: Scope, send: Send) -> None:
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", _ALLOW_GET)
            return
        accept = b"".join(v for k, v in scope["headers"] if k.lower() == b"accept").lower()
        want_json = b"application/json" in accept and b"text/html" not in accept
        body, content_type = checkpage.render(scope[SCOPE_KEY], want_json)
        headers = (
            (b"content-type", content_type),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'"),
            (b"referrer-policy", b"no-referrer"),
            (b"vary", b"accept"),
        )
        await _respond(
            send, 200, b"" if scope.get("method") == "HEAD" else body, headers, len(body)
        )

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", _ALLOW_GET)
            return
        try:
            body, content_type = exposition(self._registry)
        except Exception:
            self._fault("exposition")
            await _respond(send, 500, b"metrics unavailable\n")
            return
        headers = (
            (b"content-type", content_type.encode("latin-1")),
            (b"cache-control", b"no-store"),
        )
        await _respond(send, 200, b"" if method == "HEAD" else body, headers, len(body))

    def _fault(self, stage: str) -> None:
        """Count and log an internal failure by stage. The exception text is not logged: it could
        quote a header value."""
        if self._metrics is not None:
            with contextlib.suppress(Exception):  # nothing left to report it with
                self._metrics.errors[stage].inc()
        try:
            error = sys.exc_info()[0]
            self._events.logger.error(
                EVENT_ERROR, stage=stage, error=error.__name__ if error else None
            )
        except Exception:  # noqa: S110
            pass


# The guard's own `__call__`, as defined here: tools that patch middleware classes (sentry-sdk)
# replace the attribute, not this code object, which `_start` looks for on the stack.
_GUARD_CALL = PrivacyGuard.__call__.__code__


def _route(scope: Scope) -> str:
    """The path the app routes on: `path` without the server's `root_path`.

    ASGI servers put a mount prefix (`--root-path /api`) in both keys, or (older ones) in
    `root_path` alone; frameworks route on what is left, as this does. So a configured path
    means what the app's own routes mean, mounted or not.
    """
    path: str = scope.get("path", "")
    root = scope.get("root_path")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


def _replay(plan: _Plan, scope: Scope, marked: bool) -> _Inspection | None:
    """A plan applied to a request of its shape, or None if a value makes it inapplicable: a
    Cookie line or query string (`marked`) with a marker goes through the full inspection."""
    if marked:
        return None
    headers = scope["headers"]
    for index in plan.cookies:
        if suspicious(headers[index][1]):
            return None
    region = None if plan.number is None else calling_region(headers[plan.number][1])
    kept = None
    if plan.drop:
        kept = list(headers)
        for index in plan.drop:
            del kept[index]
    return _Inspection(kept, plan.findings, plan.counts, region, False)


def _built_by_framework() -> bool:
    """True when the caller is a framework's lazy middleware-stack builder (Starlette, FastAPI)."""
    frame = sys._getframe(2)
    return frame.f_code.co_name == "build_middleware_stack"


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        message = await receive()
        if message["type"] == "websocket.connect":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1011})
        return
    await _respond(send, 500, _REFUSED)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"text/plain; charset=utf-8"),),
    length: int | None = None,
) -> None:
    size = str(len(body) if length is None else length).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", size)],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
