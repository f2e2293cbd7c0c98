"""Header names are client bytes: a number inside a name, CR/LF and control bytes, HTML, 8 KiB of
anything. None of it reaches a finding, a log line, a metric label or the self-check page
unmasked or unescaped."""

from __future__ import annotations

import html
import json
import re
import sys
from urllib.parse import unquote

import httpx
import pytest
import structlog
from fuzz.harness import call, guard_for, safe_shown
from prometheus_client import CollectorRegistry, generate_latest
from support import clean_env, free_port, serve

from guard import GuardConfig

# (raw name, value, must be flagged). Numbers are fictional: UK drama numbers inside names, and
# Australia's +61 491 570 xxx where a value rule has to find a number phonenumbers accepts.
HOSTILE = {
    # a number inside the name
    "number in a name-rule name": (b"x-447700900123-msisdn", b"1", True),
    "a name that is a number": (b"x-61491570006", b"+61491570157", True),
    "a number-name, benign value": (b"x-61491570006", b"hello", False),
    "number in an IMSI-named header": (b"X_IMSI_234150999999999", b"x", True),
    # CR/LF and control bytes: log injection and terminal escapes
    "CR/LF inside the name": (b"x-msisdn\r\nx-injected: 447700900123", b"1", True),
    "LF and a fake log line": (b"x-msisdn\n2026-01-01 [info] forged=447700900123", b"1", True),
    "ANSI escape": (b"x-\x1b[31m447700900123\x1b[0m-msisdn", b"1", True),
    "NUL and DEL": (b"x-\x00msisdn\x7f447700900123", b"1", True),
    "C1 controls": (b"x-\x85\x9bmsisdn-447700900123", b"1", True),
    # HTML
    "script tag": (b"<script>alert(447700900123)</script>-msisdn", b"1", True),
    "attribute breakout": (b'x-msisdn"><img src=x onerror=alert(1)>', b"1", True),
    "HTML with a value-rule hit": (b"<b>x-contact</b>", b"+61491570006", True),
    # 8 KiB
    "8 KiB name-rule name": (b"x-msisdn-" + b"a" * 8192, b"1", True),
    "8 KiB of digits": (b"x-imsi-" + b"7" * 8192, b"1", True),
    "8 KiB unknown name, number value": (b"x-" + b"q" * 8192, b"+61491570006", True),
}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _numbers(name: bytes) -> list[str]:
    """Digit runs of a name: four digits are already too many to show."""
    return re.findall(r"[0-9]{4,}", name.decode("latin-1"))


def _render(events: list[dict[str, object]]) -> list[str]:
    """The events as an operator's log would show them: JSON lines and console lines."""
    json_renderer = structlog.processors.JSONRenderer()
    console = structlog.dev.ConsoleRenderer(colors=False)
    lines = []
    for event in events:
        lines.append(str(json_renderer(None, "info", dict(event))))
        lines.append(str(console(None, "info", dict(event))))
    return lines


@pytest.mark.parametrize(("name", "value", "flagged"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_name_is_shown_only_masked(name, value, flagged):
    registry = CollectorRegistry()
    outcome = call(guard_for(registry=registry), [(name, value), (b"accept", b"*/*")])

    assert outcome.scope is not None
    findings = outcome.scope["privacy_guard"]
    assert len(findings) == int(flagged)
    for finding in findings:
        assert safe_shown(finding.header)  # digits masked, control bytes gone, <= 64 characters
    for line in _render(outcome.events):
        assert "\n" not in line
        assert "\r" not in line
        assert not CONTROL.search(line)
        assert not any(number in line for number in _numbers(name))
        assert "a" * 100 not in line
        assert "q" * 100 not in line
    # Series without their sample values: those are counts and Unix timestamps (`_created`),
    # whose digits hold any four-digit run sooner or later (2026 did, in a `_created` value).
    exposition = "\n".join(
        line if line.startswith("#") else line.rsplit(" ", 1)[0]
        for line in generate_latest(registry).decode().splitlines()
    )
    assert not any(number in exposition for number in _numbers(name))
    assert "<" not in exposition
    assert "injected" not in exposition
    labels = set(re.findall(r'header="([^"]*)"', exposition))
    assert labels <= {"other"} | {f.header for f in findings if "#" not in f.header}


@pytest.mark.parametrize(("name", "value", "flagged"), HOSTILE.values(), ids=HOSTILE.keys())
def test_the_self_check_page_escapes_and_masks_hostile_names(name, value, flagged):
    guard = guard_for(GuardConfig(check_path="/privacy-check"))
    page = call(guard, [(name, value), (b"accept", b"text/html")], path="/privacy-check")
    as_json = call(guard, [(name, value), (b"accept", b"application/json")], path="/privacy-check")

    body = page.sent[1]["body"].decode()
    assert "<script>" not in body
    assert "<img" not in body
    assert "<b>" not in body
    assert not any(number in body for number in _numbers(name))
    assert not CONTROL.search(body)
    if flagged:
        shown = json.loads(as_json.sent[1]["body"])["findings"][0]["header"]
        assert html.escape(shown) in body
    headers = dict(as_json.sent[0]["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert not any(number in as_json.sent[1]["body"].decode() for number in _numbers(name))


# Over the wire a server only passes token characters in names; digits and length still arrive.
WIRE_NAMES = [
    "x-447700900123-msisdn",
    "X_447700900987_IMSI",
    "x-61491570006",
    "x-msisdn-" + "a" * 8000,
]


@pytest.mark.slow
def test_hostile_names_over_a_real_server_leave_no_trace_in_its_output():
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    env = clean_env(PRIVACY_GUARD_LOG_LEVEL="debug")  # every flagged request logged
    with serve(argv, port=port, env=env) as server:
        for name in WIRE_NAMES:
            response = httpx.get(server.url, headers={name: "+61491570157"}, timeout=10)
            assert response.status_code == 200
            assert name not in {n for n, _ in response.json()["headers"]}
        output = server.output()

    assert "privacy_guard.identifiers_found" in output
    for secret in ("447700900123", "447700900987", "61491570006", "61491570157", "a" * 100):
        assert secret not in output


# The request path is client bytes too, and the guard's own event logs it (without the query).
HOSTILE_PATHS = [
    "/u/61491570006",
    "/u/+61 491 570 006",
    "/u/+61-491-570-006",
    "/u/0491 570 006",
    "/u/+61%20491%20570%20006",
    "/u/\r\n+61491570006",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_number_in_the_path_cannot_be_read_back_from_the_guards_log(path):
    outcome = call(guard_for(), [(b"x-msisdn", b"447700900123")], path=path)

    logged = [str(e["path"]) for e in outcome.events if "path" in e]
    assert logged  # the finding was logged, with its path
    for line in logged:
        assert "491570006" not in re.sub(r"[^0-9]", "", unquote(line))
        assert not CONTROL.search(line)
