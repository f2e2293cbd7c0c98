"""The examples in examples/, each served live by a real server on 127.0.0.1.

Every test starts a server on a free port (killed by PID), sends one request with carrier headers
and one without, and asserts on what the app echoed back and on one scrape of /metrics before and
after: the carrier headers are gone, every other header is intact, and
`privacy_guard_identifiers_total` moved by exactly one per removed line.

The Starlette example also runs under a server matrix (uvicorn h11/httptools/zttp, hypercorn,
granian and daphne, over HTTP/1.1 and HTTP/2, cleartext and TLS) and takes websocket handshakes;
the Django example also runs under daphne, the server Django Channels documents. The gunicorn
example runs two workers whose counts one scrape must sum exactly, also across a worker restart.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import gunicorn.config
import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from support import BIN, ROOT, STRICT, Server, clean_env, free_port, require_tool, serve
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples"

# Fictional numbers: two UK drama-range numbers sent in catalog headers (the name decides), and an
# Australian drama-range number in a header the guard has never heard of (the value decides).
CARRIER = {
    "x-up-calling-line-id": "447700900123",
    "x-msisdn": "447700900456",
    "x-contact": "+61 491 570 006",
}
ORDINARY = {"x-request-id": "req-7f3a", "accept-language": "en-GB", "x-app-version": "4.2.1"}
REMOVED = {  # finding header -> metric label
    "x-up-calling-line-id": "x-up-calling-line-id",
    "x-msisdn": "x-msisdn",
    "x-contact": "other",
}
DIGITS = ("447700900123", "447700900456", "491570006", "491 570 006")


class Row(NamedTuple):
    """How to serve one app: argv (`{port}`, `{cert}`, `{key}` filled in), and how to reach it."""

    argv: tuple[str, ...]
    cwd: Path = EXAMPLES
    http_version: str = "HTTP/1.1"
    tls: bool = False
    notice: bool = False  # the app has the FastAPI example's /privacy route


def uvicorn(app: str, *options: str) -> tuple[str, ...]:
    return ("uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", *options)


def hypercorn(app: str, *options: str) -> tuple[str, ...]:
    return ("hypercorn", app, "--bind", "127.0.0.1:{port}", *options)


def granian(app: str, *options: str) -> tuple[str, ...]:
    address = ("--host", "127.0.0.1", "--port", "{port}")
    return ("granian", "--interface", "asgi", *address, *options, app)


def daphne(app: str, *options: str) -> tuple[str, ...]:
    # Daphne sends no lifespan events: the guard starts on the first request.
    return ("daphne", "-b", "127.0.0.1", "-p", "{port}", *options, app)


EXAMPLE_ROWS = [
    pytest.param(Row(uvicorn("starlette_app:app")), id="starlette"),
    pytest.param(Row(uvicorn("fastapi_app:app"), notice=True), id="fastapi-outermost"),
    pytest.param(Row(uvicorn("fastapi_app:app_add_middleware"), notice=True), id="fastapi-add"),
    pytest.param(Row(uvicorn("django_app.asgi:application", "--lifespan", "off")), id="django"),
    pytest.param(Row(daphne("django_app.asgi:application")), id="django-daphne"),  # Channels'
    pytest.param(Row(daphne("django_app.channels_asgi:application")), id="django-channels"),
    pytest.param(Row(uvicorn("litestar_app:app")), id="litestar"),
    pytest.param(Row(uvicorn("quart_app:app")), id="quart"),
    pytest.param(Row(hypercorn("quart_app:app")), id="quart-hypercorn"),  # Quart's own server
    pytest.param(Row(uvicorn("raw_asgi:app")), id="raw-asgi"),
    pytest.param(
        Row(
            ("privacy-guard", "run", "plain_app:app", "--host", "127.0.0.1", "--port", "{port}"),
            cwd=EXAMPLES / "zero_code",
        ),
        id="zero-code",
    ),
]

SERVER_ROWS = [
    pytest.param(Row(uvicorn("starlette_app:app", "--http", "h11")), id="uvicorn-h11"),
    pytest.param(Row(uvicorn("starlette_app:app", "--http", "httptools")), id="uvicorn-httptools"),
    pytest.param(Row(uvicorn("starlette_app:app", "--http", "zttp")), id="uvicorn-zttp"),
    pytest.param(
        Row(uvicorn("starlette_app:app", "--http", "zttp", "--http2"), http_version="HTTP/2"),
        id="uvicorn-zttp-h2c",
    ),
    pytest.param(Row(hypercorn("starlette_app:app")), id="hypercorn-http1"),
    pytest.param(Row(hypercorn("starlette_app:app"), http_version="HTTP/2"), id="hypercorn-h2c"),
    pytest.param(
        Row(
            hypercorn("starlette_app:app", "--certfile", "{cert}", "--keyfile", "{key}"),
            http_version="HTTP/2",
            tls=True,
        ),
        id="hypercorn-h2-tls",
    ),
    pytest.param(Row(granian("starlette_app:app")), id="granian-http1"),
    pytest.param(
        Row(granian("starlette_app:app", "--http", "2"), http_version="HTTP/2"), id="granian-h2c"
    ),
    pytest.param(Row(daphne("starlette_app:app")), id="daphne-http1"),
    pytest.param(
        Row(
            (
                *("daphne", "-e", "ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"),
                "starlette_app:app",
            ),
            http_version="HTTP/2",
            tls=True,
        ),
        id="daphne-h2-tls",
    ),
]

WEBSOCKET_ROWS = [
    pytest.param(Row(uvicorn("starlette_app:app", "--ws", "websockets")), id="uvicorn-websockets"),
    pytest.param(Row(uvicorn("starlette_app:app", "--ws", "wsproto")), id="uvicorn-wsproto"),
    pytest.param(Row(hypercorn("starlette_app:app")), id="hypercorn"),
    pytest.param(Row(granian("starlette_app:app")), id="granian"),
    pytest.param(Row(daphne("starlette_app:app")), id="daphne"),
    pytest.param(Row(daphne("django_app.channels_asgi:application")), id="django-channels"),
    pytest.param(Row(uvicorn("litestar_app:app")), id="litestar-uvicorn"),
    pytest.param(Row(uvicorn("quart_app:app")), id="quart-uvicorn"),
    pytest.param(Row(uvicorn("raw_asgi:app")), id="raw-asgi-uvicorn"),
]


# --- helpers ---


def require_module(name: str) -> None:
    """Skip (locally) or fail (GUARD_CI_STRICT=1) when an optional server package is missing."""
    if importlib.util.find_spec(name) is None:
        message = f"{name} is not installed"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (cert, key)."""
    openssl = require_tool("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def start(row: Row, certificate: tuple[Path, Path] | None = None, **env: str) -> Iterator[Server]:
    port = free_port()
    cert, key = certificate or (Path(), Path())
    argv = [part.format(port=port, cert=cert, key=key) for part in row.argv]
    argv[0] = str(BIN / argv[0])
    environ = clean_env(PRIVACY_GUARD_METRICS_PATH="/metrics", **env)
    with serve(argv, port=port, env=environ, cwd=row.cwd, timeout=60) as server:
        yield server


def client(row: Row, server: Server, cert: Path | None = None) -> httpx.Client:
    scheme = "https" if row.tls else "http"
    http2 = row.http_version == "HTTP/2"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cert) if cert else True
    return httpx.Client(
        base_url=f"{scheme}://127.0.0.1:{server.port}",
        http1=not http2 or row.tls,  # h2c: prior knowledge; TLS: ALPN picks h2
        http2=http2,
        verify=verify,
        timeout=20,
    )


