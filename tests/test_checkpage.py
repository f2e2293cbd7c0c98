"""The self-check page: names and kinds of the identifying headers a request arrived with.

Never a value, never cached, never the app's business; every client-supplied name escaped,
digit-masked and capped. Numbers are fictional (UK 447700900xxx: the name decides).
"""

from __future__ import annotations

import html
import json
import re
import sys
from typing import Any

import httpx
import pytest
from conftest import RecordingApp, call, http_scope, status_of
from prometheus_client import CollectorRegistry
from support import clean_env, free_port, serve

from guard import ConfigError, GuardConfig, PrivacyGuard

CHECK = "/privacy-check"
CARRIER = [
    (b"x-up-calling-line-id", b"447700900123"),
    (b"x-msisdn", b"447700900456"),
    (b"x-imsi", b"001010123456789"),
]
DIGITS = ("447700900123", "447700900456", "001010123456789", "900123", "900456")


def guard_for(**config: Any) -> tuple[PrivacyGuard, RecordingApp]:
    app = RecordingApp()
    config = {"check_path": CHECK} | config
    return PrivacyGuard(app, config=GuardConfig(**config), registry=CollectorRegistry()), app


def page(
    headers: list[tuple[bytes, bytes]],
    *,
    path: str = CHECK,
    method: str = "GET",
    query: bytes = b"",
    **config: Any,
) -> tuple[int | None, dict[bytes, bytes], bytes, RecordingApp]:
    guard, app = guard_for(**config)
    scope = http_scope(headers, path=path, method=method)
    scope["query_string"] = query
    sent = call(guard, scope)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status_of(sent), dict(start["headers"]), body, app


def text_of(body: bytes) -> str:
    """What a reader sees: the page without its tags."""
    return re.sub(r"<[^>]+>", " ", body.decode())


def rows(body: bytes) -> list[list[str]]:
    cells = re.findall(r"<tr><td>(.*?)</td></tr>", body.decode())
    return [re.split(r"</td><td>", re.sub(r"</?code>", "", row)) for row in cells]


# --- the page --------------------------------------------------------------------------------


def test_page_lists_names_and_kinds_never_values() -> None:
    status, headers, body, app = page([(b"accept", b"text/html"), *CARRIER])

    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"cache-control"] == b"no-store"
    assert int(headers[b"content-length"]) == len(body)
    assert app.scopes == [], "the app must not see the check path"
    assert rows(body) == [
        ["x-up-calling-line-id", "msisdn", "removed before the site saw it"],
        ["x-msisdn", "msisdn", "removed before the site saw it"],
        ["x-imsi", "imsi", "removed before the site saw it"],
    ]
    assert "3 identifiers" in text_of(body)
    for digits in DIGITS:
        assert digits not in body.decode()


def test_page_is_hardened() -> None:
    _, headers, body, _ = page(CARRIER)

    assert headers[b"x-content-type-options"] == b"nosniff"
    assert b"default-src 'none'" in headers[b"content-security-policy"]
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"vary"].lower() == b"accept"
    assert b"<script" not in body
    assert b'name="robots" content="noindex"' in body


def test_clean_request_gets_a_clean_verdict() -> None:
    status, _, body, app = page([(b"accept", b"text/html"), (b"user-agent", b"Mozilla/5.0")])

    assert status == 200
    assert app.scopes == []
    assert "no identifying headers" in text_of(body)
    assert rows(body) == []


@pytest.mark.parametrize(
    "accept",
    [
        b"application/json",
        b"application/json, */*;q=0.1",
        b"application/json; charset=utf-8",
        b"Application/JSON",  # media types are case-insensitive (RFC 9110 §8.3.1)
    ],
)
def test_json_when_asked(accept: bytes) -> None:
    status, headers, body, app = page([(b"accept", accept), *CARRIER])

    assert status == 200
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"
    assert app.scopes == []
    assert json.loads(body) == {
        "identifying_headers": 3,
        "findings": [
            {"header": name, "kind": kind, "action": "removed", "rule": "catalog"}
            for name, kind in [
                ("x-up-calling-line-id", "msisdn"), ("x-msisdn", "msisdn"), ("x-imsi", "imsi")
            ]
        ],
    }  # fmt: skip
    for digits in DIGITS:
        assert digits not in body.decode()


@pytest.mark.parametrize(
    "accept",
    [
        b"text/html,application/json",
        b"*/*",
        b"text/html",
        b"application/xml",
        b"Text/HTML, Application/JSON",
    ],
)
def test_html_otherwise(accept: bytes) -> None:
    _, headers, _, _ = page([(b"accept", accept), *CARRIER])

    assert headers[b"content-type"] == b"text/html; charset=utf-8"


