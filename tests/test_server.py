"""Real servers: uvicorn on 127.0.0.1 serving the guarded echo app, and refusing a bad config."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from support import BIN, Server, clean_env, free_port, serve
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

# Every number is fictional: UK drama numbers where the name decides, +61 491 570 0xx where the
# value rule must find it in a header nobody has heard of.
CARRIER_HEADERS = [
    ("x-up-calling-line-id", "447700900123"),
    ("x-msisdn", "447700900456"),
    ("X_MSISDN", "447700900789"),
    ("x-uidh", "T0RBd01EQXdNREF3MTIz"),
    ("x-acme-contact", "+61 491 570 006"),
]
BENIGN_HEADERS = [
    ("accept", "application/json"),
    ("x-request-id", "1718032456123"),
    ("x-forwarded-for", "203.0.113.7"),
]
# Forms in which a number could show up in an echo or a log line.
SECRETS = [
    "447700900123",
    "447700900456",
    "447700900789",
    "T0RBd01EQXdNREF3MTIz",
    "491 570 006",
    "491570006",
]
REMOVED = {"x-up-calling-line-id", "x-msisdn", "x_msisdn", "x-uidh", "x-acme-contact"}


def uvicorn(app: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


@pytest.fixture(scope="module")
def demo() -> Iterator[Server]:
    port = free_port()
    env = clean_env(PRIVACY_GUARD_METRICS_PATH="/metrics")
    with serve(uvicorn("guard.demo:app", port), port=port, env=env) as server:
        yield server


def assert_clean_echo(echo: dict[str, object]) -> None:
    headers = echo["headers"]
    assert isinstance(headers, list)
    names = {name.lower() for name, _ in headers}
    assert not names & REMOVED
    assert {name for name, _ in BENIGN_HEADERS} <= names
    text = json.dumps(echo)
    for secret in SECRETS:
        assert secret not in text
    assert len(echo["privacy_guard"]) == len(CARRIER_HEADERS)  # type: ignore[arg-type]


def test_http_echo_shows_no_carrier_header(demo: Server) -> None:
    response = httpx.get(f"{demo.url}/", headers=[*BENIGN_HEADERS, *CARRIER_HEADERS], timeout=10)

    assert response.status_code == 200
    assert_clean_echo(response.json())


def test_websocket_handshake_shows_no_carrier_header(demo: Server) -> None:
    url = f"ws://127.0.0.1:{demo.port}/ws"
    with connect(url, additional_headers=[*BENIGN_HEADERS, *CARRIER_HEADERS]) as websocket:
        echo = json.loads(websocket.recv(timeout=10))

    assert_clean_echo(echo)


def test_metrics_count_what_was_removed(demo: Server) -> None:
    httpx.get(f"{demo.url}/", headers=CARRIER_HEADERS, timeout=10)

    exposition = httpx.get(f"{demo.url}/metrics", timeout=10).text

    line = next(
        line
        for line in exposition.splitlines()
        if line.startswith("privacy_guard_identifiers_total{")
        and 'header="x-uidh"' in line
        and 'action="removed"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_server_output_holds_no_identifier(demo: Server) -> None:
    httpx.get(f"{demo.url}/", headers=CARRIER_HEADERS, timeout=10)
    # A number in the path reaches uvicorn's access log (not the guard's business), but the
    # guard's own events mask it.
    httpx.get(f"{demo.url}/u/447700900321", headers=CARRIER_HEADERS, timeout=10)
    time.sleep(0.5)  # let the server flush its log

    output = demo.output()

    guard_lines = [line for line in output.splitlines() if "privacy_guard" in line]
    assert guard_lines, "the guard logged nothing: this test would prove nothing"
    for secret in SECRETS:
        assert secret not in output
    assert not [line for line in guard_lines if "447700900321" in line]


@pytest.fixture(scope="module")
def httptools_demo() -> Iterator[Server]:
    port = free_port()
    argv = uvicorn("guard.demo:app", port, "--http", "httptools")
    with serve(argv, port=port, env=clean_env()) as server:
        yield server


def test_large_value_on_httptools(httptools_demo: Server) -> None:
    big = "a" * 65536
    digits = "1" * 65536
    # Value scanning stops once its byte budget is spent, so the number comes first here; the
    # catalog and name rules still hold after the budget (tests/test_middleware.py).
    headers = [*CARRIER_HEADERS, ("x-big", big), ("x-digits", digits), ("x-msisdn", "447700900123")]

    response = httpx.get(f"{httptools_demo.url}/", headers=headers, timeout=30)

    assert response.status_code == 200
    echo = dict(response.json()["headers"])
    assert echo["x-big"] == big
    assert echo["x-digits"] == digits
    assert not set(echo) & REMOVED
    assert len(response.json()["privacy_guard"]) == len(CARRIER_HEADERS) + 1


def test_thousand_headers_on_httptools(httptools_demo: Server) -> None:
    headers = [(f"x-field-{i}", f"{i:010d}") for i in range(1000)]
    headers[10] = ("x-msisdn", "447700900123")
    headers[990] = ("X_ACME_IMSI", "234150999999999")

    response = httpx.get(f"{httptools_demo.url}/", headers=headers, timeout=30)

    assert response.status_code == 200
    echoed = [tuple(line) for line in response.json()["headers"]]
    expected = [(k.lower(), v) for i, (k, v) in enumerate(headers) if i not in (10, 990)]
    assert [line for line in echoed if line[0].startswith("x-")] == expected
    assert "447700900123" not in response.text
    assert "234150999999999" not in response.text


# --- a bad environment never serves -------------------------------------------------------------

STARLETTE_ADD_MIDDLEWARE = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from guard import PrivacyGuard


async def home(request):
    return PlainTextResponse("served")


app = Starlette(routes=[Route("/", home)])
app.add_middleware(PrivacyGuard)
"""

