"""What the guard itself exposes: /metrics only when asked, and then counts without values;
findings without values; a config whose repr holds no secret."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import httpx
import pytest
from fuzz.harness import call, guard_for
from prometheus_client import CollectorRegistry
from support import clean_env, free_port, serve

from guard import GuardConfig

KEY = "5f" * 32  # a test secret, 32 bytes in hex
PREVIOUS = "a7" * 32
# Everything a client or carrier could send that must never come back out of the guard.
# Fictional numbers: UK drama numbers where names decide, +61 491 570 xxx for the value rule.
IDENTIFYING = [
    (b"x-up-calling-line-id", b"447700900123"),  # catalog
    (b"X_MSISDN", b"447700900456"),  # catalog, other spelling
    (b"x-vf-acr", b"QUNSLTQ0NzcwMDkwMDc4OQ"),  # catalog, a token
    (b"x-acme-imsi", b"234150999999999"),  # name rule
    (b"x-contact", b"+61 491 570 006"),  # value rule
    (b"x-tenant-ref", b"tenant-secret-ref"),  # PRIVACY_GUARD_EXTRA_HEADERS
    (b"cookie", b"theme=dark; User-Identity-Forward-msisdn=447700900789"),  # cookie pair
    (b"x-447700900987-msisdn", b"1"),  # a number in a name
]
QUERY = b"msisdn=447700900654&page=2"
SECRETS = [
    "447700900123",
    "447700900456",
    "QUNSLTQ0",
    "234150999999999",
    "491570006",
    "491 570 006",
    "tenant-secret-ref",
    "447700900789",
    "447700900987",
    "447700900654",
]
# GuardConfig fields that may appear in its repr: documented settings that are not secrets. A new
# field must be added here (or marked repr=False) on purpose.
DOCUMENTED = {
    "mode",
    "extra_headers",
    "allow_headers",
    "scan_values",
    "default_region",
    "metrics",
    "metrics_path",
    "metrics_port",
    "metrics_host",
    "log_level",
    "log_format",
    "check_path",
    "trusted_sources",
    "trusted_paths",
    "trusted_headers",
    "scan_budget",
    "scan_bytes",
}
SECRET_FIELDS = {"pseudonym_key", "pseudonym_key_previous"}


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize("path", ["/metrics", "/-/metrics", "/privacy-check"])
def test_nothing_is_served_by_the_guard_unless_configured(path):
    outcome = call(guard_for(), [(b"accept", b"*/*")], path=path)

    assert outcome.scope is not None  # the request went to the app
    assert outcome.scope["path"] == path
    assert outcome.status == 204  # the app's answer, not the guard's


def test_the_metrics_path_serves_counts_and_never_a_value():
    registry = CollectorRegistry()
    guard = guard_for(
        registry=registry,
        metrics_path="/metrics",
        extra_headers=("x-tenant-ref",),
        pseudonym_key=KEY,
    )
    for _ in range(3):
        call(guard, list(IDENTIFYING))
    outcome = call(guard, [(b"accept", b"*/*")], path="/metrics")
    post = call(guard, [], path="/metrics")

    assert outcome.scope is None  # answered by the guard
    assert outcome.status == 200
    body = outcome.sent[1]["body"].decode()
    assert "privacy_guard_identifiers_total" in body
    assert not _leaks(body)
    assert KEY not in body
    labels = set(re.findall(r'header="([^"]*)"', body))
    assert labels <= {"other", "cookie", "query", "x-tenant-ref", "x-up-calling-line-id",
                      "x-msisdn", "x-vf-acr", "x-privacy-guard-pseudonym",
                      "x-privacy-guard-pseudonym-previous"}  # fmt: skip
    assert post.status == 200
    assert dict(post.sent[0]["headers"])[b"cache-control"] == b"no-store"


def test_a_websocket_on_the_metrics_path_goes_to_the_app():
    outcome = call(guard_for(metrics_path="/metrics"), [], path="/metrics", scope_type="websocket")

    assert outcome.scope is not None


@pytest.mark.parametrize("mode", ["strip", "report"])
def test_findings_hold_names_and_kinds_never_values(mode):
    guard = guard_for(
        mode=mode,
        extra_headers=("x-tenant-ref",),
        pseudonym_key=KEY,
        pseudonym_key_previous=PREVIOUS,
    )
    outcome = call(guard, list(IDENTIFYING), query=QUERY)

    assert outcome.scope is not None
    findings = outcome.scope["privacy_guard"]
    assert len(findings) == len(IDENTIFYING) + 1  # every line, the cookie pair, the query
    assert any(f.header.startswith("query:") for f in findings)
    assert not _leaks(repr(findings))
    assert not _leaks(repr(outcome.events))
    assert KEY not in repr(outcome.events)
    for finding in findings:
        assert set(finding._fields) == {"header", "kind", "action", "rule"}


def test_the_guards_start_up_event_names_no_secret():
    guard = guard_for(pseudonym_key=KEY, pseudonym_key_previous=PREVIOUS)
    outcome = call(guard, [(b"accept", b"*/*")])  # the first request starts the guard

    assert any(e["event"] == "privacy_guard.started" for e in outcome.events)
    text = repr(outcome.events)
    assert KEY not in text
    assert PREVIOUS not in text
    assert repr(bytes.fromhex(KEY)) not in text


def test_the_config_repr_holds_only_documented_settings_and_no_secret():
    config = GuardConfig(pseudonym_key=KEY, pseudonym_key_previous=PREVIOUS)
    text = repr(config)
    shown = set(re.findall(r"(\w+)=", text))

    assert shown <= DOCUMENTED
    assert {f.name for f in dataclasses.fields(GuardConfig)} <= DOCUMENTED | SECRET_FIELDS
    for secret in SECRET_FIELDS:
        assert secret not in shown
    for value in (KEY, PREVIOUS, bytes.fromhex(KEY), bytes.fromhex(PREVIOUS)):
        assert (value if isinstance(value, str) else repr(value)) not in text
    assert KEY not in str(config)


def test_a_refused_request_says_nothing_about_why():
    guard = guard_for()
    guard._names.table = None  # type: ignore[assignment]  # the name pass cannot run
    outcome = call(guard, list(IDENTIFYING))

    assert outcome.status == 500
    body = outcome.sent[1]["body"].decode()
    assert not _leaks(body)
    assert "Traceback" not in body
    assert "Error" not in body


# --- real servers -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_server_serves_no_metrics_unless_configured():
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    with serve(argv, port=port, env=clean_env()) as server:
        response = httpx.get(f"{server.url}/metrics", timeout=10)

    assert response.status_code == 404  # the demo app's own answer: no such route
    assert "privacy_guard" not in response.text


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_a_real_metrics_listener_binds_loopback_and_shows_no_value():
    port, metrics_port = free_port(), free_port()
    # uvicorn's own access log prints the query string: `privacy-guard run` installs the
    # redacting filter on it (tests/test_run_server.py); plain uvicorn, as here, must not log it.
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    argv += ["--no-access-log"]
    env = clean_env(
        PRIVACY_GUARD_METRICS_PORT=str(metrics_port),
        PRIVACY_GUARD_EXTRA_HEADERS="x-tenant-ref",
    )
    with serve(argv, port=port, env=env) as server:
        headers = [(k.decode(), v.decode()) for k, v in IDENTIFYING]
        response = httpx.get(f"{server.url}/?{QUERY.decode()}", headers=headers, timeout=10)
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        listening = _listening(metrics_port)
        output = server.output()

    assert response.status_code == 200
    assert not _leaks(response.text)
    assert scrape.status_code == 200
    assert "privacy_guard_identifiers_total" in scrape.text
    assert not _leaks(scrape.text)
    assert listening == {"0100007F"}  # 127.0.0.1 only, never 0.0.0.0
    assert not _leaks(output)


def test_every_test_security_md_names_exists():
    # SECURITY.md promises each guarantee is proved by a named test: a rename must not leave a
    # promise without its proof.
    root = Path(__file__).resolve().parents[1]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", (root / "SECURITY.md").read_text())
    assert len(named) >= 20
    for path, test in named:
        source = (root / path).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{path}::{test}"
