"""Load: 1,000 concurrent requests through a real uvicorn, every answer right and every counter
exact; a 200,000-request in-process soak with flat memory and no leaked tasks or files; and what
one hostile request can cost the guard."""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import sys
import time
import tracemalloc
from typing import Any

import httpx
import pytest
from fuzz.harness import call, guard_for
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import cookie_parser
from structlog.testing import capture_logs
from support import clean_env, free_port, serve
from websockets.asyncio.client import connect

from guard.catalog import CATALOG

pytestmark = pytest.mark.slow

# One request shape per traffic class: (headers, identifier lines as (label, kind), the region
# counted in privacy_guard_numbers_total: a catalog MSISDN by its calling code, a value-rule
# number by phonenumbers).
# Fictional numbers: UK drama numbers where the name decides, +61 491 570 xxx for the value rule.
TRAFFIC: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], str | None]] = {
    "clean": ([("accept-language", "en-GB"), ("x-request-source", "load")], [], None),
    "catalog": (
        [("x-up-calling-line-id", "447700900123"), ("X_VF_ACR", "QUNSLTQ0NzcwMDkw")],
        [
            ("x-up-calling-line-id", CATALOG["x-up-calling-line-id"].kind),
            ("x-vf-acr", CATALOG["x-vf-acr"].kind),
        ],
        "GB",
    ),
    "name rule": ([("x-acme-imsi", "234150999999999")], [("other", "imsi")], None),
    "value rule": ([("x-contact", "+61 491 570 006")], [("other", "msisdn")], "AU"),
}
CONCURRENT = 1000
WEBSOCKETS = 100  # of the 1,000: handshakes, the rest plain requests


def _scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("privacy_guard_") and sample.name.endswith("_total"):
                samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _delta(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    changed = {key: value - before.get(key, 0.0) for key, value in after.items()}
    return {key: value for key, value in changed.items() if value}


def _expected(plan: list[tuple[str, str]]) -> dict[Any, float]:
    counts: collections.Counter[Any] = collections.Counter()
    for scope_type, traffic in plan:
        _, lines, region = TRAFFIC[traffic]
        result = "flagged" if lines else "clean"
        counts["privacy_guard_requests_total", (("result", result), ("type", scope_type))] += 1
        for label, kind in lines:
            key = (("action", "removed"), ("header", label), ("kind", kind))
            counts["privacy_guard_identifiers_total", key] += 1
        if region:
            counts["privacy_guard_numbers_total", (("region", region),)] += 1
    return dict(counts)


async def _http(client: httpx.AsyncClient, number: int, traffic: str) -> None:
    headers, lines, _ = TRAFFIC[traffic]
    response = await client.get("/", headers=[*headers, ("x-request-id", f"req-{number}")])
    assert response.status_code == 200
    _check_echo(response.json(), number, headers, lines)


async def _websocket(url: str, number: int, traffic: str) -> None:
    headers, lines, _ = TRAFFIC[traffic]
    async with connect(url, additional_headers=[*headers, ("x-request-id", f"req-{number}")]) as ws:
        echo = json.loads(await asyncio.wait_for(ws.recv(), 30))
    _check_echo(echo, number, headers, lines)


def _check_echo(echo: dict[str, Any], number: int, sent: list[Any], lines: list[Any]) -> None:
    seen = {name.lower(): value for name, value in echo["headers"]}
    assert seen["x-request-id"] == f"req-{number}"  # this request's own answer
    assert len(echo["privacy_guard"]) == len(lines)
    for name, value in sent:
        if lines:
            assert name.lower() not in seen
            assert value not in json.dumps(echo)
        else:
            assert seen[name] == value


def test_a_thousand_concurrent_requests_are_all_right_and_counted_exactly():
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    argv += ["--backlog", "2048", "--log-level", "warning"]
    env = clean_env(PRIVACY_GUARD_METRICS_PATH="/metrics")
    classes = list(TRAFFIC)
    plan = [
        ("websocket" if n < WEBSOCKETS else "http", classes[n % len(classes)])
        for n in range(CONCURRENT)
    ]

    async def run(url: str) -> tuple[str, str, float]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            before = (await client.get("/metrics")).text
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    _websocket(f"ws://127.0.0.1:{port}/ws", n, traffic)
                    if scope_type == "websocket"
                    else _http(client, n, traffic)
                    for n, (scope_type, traffic) in enumerate(plan)
                )
            )
            elapsed = time.perf_counter() - started
            after = (await client.get("/metrics")).text
        return before, after, elapsed

    with serve(argv, port=port, env=env) as server:
        before, after, elapsed = asyncio.run(run(server.url))
        output = server.output()

    assert _delta(_scrape(before), _scrape(after)) == _expected(plan)
    assert "Traceback" not in output
    print(f"\n{CONCURRENT} concurrent requests ({WEBSOCKETS} websocket) in {elapsed:.2f} s")