def scrape(http: httpx.Client) -> dict[tuple[str, ...], float]:
    """The guard's request and identifier counters, from one scrape of /metrics."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    values: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "privacy_guard_identifiers_total":
                key = ("identifiers", labels["header"], labels["kind"], labels["action"])
                values[key] = sample.value
            elif sample.name == "privacy_guard_requests_total":
                values[("requests", labels["type"], labels["result"])] = sample.value
            elif sample.name == "privacy_guard_layers_in_front":
                values[("layers in front",)] = sample.value
    return values


def moved(
    before: dict[tuple[str, ...], float], after: dict[tuple[str, ...], float]
) -> dict[tuple[str, ...], float]:
    """What changed between two scrapes, and by how much."""
    changes = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in before.keys() | after.keys()}
    return {k: change for k, change in changes.items() if change}


def expected_moves(scope_type: str) -> dict[tuple[str, ...], float]:
    return {
        **{("identifiers", label, "msisdn", "removed"): 1.0 for label in REMOVED.values()},
        ("requests", scope_type, "flagged"): 1.0,
        ("requests", scope_type, "clean"): 1.0,
    }


def check_echo(echoed: dict[str, Any], *, flagged: bool) -> None:
    """The app saw every ordinary header, no carrier header, and the guard's findings."""
    headers = {name.lower(): value for name, value in echoed["headers"].items()}
    assert not CARRIER.keys() & headers.keys(), headers
    assert {k: headers.get(k) for k in ORDINARY} == ORDINARY
    findings = {f["header"]: (f["kind"], f["action"]) for f in echoed["privacy_guard"]}
    assert findings == (dict.fromkeys(REMOVED, ("msisdn", "removed")) if flagged else {})
    if "HTTP_X_MSISDN in request.META" in echoed:  # the Django example
        assert echoed["HTTP_X_MSISDN in request.META"] is False


