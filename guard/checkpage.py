"""The self-check page: tells a visitor which identifying headers their own request carried.

In 2012 O2's customers had to find a header-echo page to learn that their number was being sent
to every site. With `PRIVACY_GUARD_CHECK_PATH` set, the guard answers that path itself with the
names and kinds it found and what it did — never a value. Names are client bytes: they arrive
here already folded, digit-masked and capped (`catalog.shown`), and are HTML-escaped on output.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from .detect import Finding

__all__ = ["render"]

_ACTIONS = {
    "removed": "removed before the site saw it",
    "replaced": "replaced by a pseudonymous token",
    "reported": "seen and left in place (reported only)",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Does your carrier add identifiers to your requests?</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
  color:#222}}
h1{{font-size:1.4rem}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}} code{{font-size:.95em}}
.verdict{{padding:.8rem 1rem;border-radius:.4rem;background:{colour}}}
</style></head>
<body>
<h1>Does your carrier add identifiers to your requests?</h1>
<p class="verdict" id="verdict">{verdict}</p>
{table}
<p>Some mobile networks add headers such as <code>x-up-calling-line-id</code> or
<code>x-msisdn</code> to web requests, carrying your phone number, SIM (IMSI) or device (IMEI)
identity. This page lists the ones your request arrived with, by name and kind only: their values
are never shown, stored or logged.</p>
</body></html>
"""


def _table(findings: Sequence[Finding]) -> str:
    rows = "".join(
        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
            html.escape(f.header), html.escape(f.kind), html.escape(_ACTIONS.get(f.action, ""))
        )
        for f in findings
    )
    return (
        '<table id="findings"><thead><tr><th>header</th><th>carries</th><th>what happened</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def render(findings: Sequence[Finding], want_json: bool) -> tuple[bytes, bytes]:
    """The page (HTML, or JSON when asked) and its content type."""
    if want_json:
        body = {
            "identifying_headers": len(findings),
            "findings": [f._asdict() for f in findings],
        }
        return json.dumps(body).encode(), b"application/json"
    if findings:
        verdict = (
            f"Your request arrived with {len(findings)} "
            f"identifier{'s' if len(findings) != 1 else ''} (headers, cookies or URL parameters)."
        )
        page = _PAGE.format(colour="#fde2e1", verdict=verdict, table=_table(findings))
    else:
        verdict = "Your request arrived with no identifying headers."
        page = _PAGE.format(colour="#e3f5e1", verdict=verdict, table="")
    return page.encode(), b"text/html; charset=utf-8"