def test_head_has_the_length_and_no_body() -> None:
    _, get_headers, get_body, _ = page(CARRIER)
    status, headers, body, app = page(CARRIER, method="HEAD")

    assert status == 200
    assert body == b""
    assert (
        headers[b"content-length"] == get_headers[b"content-length"] == str(len(get_body)).encode()
    )
    assert app.scopes == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_refused_without_the_app(method: str) -> None:
    status, headers, _, app = page(CARRIER, method=method)

    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"
    assert app.scopes == []


def test_report_mode_says_reported() -> None:
    _, _, body, _ = page(CARRIER, mode="report")

    assert {row[2] for row in rows(body)} == {"seen and left in place (reported only)"}


def test_pseudonym_says_replaced() -> None:
    _, _, body, _ = page(CARRIER, pseudonym_key=bytes(range(32)).hex())

    assert {row[2] for row in rows(body)} == {"replaced by a pseudonymous token"}


def test_cookie_and_query_findings_are_listed() -> None:
    headers = [(b"cookie", b"a=1; msisdn=447700900123")]

    _, _, body, _ = page(headers, query=b"imsi=001010123456789")

    listed = rows(body)
    assert [row[:2] for row in listed] == [["cookie:msisdn", "msisdn"], ["query:imsi", "imsi"]]
    for digits in DIGITS:
        assert digits not in body.decode()


def test_query_findings_in_strip_mode_do_not_claim_report_mode() -> None:
    # Query parameters are always only reported; the page must not tell the visitor that the
    # whole site runs in report mode when it strips.
    _, _, body, _ = page([], query=b"msisdn=447700900123")

    assert rows(body)[0][:2] == ["query:msisdn", "msisdn"]
    assert "report mode" not in rows(body)[0][2]


def test_forged_pseudonym_is_listed_as_removed() -> None:
    _, _, body, _ = page([(b"x-privacy-guard-pseudonym", b"v1.AAAAAAAAAAAAAAAAAAAAAA")])

    assert rows(body) == [
        ["x-privacy-guard-pseudonym", "subscriber_token", "removed before the site saw it"]
    ]
    assert b"AAAAAAAAAAAAAAAA" not in body


def verdict_of(body: bytes) -> tuple[str, str]:
    """The verdict's background colour and text, by the id a browser test finds it by."""
    markup = body.decode()
    colour = re.search(r"\.verdict\{[^}]*background:(#[0-9a-f]{6})\}", markup)
    text = re.search(r'<p class="verdict" id="verdict">([^<]*)</p>', markup)
    assert colour
    assert text
    return colour[1], text[1]


def test_verdict_colour_and_count_follow_the_findings() -> None:
    """A visitor reads the colour first: red with identifiers, green without, and the count."""
    one = verdict_of(page([CARRIER[0]])[2])
    none = verdict_of(page([(b"accept", b"text/html")])[2])

    assert one == (
        "#fde2e1",
        "Your request arrived with 1 identifier (headers, cookies or URL parameters).",
    )
    assert none == ("#e3f5e1", "Your request arrived with no identifying headers.")


def test_json_count_is_the_number_of_findings_even_for_a_repeated_name() -> None:
    """A gateway may send one header twice: each line is an identifier the visitor carried."""
    headers = [(b"x-msisdn", b"447700900123"), (b"x-msisdn", b"447700900456")]

    _, _, body, _ = page([*headers, (b"accept", b"application/json")])

    report = json.loads(body)
    assert report["identifying_headers"] == len(report["findings"]) == 2


# --- hostile names ---------------------------------------------------------------------------

HOSTILE = [
    # (header name, what the page shows)
    (b"x-<script>alert(1)</script>-msisdn", "x-&lt;script&gt;alert(#)&lt;/script&gt;-msisdn"),
    (b'x-"><img src=x onerror=1>-imsi', "x-&quot;&gt;&lt;img src=x onerror=#&gt;-imsi"),
    (b"x-447700900123-msisdn", "x-#-msisdn"),
    (b"x-msisdn\r\nset-cookie: a=1", "x-msisdnset-cookie: a=#"),
    (b"x-msisdn\x00\x1b[31m", "x-msisdn[#m"),
    (b"x-msisdn-" + b"7" * 8192, "x-msisdn-#"),
    (b"x-msisdn-" + b"a" * 8192, "x-msisdn-" + "a" * 54 + "…"),
    (b"x-msisdn-\xe9\xff", "x-msisdn-éÿ"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "shown"), HOSTILE)
def test_hostile_names_are_escaped_masked_and_capped(name: bytes, shown: str) -> None:
    _, _, body, _ = page([(name, b"447700900123")])

    markup = body.decode()
    assert rows(body)[0][0] == shown
    assert "<script" not in markup
    assert "<img" not in markup
    assert not set("\r\n\x00\x1b") & set(rows(body)[0][0])
    assert "447700900123" not in markup
    assert len(body) < 4096