def check_quiet(server: Server, *, outermost: bool = True) -> None:
    """Neither the server's nor the guard's log lines hold a number that was sent; and the guard
    found nothing in front of it (every example puts it where the README says)."""
    output = server.output()
    assert "privacy_guard.started" in output, output
    assert not [d for d in DIGITS if d in output], output
    assert ("privacy_guard.not_outermost" not in output) is outermost, output


def exchange(row: Row, server: Server, cert: Path | None = None) -> None:
    with client(row, server, cert) as http:
        before = scrape(http)
        assert before[("layers in front",)] == 0  # started, and outermost
        flagged = http.get("/", headers={**CARRIER, **ORDINARY})
        assert flagged.status_code == 200, flagged.text
        assert flagged.http_version == row.http_version
        check_echo(flagged.json(), flagged=True)
        clean = http.get("/", headers=ORDINARY)
        assert clean.status_code == 200, clean.text
        check_echo(clean.json(), flagged=False)
        assert moved(before, scrape(http)) == expected_moves("http")
        if row.notice:
            check_notice(http)
    check_quiet(server)


def check_notice(http: httpx.Client) -> None:
    notice = http.get("/privacy", headers={**CARRIER, **ORDINARY}).json()
    assert notice["removed"] == sorted(REMOVED)
    assert "3 identifying header(s) (msisdn)" in notice["notice"]
    assert "no identifying headers" in http.get("/privacy", headers=ORDINARY).json()["notice"]


# --- tests ---


@pytest.mark.parametrize("row", EXAMPLE_ROWS)
def test_example_removes_carrier_headers(row: Row) -> None:
    with start(row) as server:
        exchange(row, server)


@pytest.mark.parametrize("row", SERVER_ROWS)
def test_starlette_example_under_server(row: Row, request: pytest.FixtureRequest) -> None:
    if "zttp" in row.argv:
        require_module("zttp")
    cert = request.getfixturevalue("certificate") if row.tls else None
    with start(row, cert) as server:
        exchange(row, server, cert[0] if cert else None)


@pytest.mark.parametrize("row", WEBSOCKET_ROWS)
def test_websocket_handshake_removes_carrier_headers(row: Row) -> None:
    with start(row) as server, client(row, server) as http:
        before = scrape(http)
        url = f"ws://127.0.0.1:{server.port}/ws"
        with connect(url, additional_headers={**CARRIER, **ORDINARY}, open_timeout=20) as ws:
            check_echo(json.loads(ws.recv(timeout=20)), flagged=True)
        with connect(url, additional_headers=ORDINARY, open_timeout=20) as ws:
            check_echo(json.loads(ws.recv(timeout=20)), flagged=False)
        assert moved(before, scrape(http)) == expected_moves("websocket")
    check_quiet(server)


def test_litestar_route_level_guard_misses_what_routing_rejects() -> None:
    """`Litestar(middleware=[PrivacyGuard])` guards routed requests only: no /metrics, no 404s.

    Its counts are read from the guard's separate metrics listener, since its path never answers.
    """
    row = Row(uvicorn("litestar_app:route_level_app"))
    listener = free_port()
    with (
        start(row, PRIVACY_GUARD_METRICS_PORT=str(listener)) as server,
        client(row, server) as http,
    ):
        check_echo(http.get("/", headers={**CARRIER, **ORDINARY}).json(), flagged=True)
        with httpx.Client(base_url=f"http://127.0.0.1:{listener}", timeout=20) as metrics:
            before = scrape(metrics)
            assert before[("requests", "http", "flagged")] == 1
            assert before[("layers in front",)] == 3  # Litestar's router, exceptions, app
            assert http.get("/metrics").status_code == 404  # the guard never sees this path
            assert http.get("/nowhere", headers={**CARRIER, **ORDINARY}).status_code == 404
            assert moved(before, scrape(metrics)) == {}  # nor this request
    # The guard says so itself, naming Litestar's layers in front of it.
    check_quiet(server, outermost=False)
    assert "litestar." in server.output().split("privacy_guard.not_outermost", 1)[1]


