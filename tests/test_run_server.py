"""`privacy-guard run` with a real uvicorn: nothing the process writes holds an identifier.

The app below logs everything it receives — its headers and query string through structlog and
the stdlib, the raw ASGI header list, and an exception that quotes the query — the way a careless
app would. Requests carry identifiers in carrier headers, in a cookie, in an unknown header (only
the value rule knows it) and in the query string. In report mode the guard lets the headers
through, so the app's own log lines have to be redacted too.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from support import BIN, Server, clean_env, free_port, serve

APP = """\
import logging

import structlog

log = structlog.get_logger("leakyapp")
std = logging.getLogger("leakyapp.std")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    query = scope["query_string"].decode("latin-1")
    log.info("request", headers=headers, query=query, path=scope["path"])
    std.info("headers %s query %s", headers, query)
    std.warning("raw header list %r", scope["headers"])
    if scope["path"] == "/boom":
        raise ValueError("cannot bill " + query)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""

CARRIER = {
    "X-Up-Calling-Line-Id": "447700900123",
    "X-Nokia-Msisdn": "447700900124",
    "X-Anything": "+61 491 570 007",  # an unknown header: only the value rule knows it
    "Cookie": "theme=dark; x-msisdn=447700900125",
}
# The query string as a server's access log keeps it: encoded and bracketed names, numbers behind
# encoded separators (`%20`, `+`, `%2C`, `%3D`).
ENCODED = (
    "/pay?ms%69sdn=447700900126&im%65isv=4901542032375101&x%2Dmsisdn=447700900127"
    "&subscriber[msisdn]=447700900128&to=61%20491%20570%20010&cb=+61+491+570+011"
    "&list=61491570012%2C61491570013&next=%2Fpay%3Fto%3D61491570014"
)
ENCODED_REDACTED = (
    "/pay?ms%69sdn=[msisdn]&im%65isv=[imei]&x%2Dmsisdn=[msisdn]"
    "&subscriber[msisdn]=[msisdn]&to=[msisdn]&cb=[msisdn]"
    "&list=[msisdn]&next=[msisdn]"
)
# The digits of every identifier sent, and their national parts.
DIGITS = [
    "61491570006",
    "61491570007",
    "61491570008",
    "447700900123",
    "447700900124",
    "447700900125",
    "447700900126",
    "447700900127",
    "447700900128",
    "4901542032375101",
    "61491570010",
    "61491570011",
    "61491570012",
    "61491570013",
    "61491570014",
    "61491570015",
    "61491570016",
    "447700900129",
    "447700900130",
    "447700900131",
]


