"""`PrivacyGuard`: the pure-ASGI middleware. The whole request path is in this file.

References:
    ASGI HTTP and WebSocket specification: https://asgi.readthedocs.io/en/latest/specs/www.html
    RFC 9110 §5.1 (field names are case-insensitive tokens).
"""

from __future__ import annotations

import contextlib
import sys
import time

from prometheus_client import REGISTRY, CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import phone
from .catalog import CATALOG_VERSION, shown
from .config import ConfigError, GuardConfig
from .detect import KEEP, SCAN, Budget, Flag, Names, calling_region, scan_value
from .events import (
    EVENT_ALLOWED,
    EVENT_CONFIG,
    EVENT_ERROR,
    EVENT_STARTED,
    Events,
    Finding,
)
from .metrics import OVERHEAD_SAMPLE, GuardMetrics, exposition, start_listener

__all__ = ["SCOPE_KEY", "PrivacyGuard"]

__version__ = "0.1.0"

SCOPE_KEY = "privacy_guard"
_Count = tuple[str, str, str, str | None, int]  # metric label, kind, action, region, line index
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
        self._names = Names(config.extra_headers, config.allow_headers)
        self._strip = config.mode == "strip"
        self._action = "removed" if self._strip else "reported"
        self._value_action = (
            "removed" if self._strip and config.scan_values == "strip" else "reported"
        )
        self._scan_off = config.scan_values == "off"
        self._region = config.default_region
        self._registry = REGISTRY if registry is None else registry
        self._metrics: GuardMetrics | None = None
        if config.metrics:
            self._metrics = GuardMetrics(
                self._registry,
                version=__version__,
                mode=config.mode,
                catalog_version=CATALOG_VERSION,
                actions={self._action, self._value_action},
                labels=self._names.labels,
            )
        self._metrics_path = config.metrics_path
        self._events = Events(debug=config.log_level == "debug")
        self._started = False
        self._tick = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            if scope_type == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self._refusal is not None:
            await _refuse(scope, receive, send)
            return
        if not self._started:
            self._start()
        if scope.get("path") == self._metrics_path and scope_type == "http":
            await self._serve_metrics(scope, send)
            return
        if SCOPE_KEY in scope:
            await self._nested(scope, receive, send)
            return

        self._tick += 1
        sampled = self._tick % OVERHEAD_SAMPLE == 0
        started = time.perf_counter() if sampled else 0.0
        headers = scope["headers"]
        try:
            kept, findings, counts, budget = self._inspect(headers)
        except Exception:
            # Fail closed: a request whose names could not be checked never reaches the app.
            self._fault("names")
            await _refuse(scope, receive, send)
            return

        if findings is None:
            scope = {**scope, SCOPE_KEY: ()}
        else:
            scope = {**scope, SCOPE_KEY: tuple(findings)}
            if kept is not None:
                scope["headers"] = kept
        self._record(scope, findings, counts, budget)
        if sampled and self._metrics is not None:
            self._metrics.overhead.observe(time.perf_counter() - started)
        await self.app(scope, receive, send)

    def _inspect(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[
        list[tuple[bytes, bytes]] | None,
        list[Finding] | None,
        list[_Count] | None,
        Budget | None,
    ]:
        """One pass over the header lines: what to drop, what was found, what to count."""
        verdicts = self._names.table
        findings: list[Finding] | None = None
        counts: list[_Count] | None = None
        drop: set[int] | None = None
        budget: Budget | None = None
        for index, (name, value) in enumerate(headers):
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = self._names.classify(name)
            if verdict is KEEP:
                continue
            if verdict is SCAN:
                if self._scan_off:
                    continue
                if budget is None:
                    budget = Budget(self.config.scan_budget, self.config.scan_bytes)
                elif budget.exhausted:
                    continue
                try:
                    hit = scan_value(value, budget, self._region)
                except Exception:
                    self._fault("values")  # a broken value check must not break the request
                    continue
                if hit is None:
                    continue
                flag = Flag(shown(name.decode("latin-1")), "other", hit.kind, "value")
                action, region = self._value_action, hit.region if hit.kind == "msisdn" else None
            else:
                assert isinstance(verdict, Flag)
                flag, action = verdict, self._action
                region = calling_region(value) if flag.kind == "msisdn" else None
            if findings is None:
                findings, counts = [], []
            assert counts is not None
            findings.append(Finding(flag.shown, flag.kind, action, flag.rule))
            counts.append((flag.label, flag.kind, action, region, index))
            if action == "removed":
                drop = {index} if drop is None else drop | {index}
        kept = None if drop is None else [h for i, h in enumerate(headers) if i not in drop]
        return kept, findings, counts, budget

    def _record(
        self,
        scope: Scope,
        findings: list[Finding] | None,
        counts: list[_Count] | None,
        budget: Budget | None,
    ) -> None:
        """Count and log what `_inspect` found. Failures here are counted, never raised."""
        metrics = self._metrics
        scope_type = scope["type"]
        if metrics is not None:
            try:
                metrics.requests[scope_type, "clean" if findings is None else "flagged"].inc()
                if budget is not None and budget.exhausted:
                    metrics.exhausted[scope_type].inc()
                for label, kind, action, region, _ in counts or ():
                    metrics.identifier(label, kind, action).inc()
                    if region is not None:
                        metrics.number(region).inc()
            except Exception:
                self._fault("metrics")
        if findings is not None:
            try:
                self._events.flagged(findings, scope)
            except Exception:
                self._fault("logging")

    async def _nested(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An outer guard already inspected this scope: neither scan nor count again.

        If the outer guard only reported and this one strips, remove what the outer one reported.
        """
        prior: tuple[Finding, ...] = scope[SCOPE_KEY]
        reported = {f.header for f in prior if f.action == "reported"}
        if self._strip and reported:
            headers = scope["headers"]
            try:
                _, findings, counts, _ = self._inspect(headers)
            except Exception:
                self._fault("names")
                await _refuse(scope, receive, send)
                return
            drop = {
                line
                for f, (_, _, _, _, line) in zip(findings or (), counts or (), strict=True)
                if f.header in reported
            }
            if drop:
                gone = {f.header for f in prior if f.action == "reported"}
                scope = {
                    **scope,
                    "headers": [h for i, h in enumerate(headers) if i not in drop],
                    SCOPE_KEY: tuple(
                        f._replace(action="removed") if f.header in gone else f for f in prior
                    ),
                }
        await self.app(scope, receive, send)

    def _start(self) -> None:
        """Once per process: on `lifespan.startup`, or on the first request without lifespan."""
        if self._started:
            return
        self._started = True
        config = self.config
        if not self._scan_off:
            phone.warm()
        serving = False
        if config.metrics_port is not None:
            serving = start_listener(config.metrics_host, config.metrics_port, self._registry)
        logger = self._events.logger
        logger.info(
            EVENT_STARTED,
            version=__version__,
            mode=config.mode,
            scan_values=config.scan_values,
            catalog_version=CATALOG_VERSION,
            metrics=config.metrics,
            metrics_path=config.metrics_path,
            metrics_listener=(f"{config.metrics_host}:{config.metrics_port}" if serving else None),
        )
        if self._names.allowed_identifying:
            logger.warning(
                EVENT_ALLOWED,
                headers=self._names.allowed_identifying,
                note="PRIVACY_GUARD_ALLOW_HEADERS lets these identifying catalog headers through",
            )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._refusal is not None:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._events.logger.error(EVENT_CONFIG, error=self._refusal)
                await send({"type": "lifespan.startup.failed", "message": self._refusal})
            return

        async def receive_and_start() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
            return message

        await self.app(scope, receive_and_start, send)

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            allow = ((b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD"))
            await _respond(send, 405, b"Method Not Allowed\n", allow)
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
