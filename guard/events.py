"""The guard's own log events: names and kinds only, and bounded in volume.

A carrier that injects on every request must not turn into a log line per request. At info the
guard logs the first occurrence of each (header, kind) per interval and then one summary per
interval with the counts; every flagged request is logged only when the operator asks for debug.
No event ever carries a header value.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from .detect import Finding

__all__ = ["EVENT_FOUND", "EVENT_STARTED", "EVENT_SUMMARY", "Events", "Finding", "safe_path"]

EVENT_STARTED = "privacy_guard.started"
EVENT_FOUND = "privacy_guard.identifiers_found"
EVENT_SUMMARY = "privacy_guard.summary"
EVENT_ALLOWED = "privacy_guard.identifying_headers_allowed"
EVENT_ERROR = "privacy_guard.error"
EVENT_REFUSED = "privacy_guard.request_refused"
EVENT_CONFIG = "privacy_guard.config_error"
EVENT_NOT_OUTERMOST = "privacy_guard.not_outermost"

# Six or more digits, also split by up to three characters a number is written with (spaces,
# hyphens, dots, underscores, commas, slashes, plus signs, or any `%XX` escape): over-masking an id
# in a log line costs nothing. The path is cut to 200 characters first.
_PATH_DIGITS = re.compile(r"(?:\+|%2[Bb])?[0-9](?:(?:[ .\-_,/+]|%[0-9A-Fa-f]{2}){0,3}[0-9]){5,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_KEYS = 256  # distinct findings counted one by one per interval


def safe_path(path: object) -> str:
    """A request path fit for a log line: long digit runs masked, control bytes dropped."""
    text = _CONTROL.sub("", str(path))[:200]
    return _PATH_DIGITS.sub("#", text)


class Events:
    INTERVAL = 60.0

    def __init__(self, *, debug: bool, interval: float | None = None) -> None:
        self.logger = structlog.get_logger("privacy_guard")
        self._debug = debug
        self._interval = self.INTERVAL if interval is None else interval
        self._window = time.monotonic()
        self._requests = 0
        self._counts: dict[Finding, int] = {}  # this interval's, at most _MAX_KEYS of them
        self._overflow = 0  # findings beyond those
        self._last: tuple[Finding, ...] = ()  # the last flagged request's findings, counted
        self._repeats = 0  # later requests with exactly those findings, not yet counted

    def flagged(self, findings: Sequence[Finding], scope: Mapping[str, Any]) -> None:
        now = time.monotonic()
        if now - self._window >= self._interval:
            self.flush(now)
        self._requests += 1
        if findings == self._last and not self._debug:
            # A carrier sends the same headers on every request: count the run, add it up later.
            # Equal tuples of the same bound findings compare by identity, without hashing.
            self._repeats += 1
            return
        self._settle()
        self._last = tuple(findings)
        counts = self._counts
        first = []
        for finding in findings:
            seen = counts.get(finding)
            if seen is not None:
                counts[finding] = seen + 1
            elif len(counts) < _MAX_KEYS:
                counts[finding] = 1
                first.append(finding)
            else:
                self._overflow += 1
        if not (self._debug or first):
            return
        context = {
            "type": scope["type"],
            "method": scope.get("method", "GET"),
            "path": safe_path(scope.get("path", "")),
        }
        if self._debug:
            self.logger.debug(
                EVENT_FOUND, findings=[f._asdict() for f in findings], first=bool(first), **context
            )
        else:
            self.logger.info(
                EVENT_FOUND,
                findings=[f._asdict() for f in first],
                note=f"first in this {self._interval:.0f}s interval; later ones go to the summary",
                **context,
            )

    def _settle(self) -> None:
        """Add the run of requests that repeated the last findings to the interval's counts."""
        if self._repeats:
            counts = self._counts
            for finding in self._last:
                if finding in counts:
                    counts[finding] += self._repeats
                else:  # it did not fit under _MAX_KEYS the first time either
                    self._overflow += self._repeats
            self._repeats = 0

    def flush(self, now: float | None = None) -> None:
        """Log the interval's counts, if anything was found, and start a new interval."""
        now = time.monotonic() if now is None else now
        self._settle()
        if self._requests:
            self.logger.info(
                EVENT_SUMMARY,
                interval_s=round(now - self._window, 1),
                requests=self._requests,
                identifiers=[
                    {"header": f.header, "kind": f.kind, "action": f.action, "count": n}
                    for f, n in sorted(self._counts.items(), key=lambda item: -item[1])
                ],
                more_identifiers=self._overflow,
            )
        self._window = now
        self._requests = 0
        self._overflow = 0
        self._counts.clear()
        self._last = ()  # the next interval logs its first occurrences again
