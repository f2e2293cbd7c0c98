"""A client that forges carrier headers cannot make the app see them, over a real server.

Enrichment needs cleartext HTTP, so on an HTTPS site these headers come from forgers: clients
that impersonate a carrier to abuse "log in by header" or carrier billing (public code forges
`x-vf-acr` plus `X-Forwarded-For` to sign phones up for premium offers). Kannel deletes a
client-sent copy of its MSISDN header before adding its own; the guard does the same for every
identifying name, in every spelling a server passes through.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import Server, clean_env, free_port, require_tool, serve
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

# Fictional numbers only (UK drama range where the name decides; +61 491 570 xxx where a value
# rule must decide).
FORGED = [
    ("x-up-calling-line-id", "447700900123"),
    ("x-vf-acr", "QUNSLTQ0NzcwMDkwMDEyMw"),
    ("x-msisdn", "447700900456"),
    ("X_MSISDN", "447700900789"),
    ("x.msisdn", "447700900321"),
    ("X-MSISDN", "447700900654"),
    ("x-privacy-guard-pseudonym", "v1.AAAAAAAAAAAAAAAAAAAAAA"),  # a forged token
    ("x-acme-billing-contact", "+61 491 570 006"),
]
ALONGSIDE = [("x-forwarded-for", "203.0.113.9"), ("accept", "application/json")]
SECRETS = [value for _, value in FORGED] + ["491570006", "QUNSLTQ0"]
FOLDED = {"x-up-calling-line-id", "x-vf-acr", "x-msisdn", "x-privacy-guard-pseudonym"}
# (HTTP implementation, websocket implementation): every one uvicorn offers is covered once.
SERVERS = [("h11", "websockets"), ("httptools", "wsproto"), ("h11", "websockets-sansio")]


@pytest.fixture(scope="module", params=SERVERS, ids=["-".join(s) for s in SERVERS])
def demo(request: pytest.FixtureRequest) -> Iterator[Server]:
    http, ws = request.param
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--http", http, "--ws", ws]
    with serve(argv, port=port, env=clean_env()) as server:
        yield server


def _folded(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def assert_nothing_forged_arrived(echo: dict[str, list[list[str]]], forged: int) -> None:
    names = {_folded(name) for name, _ in echo["headers"]}
    assert not names & FOLDED
    assert "x-acme-billing-contact" not in names
    assert {"x-forwarded-for", "accept"} <= names  # what was not forged arrived
    text = json.dumps(echo)
    for secret in SECRETS:
        assert secret not in text
    assert len(echo["privacy_guard"]) == forged


def test_forged_headers_never_reach_the_app_over_http(demo: Server) -> None:
    response = httpx.get(f"{demo.url}/", headers=[*ALONGSIDE, *FORGED], timeout=10)

    assert response.status_code == 200
    assert_nothing_forged_arrived(response.json(), len(FORGED))


def test_forged_headers_never_reach_the_app_in_a_websocket_handshake(demo: Server) -> None:
    with connect(f"ws://127.0.0.1:{demo.port}/ws", additional_headers=[*ALONGSIDE, *FORGED]) as ws:
        echo = json.loads(ws.recv(timeout=10))

    assert_nothing_forged_arrived(echo, len(FORGED))


def test_repeating_a_forged_header_does_not_get_one_copy_through(demo: Server) -> None:
    headers = [*ALONGSIDE, *([("x-msisdn", "447700900456")] * 50)]
    response = httpx.get(f"{demo.url}/", headers=headers, timeout=10)

    assert response.status_code == 200
    echo = response.json()
    assert "447700900456" not in response.text
    assert len(echo["privacy_guard"]) == 50


# Hand-written requests that bend HTTP/1.1: each must be either refused by the server or reach
# the app without a forged header. Notes: h11 accepts obs-fold and joins the continuation onto the
# previous line's value (RFC 9112 §5.2), so " X-Msisdn: 4477…" after `Accept` reaches the app as
# part of the Accept value — text the client typed into its own header, never a header line that
# code reading `x-msisdn` would trust. httptools refuses the same request with 400.
RAW = {
    "obs-fold continuation": b"X-Msisdn: 4477009\r\n 00123\r\n",
    "obs-fold onto a benign name": b"X-Note: hello\r\n X-Msisdn: 447700900123\r\n",
    "space before the colon": b"X-Msisdn : 447700900123\r\n",
    "tab before the colon": b"X-Msisdn\t: 447700900123\r\n",
    "leading space (continuation)": b" X-Msisdn: 447700900123\r\n",
    "mixed case and underscores": b"x_Up_Calling_Line_Id: 447700900123\r\n",
    "dots": b"X.Vf.Acr: 447700900123\r\n",
    "empty name": b": 447700900123\r\n",
    "NUL in the name": b"X-Msisdn\x00: 447700900123\r\n",
    "high byte in the name": b"X-Msisdn\xff: 447700900123\r\n",
    "bare LF line ending": b"X-Msisdn: 447700900123\n",
    "value with NUL": b"X-Msisdn: 447700\x00900123\r\n",
}


@pytest.mark.parametrize("lines", RAW.values(), ids=RAW.keys())
def test_bent_http_never_carries_a_forged_value_through(demo: Server, lines: bytes) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
        + lines
        + b"Connection: close\r\n\r\n"
    )
    status, body = _exchange(demo.port, request)

    assert status is not None, "the server neither answered nor refused"
    if status == 200:
        echo = json.loads(body)
        assert not {_folded(name) for name, _ in echo["headers"]} & FOLDED
        for name, value in echo["headers"]:
            if "447700900123" in value:  # only ever inside the value it was folded onto
                assert _folded(name) in ("accept", "x-note"), name
                assert not value.lstrip().startswith("447700900123")
    else:
        assert 400 <= status < 500, status  # refused as malformed, never a 5xx


def _exchange(port: int, request: bytes) -> tuple[int | None, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        return None, data
    return int(head.split(b" ", 2)[1]), body


# --- trusted partner flows ------------------------------------------------------------------------
# A carrier-billing partner trusts its carrier's gateway (192.0.2.0/24 here). The test client
# connects from 127.0.0.1, which uvicorn by default trusts as a proxy: X-Forwarded-For below is
# what a proxy on the same host would forward.
GATEWAY_ENV = {
    "PRIVACY_GUARD_TRUSTED_SOURCES": "192.0.2.0/24",
    "PRIVACY_GUARD_TRUSTED_PATHS": "/",
    "PRIVACY_GUARD_TRUSTED_HEADERS": "x-vf-acr",
}
FORWARDED = {
    # the forger's own claim, with the real address the proxy appended after it
    "forged gateway address, proxy appended the real one": ("192.0.2.10, 203.0.113.5", False),
    "no forwarding header: the peer is the proxy": (None, False),
    "a forged address that is not even the gateway's": ("198.51.100.7", False),
    # the proxy itself reports a gateway peer: the one case that must pass
    "the proxy reports the gateway as the peer": ("192.0.2.10", True),
}


@pytest.mark.parametrize(("forwarded", "passes"), FORWARDED.values(), ids=FORWARDED.keys())
def test_a_forged_forwarding_address_does_not_make_a_client_a_trusted_gateway(
    forwarded: str | None, passes: bool
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    headers = [("x-vf-acr", "QUNSLTQ0NzcwMDkwMDEyMw"), ("x-msisdn", "447700900123")]
    if forwarded is not None:
        headers.append(("x-forwarded-for", forwarded))
    with serve(argv, port=port, env=clean_env(**GATEWAY_ENV)) as server:
        echo = httpx.get(f"{server.url}/", headers=headers, timeout=10).json()

    names = {name for name, _ in echo["headers"]}
    assert ("x-vf-acr" in names) is passes
    assert "x-msisdn" not in names  # not a trusted header: removed even for the gateway


# --- behind nginx ---------------------------------------------------------------------------------
# nginx's defaults drop names with underscores (underscores_in_headers off) and, as invalid, names
# with dots (ignore_invalid_headers on): X_MSISDN and x.msisdn never reach an app behind it. The
# guard must not rely on that: with underscores allowed they arrive, and it removes them.
NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    underscores_in_headers {underscores};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@pytest.mark.parametrize("underscores", ["off", "on"])
def test_behind_nginx_forged_headers_are_gone_whatever_nginx_lets_through(
    tmp_path: Path, underscores: str
) -> None:
    nginx = require_tool("nginx")
    upstream, port = free_port(), free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(
        NGINX.format(tmp=tmp_path, port=port, upstream=upstream, underscores=underscores)
    )
    app = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(upstream)]
    proxy = [nginx, "-p", str(tmp_path), "-c", str(config)]
    with serve(app, port=upstream, env=clean_env()), serve(proxy, port=port) as front:
        response = httpx.get(front.url + "/", headers=[*ALONGSIDE, *FORGED], timeout=10)

    assert response.status_code == 200
    echo = response.json()
    names = {_folded(name) for name, _ in echo["headers"]}
    assert not names & FOLDED
    text = json.dumps(echo)
    for secret in SECRETS:
        assert secret not in text
    seen_by_guard = {f["header"] for f in echo["privacy_guard"]}
    # The guard saw the underscore spelling only when nginx let it through, and the dotted one
    # never (nginx drops invalid names either way).
    assert (len(echo["privacy_guard"]) == len(FORGED) - 1) is (underscores == "on")
    assert "x-msisdn" in seen_by_guard