def wait_for(server: Server, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in:\n{server.output()}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "log_format", "workers"),
    [("strip", "json", 1), ("report", "json", 1), ("report", "console", 1), ("strip", "json", 2)],
)
def test_nothing_the_server_writes_holds_an_identifier(
    tmp_path: Path, mode: str, log_format: str, workers: int
) -> None:
    (tmp_path / "leakyapp.py").write_text(APP)
    port = free_port()
    env = clean_env(PRIVACY_GUARD_MODE=mode, PRIVACY_GUARD_LOG_FORMAT=log_format)
    argv = [str(BIN / "privacy-guard"), "run", "leakyapp:app", "--port", str(port)]
    argv += ["--workers", str(workers)]
    with serve(argv, port=port, env=env, cwd=tmp_path) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            paid = client.get("/pay?msisdn=61491570006&amount=4.99", headers=CARRIER)
            failed = client.get("/boom?to=%2B61491570008", headers=CARRIER)
            encoded = client.get(ENCODED)
            client.get("/u/%4061491570015")  # a number in the path, after an escape of digits
            client.get("/search/61 491 570 016")  # spaces in the path: logged as %20
            # uvicorn logs `:`, `;` and `=` in a path escaped; GraphQL variables in a query
            client.get("/subscribers/msisdn:447700900129")
            client.get("/subscribers;x-msisdn=447700900130")
            client.get('/graphql?variables={"msisdn":"447700900131"}')
            healthy = client.get("/health")
        statuses = (paid.status_code, failed.status_code, encoded.status_code, healthy.status_code)
        assert statuses == (200, 500, 200, 200)
        wait_for(server, "GET /health HTTP/1.1")
    output = server.output()

    # The lines are there, redacted: the access log, the app's own logs, the traceback.
    assert "GET /pay?msisdn=[msisdn]&amount=4.99 HTTP/1.1" in output
    assert "GET /boom?to=[msisdn] HTTP/1.1" in output
    assert "cannot bill to=[msisdn]" in output
    assert f"GET {ENCODED_REDACTED} HTTP/1.1" in output
    assert "GET /u/%40[msisdn] HTTP/1.1" in output
    assert "GET /search/[msisdn] HTTP/1.1" in output
    assert "GET /subscribers/msisdn%3A[msisdn] HTTP/1.1" in output
    assert "GET /subscribers%3Bx-msisdn%3D[msisdn] HTTP/1.1" in output
    assert "GET /graphql?variables=" in output
    assert "privacy_guard.identifiers_found" in output
    if mode == "report":
        # The guard let the headers through: the app logged them, and the logs hid them.
        assert re.search(r"""["']x-up-calling-line-id["']: ["']\[msisdn\]""", output)
        assert re.search(r"""["']x-anything["']: ["']\[msisdn\]""", output)
    # … and nothing anywhere holds the digits, however they were written (or percent-encoded).
    squeezed = re.sub(r"[\s+\-]", "", output)
    unescaped = re.sub(r"%[0-9A-Fa-f]{2}|[\s+\-]", "", output)
    for digits in DIGITS:
        for text in (squeezed, unescaped):
            assert digits not in text, digits
            assert digits[-9:] not in text, digits


@pytest.mark.slow
def test_run_serves_an_app_that_already_is_a_guard(tmp_path: Path) -> None:
    (tmp_path / "guarded.py").write_text(
        "from guard import PrivacyGuard\n"
        "async def echo(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    names = b','.join(k for k, _ in scope['headers'])\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': names})\n"
        "app = PrivacyGuard(echo)\n"
    )
    port = free_port()
    argv = [str(BIN / "privacy-guard"), "run", "guarded:app", "--port", str(port)]
    with serve(argv, port=port, env=clean_env(), cwd=tmp_path) as server:
        response = httpx.get(
            f"{server.url}/", headers={"x-msisdn": "447700900123"}, trust_env=False
        )
        assert response.status_code == 200
        assert b"x-msisdn" not in response.content
        assert b"host" in response.content
        output = wait_for(server, "privacy_guard.identifiers_found")
    # One guard, not two: the finding is logged once.
    assert output.count("privacy_guard.identifiers_found") == 1


DAPHNE_APP = """\
from guard import PrivacyGuard
from guard.logs import configure_logging

configure_logging()


async def ok(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


app = PrivacyGuard(ok)
"""


@pytest.mark.slow
def test_daphnes_access_log_is_redacted_too(tmp_path: Path) -> None:
    # daphne writes its access log to standard output itself, not through `logging`, at its
    # default verbosity: `configure_logging()` in the app module must reach it all the same.
    (tmp_path / "daphneapp.py").write_text(DAPHNE_APP)
    port = free_port()
    argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "daphneapp:app"]
    with serve(argv, port=port, env=clean_env(), cwd=tmp_path) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            assert client.get("/pay?msisdn=447700900123&amount=4.99").status_code == 200
            assert client.get("/callback/61491570006").status_code == 200
            assert client.get("/health").status_code == 200
        output = wait_for(server, '"GET /health"')
    assert '"GET /pay?msisdn=[msisdn]&amount=4.99" 200' in output
    assert '"GET /callback/[msisdn]" 200' in output
    assert "447700900123" not in output
    assert "61491570006" not in output