@pytest.mark.parametrize(("name", "shown"), HOSTILE)
def test_hostile_names_in_json(name: bytes, shown: str) -> None:
    _, _, body, _ = page([(name, b"447700900123"), (b"accept", b"application/json")])

    assert b"447700900123" not in body
    assert len(body) < 4096
    (finding,) = json.loads(body)["findings"]
    assert finding["header"] == html.unescape(shown)  # JSON needs no HTML escaping, only masking


def test_hostile_cookie_and_query_names_are_escaped() -> None:
    headers = [(b"cookie", b"<b>msisdn447700900123</b>=1")]

    _, _, body, _ = page(headers, query=b"%3Cscript%3Emsisdn=1")

    markup = body.decode()
    assert "<b>" not in markup
    assert "<script" not in markup
    assert "447700900123" not in markup
    assert [row[0] for row in rows(body)] == [
        "cookie:&lt;b&gt;msisdn#&lt;/b&gt;",
        "query:&lt;script&gt;msisdn",
    ]


def test_many_names_stay_bounded() -> None:
    headers = [(f"x-msisdn-{i}".encode() + b"a" * 200, b"1") for i in range(500)]

    _, _, body, _ = page(headers)

    assert len(rows(body)) == 500
    assert len(body) < 500 * 300


# --- where it answers --------------------------------------------------------------------------


def test_off_by_default() -> None:
    app = RecordingApp()
    guard = PrivacyGuard(app, config=GuardConfig(), registry=CollectorRegistry())

    sent = call(guard, http_scope(CARRIER, path=CHECK))

    assert status_of(sent) == 204
    assert app.scope["path"] == CHECK
    assert app.scope["headers"] == []


@pytest.mark.parametrize("path", ["/", "/privacy-check/", "/privacy-check/x", "/privacy-checks"])
def test_other_paths_reach_the_app(path: str) -> None:
    status, _, _, app = page(CARRIER, path=path)

    assert status == 204
    assert app.scope["path"] == path


def test_websocket_on_the_check_path_reaches_the_app() -> None:
    guard, app = guard_for()

    call(
        guard,
        http_scope(CARRIER, path=CHECK, scope_type="websocket"),
        [{"type": "websocket.connect"}],
    )

    assert app.scope["type"] == "websocket"
    assert app.scope["headers"] == []


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PRIVACY_GUARD_CHECK_PATH": "privacy-check"}, "PRIVACY_GUARD_CHECK_PATH"),
        ({"PRIVACY_GUARD_CHECK_PATH": "/privacy check"}, "PRIVACY_GUARD_CHECK_PATH"),
        ({"PRIVACY_GUARD_CHECK_PATH": "/check?x=1"}, "PRIVACY_GUARD_CHECK_PATH"),
        (
            {"PRIVACY_GUARD_CHECK_PATH": "/metrics", "PRIVACY_GUARD_METRICS_PATH": "/metrics"},
            "PRIVACY_GUARD_CHECK_PATH",
        ),
    ],
)
def test_bad_check_paths(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ)

    assert caught.value.variable == variable


def test_empty_check_path_is_off() -> None:
    assert GuardConfig.from_env({"PRIVACY_GUARD_CHECK_PATH": " "}).check_path is None


# --- over a real server --------------------------------------------------------------------------


@pytest.mark.slow
def test_check_page_over_uvicorn() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    env = clean_env(PRIVACY_GUARD_CHECK_PATH=CHECK)
    carrier = {k.decode(): v.decode() for k, v in CARRIER}
    with serve(argv, port=port, env=env) as server:
        as_html = httpx.get(server.url + CHECK, headers=carrier, timeout=10)
        data = httpx.get(
            server.url + CHECK, headers=carrier | {"accept": "application/json"}, timeout=10
        )
        echo = httpx.get(server.url + "/", headers=carrier, timeout=10)
        output = server.output()

    assert as_html.status_code == 200
    assert as_html.headers["content-type"] == "text/html; charset=utf-8"
    assert as_html.headers["cache-control"] == "no-store"
    assert [row[:2] for row in rows(as_html.content)] == [
        ["x-up-calling-line-id", "msisdn"],
        ["x-msisdn", "msisdn"],
        ["x-imsi", "imsi"],
    ]
    assert data.headers["content-type"] == "application/json"
    assert [f["header"] for f in data.json()["findings"]] == [
        "x-up-calling-line-id",
        "x-msisdn",
        "x-imsi",
    ]
    assert len(echo.json()["privacy_guard"]) == 3, "the app still answers every other path"
    for digits in DIGITS:
        assert digits not in as_html.text
        assert digits not in data.text
        assert digits not in output


@pytest.mark.slow
def test_check_page_is_off_by_default_over_uvicorn() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    with serve(argv, port=port, env=clean_env()) as server:
        response = httpx.get(server.url + CHECK, headers={"x-msisdn": "447700900123"}, timeout=10)

    assert response.status_code == 404  # the demo app's own answer: the path reached it
    assert "identifying" not in response.text