WRAPPED_AT_IMPORT = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from guard import PrivacyGuard


async def home(request):
    return PlainTextResponse("served")


app = PrivacyGuard(Starlette(routes=[Route("/", home)]))
"""


def refused(argv: Sequence[str], port: int, env: dict[str, str]) -> tuple[int, str, list[int]]:
    """Run a server that should refuse to start: its exit code, output and statuses answered."""
    statuses: list[int] = []
    with serve(argv, port=port, env=env, wait=False) as server:
        deadline = time.monotonic() + 15
        while server.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                statuses.append(httpx.get(f"{server.url}/", timeout=1).status_code)
            time.sleep(0.1)
        code = server.process.poll()
        output = server.output()
    assert code is not None, f"still running after 15 s; answered {statuses}:\n{output}"
    return code, output, statuses


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("PRIVACY_GUARD_MODE", "bogus"),
        ("PRIVACY_GUARD_MOD", "strip"),  # a typo must not silently weaken the guard
    ],
)
def test_add_middleware_with_a_bad_environment_does_not_start(
    tmp_path: Path, variable: str, text: str
) -> None:
    (tmp_path / "badapp.py").write_text(textwrap.dedent(STARLETTE_ADD_MIDDLEWARE))
    port = free_port()
    argv = uvicorn("badapp:app", port, "--app-dir", str(tmp_path))

    code, output, statuses = refused(argv, port, clean_env(**{variable: text}))

    assert code != 0
    assert 200 not in statuses
    assert variable in output
    assert "served" not in output


def test_add_middleware_without_lifespan_refuses_every_request(tmp_path: Path) -> None:
    (tmp_path / "badapp.py").write_text(textwrap.dedent(STARLETTE_ADD_MIDDLEWARE))
    port = free_port()
    argv = uvicorn("badapp:app", port, "--app-dir", str(tmp_path), "--lifespan", "off")
    env = clean_env(PRIVACY_GUARD_MODE="bogus")

    with serve(argv, port=port, env=env) as server:
        responses = [
            httpx.get(f"{server.url}/", headers=CARRIER_HEADERS, timeout=10) for _ in range(3)
        ]

    assert {r.status_code for r in responses} == {500}
    assert all("served" not in r.text for r in responses)


def test_guard_built_at_import_with_a_bad_environment_does_not_start(tmp_path: Path) -> None:
    (tmp_path / "wrapped.py").write_text(textwrap.dedent(WRAPPED_AT_IMPORT))
    port = free_port()
    argv = uvicorn("wrapped:app", port, "--app-dir", str(tmp_path))

    code, output, statuses = refused(argv, port, clean_env(PRIVACY_GUARD_MODE="bogus"))

    assert code != 0
    assert statuses == []
    assert "PRIVACY_GUARD_MODE" in output


def test_demo_command_with_a_bad_environment_exits_2() -> None:
    port = free_port()
    result = subprocess.run(
        [str(BIN / "privacy-guard"), "demo", "--port", str(port)],
        env=clean_env(PRIVACY_GUARD_MODE="bogus"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "PRIVACY_GUARD_MODE" in result.stderr
