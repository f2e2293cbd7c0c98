"""The self-check page in a real browser: headless Chromium (Debian's `chromium`) via Playwright.

Playwright's Python package drives the system Chromium; it never downloads a browser of its own
(no `playwright install`). The phone's carrier is simulated by extra request headers. Set
UPDATE_SCREENSHOT=1 to refresh docs/check-page.png for the README.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from support import ROOT, clean_env, free_port, require_tool, serve

CHECK = "/privacy-check"
CARRIER = {"x-up-calling-line-id": "447700900123", "x-msisdn": "447700900456"}
DIGITS = ("447700900123", "447700900456", "900123", "900456")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "check-page.png"


@pytest.mark.slow
def test_check_page_in_chromium_on_a_phone(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "guard.demo:app", "--port", str(port)]
    env = clean_env(PRIVACY_GUARD_CHECK_PATH=CHECK)
    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "page.png"
    with serve(argv, port=port, env=env) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            phone = playwright.devices["Pixel 7"]
            carrier = browser.new_context(**phone, extra_http_headers=CARRIER)
            page = carrier.new_page()
            response = page.goto(server.url + CHECK)
            assert response is not None
            status, cache = response.status, response.headers.get("cache-control")
            cells = [
                row.locator("td").all_inner_texts()
                for row in page.locator("#findings tbody tr").all()
            ]
            verdict = page.locator("#verdict").inner_text()
            text, markup = page.inner_text("body"), page.content()
            target.parent.mkdir(parents=True, exist_ok=True)
            # The page is shorter than the phone's screen: crop the empty rest away.
            bottom = page.evaluate("document.body.getBoundingClientRect().bottom")
            width = page.viewport_size["width"] if page.viewport_size else 412
            clip = {"x": 0, "y": 0, "width": width, "height": bottom + 24}
            page.screenshot(path=str(target), clip=clip)

            clean = browser.new_context(**phone).new_page()
            clean.goto(server.url + CHECK)
            clean_verdict = clean.locator("#verdict").inner_text()
            clean_rows = clean.locator("#findings tbody tr").count()
        finally:
            browser.close()
        output = server.output()

    assert status == 200
    assert cache == "no-store"
    assert sorted(cells) == [
        ["x-msisdn", "msisdn", "removed before the site saw it"],
        ["x-up-calling-line-id", "msisdn", "removed before the site saw it"],
    ]
    assert re.search(r"arrived with 2 identifiers", verdict)
    assert "removed" in text
    for digits in DIGITS:
        assert digits not in text
        assert digits not in markup
        assert digits not in output
    assert target.stat().st_size > 10_000
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no identifying headers" in clean_verdict
    assert clean_rows == 0
