"""The measured process of the memory suite: only the standard library before its stages.

python -m tests.benchmarks.memory_child REQUESTS    # prints one JSON object
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

SAMPLES = 10  # RSS samples over the request run


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(requests: int) -> None:
    """Runs in the measured process; prints one JSON object."""
    stages: dict[str, float] = {"interpreter": _rss_kib()}
    import starlette.applications
    import starlette.types  # noqa: F401

    stages["starlette imported (the app's baseline)"] = _rss_kib()
    begun = time.perf_counter()
    import structlog
    from prometheus_client import CollectorRegistry

    import guard

    imported_s = time.perf_counter() - begun
    stages["+ import guard"] = _rss_kib()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        pass

    protected = guard.PrivacyGuard(app, config=guard.GuardConfig(), registry=CollectorRegistry())
    stages["+ PrivacyGuard built"] = _rss_kib()

    def call(headers: list[tuple[bytes, bytes]]) -> None:
        coroutine = protected({"type": "http", "path": "/", "headers": headers}, receive, send)
        with contextlib.suppress(StopIteration):
            coroutine.send(None)

    begun = time.perf_counter()
    call([(b"host", b"example.test")])
    first_s = time.perf_counter() - begun
    stages["+ first request (phonenumbers metadata loaded)"] = _rss_kib()

    browser = [(b"host", b"example.test"), (b"user-agent", b"Mozilla/5.0 (Linux; Android 10)")]
    growth = []
    for i in range(requests):
        # Fictional numbers only: UK drama range by name, Australia's 491 570 006-159 by value.
        headers = [
            *browser,
            (b"x-msisdn", b"4477009%05d" % (i % 1000)),
            (b"x-up-calling-line-id", b"4477009%05d" % ((i * 7) % 1000)),
            (b"x-foo", b"+61 491 570 %03d" % (6 + i % 154)),
            (b"x-n-%d" % (i % 20000), b"%015d" % (i * 7919)),  # names beyond the name cache
        ]
        call(headers)
        if (i + 1) % (requests // SAMPLES) == 0:
            growth.append(_rss_kib())
    stages[f"+ {requests:,} requests with identifiers"] = _rss_kib()
    print(
        json.dumps(
            {
                "stages": stages,
                "growth": growth,
                "import_s": imported_s,
                "first_request_s": first_s,
                "version": guard.__version__ if hasattr(guard, "__version__") else None,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