# --- gunicorn: several workers, one scrape ---

GUNICORN_WORKERS = 2
# gunicorn ≥ 27 opens a control socket under ~/.gunicorn/, shared by every gunicorn on the host.
NO_CONTROL_SOCKET = tuple(
    s.cli[0] for s in gunicorn.config.KNOWN_SETTINGS if s.name == "control_socket_disable"
)


def worker_counts(directory: Path) -> dict[int, float]:
    """x-msisdn removals per worker PID, read from each worker's multiprocess file."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "privacy_guard_identifiers_total" and labels["header"] == "x-msisdn":
                counts[pid] = counts.get(pid, 0.0) + value
    return {pid: n for pid, n in counts.items() if n}


def flagged_total(url: str) -> tuple[float, float]:
    """(x-msisdn removals, flagged requests) from one scrape, on a new connection."""
    with httpx.Client(base_url=url, timeout=20) as http:
        values = scrape(http)
    return (
        values[("identifiers", "x-msisdn", "msisdn", "removed")],
        values[("requests", "http", "flagged")],
    )


def workers_of(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def wait_until(condition: Callable[[], bool], server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


def flagged_request(url: str) -> int:
    with httpx.Client(base_url=url, timeout=20) as http:  # a new connection each time
        response = http.get("/", headers={**CARRIER, **ORDINARY})
    check_echo(response.json(), flagged=True)
    return response.status_code


def test_gunicorn_workers_share_one_metrics_scrape(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")  # left by an earlier run: must be wiped
    port = free_port()
    argv = [
        str(BIN / "gunicorn"),
        *("--config", "gunicorn/gunicorn.conf.py", "--workers", str(GUNICORN_WORKERS)),
        *("--bind", f"127.0.0.1:{port}", *NO_CONTROL_SOCKET, "--access-logfile", "-"),
        "starlette_app:app",
    ]
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc))  # the config sets METRICS_PATH
    with serve(argv, port=port, env=env, cwd=EXAMPLES, timeout=60) as server:
        master = server.process.pid
        wait_until(lambda: len(list(multiproc.glob("counter_*.db"))) == GUNICORN_WORKERS, server)
        assert not (multiproc / "counter_1.db").exists()

        # Flagged requests in parallel until both workers have served some: from then on a
        # scrape can only be exact if it sums both workers' files.
        sent = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while sent < 16 or len(worker_counts(multiproc)) < GUNICORN_WORKERS:
                assert sent < 400, f"one worker took every request: {worker_counts(multiproc)}"
                assert set(pool.map(flagged_request, [server.url] * 8)) == {200}
                sent += 8
        assert sum(worker_counts(multiproc).values()) == sent
        for _ in range(6):  # any worker may answer a scrape; each must see every worker
            assert flagged_total(server.url) == (sent, sent)

        # A worker that dies takes nothing with it: child_exit marks it dead, its counts stay.
        victim = min(workers_of(master))
        os.kill(victim, signal.SIGTERM)
        marked = f"worker {victim} exited: marked dead for prometheus multiprocess"
        wait_until(lambda: marked in server.output(), server)
        wait_until(lambda: len(workers_of(master) - {victim}) == GUNICORN_WORKERS, server)
        wait_until(lambda: len(list(multiproc.glob("counter_*.db"))) > GUNICORN_WORKERS, server)
        for _ in range(4):
            assert flagged_total(server.url) == (sent, sent)
        # The access log keeps the query string: the config's worker hook redacts it.
        with httpx.Client(base_url=server.url, timeout=20) as http:
            assert http.get("/", params={"msisdn": "61491570006"}).status_code == 200
        wait_until(lambda: "GET /?msisdn=[msisdn] HTTP/1.1" in server.output(), server)
    check_quiet(server)