# --- soak ---------------------------------------------------------------------------------------

SOAK = 200_000
WARM_UP = 40_000
GROWTH_BOUND = 256 * 1024  # bytes still held after warm-up: far below one byte per request


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_soak_of_200k_requests_holds_memory_tasks_and_files_flat():
    registry = CollectorRegistry()
    guard = guard_for(registry=registry, app=_Sink())
    base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    clean = [(b"host", b"example.test"), (b"accept", b"*/*"), (b"user-agent", b"soak/1.0")]
    shapes = [
        clean,
        clean,
        clean,
        [*clean, (b"x-up-calling-line-id", b"447700900123"), (b"x-msisdn", b"447700900456")],
        [*clean, (b"x-contact", b"+61491570006")],
        [*clean, (b"cookie", b"theme=dark; User-Identity-Forward-msisdn=447700900123")],
    ]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def soak() -> dict[str, Any]:
        tasks = len(asyncio.all_tasks())
        files = _open_files()
        for number in range(SOAK):
            if number == WARM_UP:
                gc.collect()
                tracemalloc.start()
                started = time.perf_counter()
            if number % 4 == 3:
                # Names never seen before (digits vary, so no two are alike): the guard's name
                # cache must stay bounded however many a client invents.
                headers = [*clean, (f"x-soak-{number}-note".encode(), b"hello")]
            else:
                headers = shapes[number % len(shapes)]
            await guard({**base, "headers": headers}, receive, send)
        elapsed = time.perf_counter() - started
        gc.collect()
        growth, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "growth": growth,
            "elapsed": elapsed,
            "tasks": (tasks, len(asyncio.all_tasks())),
            "files": (files, _open_files()),
        }

    with capture_logs() as events:
        result = asyncio.run(soak())

    total = registry.get_sample_value(
        "privacy_guard_requests_total", {"type": "http", "result": "clean"}
    ) + registry.get_sample_value(
        "privacy_guard_requests_total", {"type": "http", "result": "flagged"}
    )
    assert total == SOAK
    assert result["growth"] < GROWTH_BOUND, result
    assert result["tasks"][1] == result["tasks"][0], result
    assert result["files"][1] == result["files"][0], result
    assert len(events) < 50  # bounded volume: first occurrences only, not one per request
    rate = (SOAK - WARM_UP) / result["elapsed"]
    print(
        f"\nsoak: {SOAK} requests; after a {WARM_UP} warm-up, {rate:.0f} requests/s under "
        f"tracemalloc, {result['growth']} bytes still held, {len(events)} log events"
    )


class _Sink:
    """The cheapest app: takes the scope and answers nothing (the soak measures the guard)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


# --- hostile cost ---------------------------------------------------------------------------------

# One Cookie header of ~110 KB (uvicorn accepts it with h11 and httptools alike) made of pairs
# whose names the cookie rule flags, and the same number of pairs that it does not.
HOSTILE_COOKIE = b"; ".join(b"msisdn%d=1" % i for i in range(8000))
BENIGN_COOKIE = b"; ".join(b"c%d=1" % i for i in range(8000))
COST_BOUND = 5.0  # the guard may cost this many times what parsing the cookie costs the app


def _best_of(runs: int, work: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def test_a_hostile_cookie_costs_the_guard_no_more_than_parsing_it_costs_the_app():
    guard = guard_for()
    request = [(b"host", b"example.test"), (b"cookie", HOSTILE_COOKIE)]
    call(guard, request)  # warm

    guard_cost = _best_of(5, lambda: call(guard, request))
    parse_cost = _best_of(5, lambda: cookie_parser(HOSTILE_COOKIE.decode("latin-1")))
    benign_cost = _best_of(5, lambda: call(guard, [(b"cookie", BENIGN_COOKIE + b"; imsi=x")]))

    print(
        f"\n110 KB hostile cookie: guard {guard_cost * 1e3:.1f} ms, same cookie through "
        f"Starlette's cookie_parser {parse_cost * 1e3:.1f} ms, benign 8,000 pairs "
        f"{benign_cost * 1e3:.1f} ms"
    )
    assert guard_cost < COST_BOUND * parse_cost
