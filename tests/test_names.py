"""Name rules: identifier-shaped names the catalog does not list, and the ordinary ones they spare.

A new carrier's `x-<vendor>-msisdn` must be removed without a catalog update, in any spelling a
server or client produces; and the weak stems (userid, clientid, clientip, deviceid, uid, min,
cli) must never turn ordinary headers — browsers, CDNs, tracing, auth gateways, webhooks — into
findings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import RecordingApp, call, http_scope
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from guard import Finding, GuardConfig, PrivacyGuard
from guard.detect import _NAME_RULE, _STEM_KIND, KEEP, SCAN, Flag, Names, name_rule

CATALOG = json.loads((Path(__file__).parents[1] / "guard" / "data" / "catalog.json").read_text())


def _folded_names(rows: list[dict]) -> set[str]:
    return {
        re.sub(r"[_.]", "-", name.strip().lower())
        for row in rows
        for name in [row["name"], *row.get("aliases", ())]
    }


CATALOG_NAMES = _folded_names(CATALOG["identifying"] + CATALOG["low_risk"])
IDENTIFYING_CATALOG = _folded_names(CATALOG["identifying"])

# --- identifier-shaped names -------------------------------------------------------------------
# Folded name → kind. None of these is in the catalog: only the name rules can catch them.
IDENTIFYING = {
    "x-acme-msisdn": "msisdn",
    "x-something-imsi": "imsi",
    "x-vendor-imei": "imei",
    "x-foo-imeisv": "imei",
    "x-bar-mdn": "msisdn",
    "x-carrier-clid": "msisdn",
    "x-new-calling-line-id": "msisdn",
    "x-callinglineid": "msisdn",
    "x-op-subno": "subscriber_token",
    "x-uidh-v2": "subscriber_token",
    "x-op-acr": "subscriber_token",
    "x-subnym": "subscriber_token",
    "msisdn-hash": "msisdn",
    "x-imsi-raw": "imsi",
    "x-tmo-msisdn-enc": "msisdn",
    "x-carrier-uidh": "subscriber_token",
    "imei": "imei",
    "x-device-imeisv": "imei",
}


def _foldings(name: str) -> dict[str, str]:
    """Spellings of one folded name that DESIGN's folding maps back onto it."""
    mixed = "-".join(part.capitalize() for part in name.split("-"))
    return {
        "lower": name,
        "upper": name.upper(),
        "mixed": mixed,
        "underscore": name.replace("-", "_"),
        "underscore-upper": name.upper().replace("-", "_"),
        "dots": name.replace("-", "."),
        "dots-mixed": mixed.replace("-", "."),
        "whitespace": f" {name}\t",
        "whitespace-underscore": f"  {name.upper().replace('-', '_')} ",
    }


SPELLINGS = [
    (name, how, spelled) for name in IDENTIFYING for how, spelled in _foldings(name).items()
]


def _shown(folded: str) -> str:
    return re.sub(r"[0-9]+", "#", folded)


def _guarded(
    headers: list[tuple[bytes, bytes]], config: GuardConfig | None = None
) -> tuple[dict, CollectorRegistry]:
    app, registry = RecordingApp(), CollectorRegistry()
    call(PrivacyGuard(app, config=config or GuardConfig(), registry=registry), http_scope(headers))
    return app.scope, registry


@pytest.mark.parametrize("name", IDENTIFYING)
def test_identifier_shaped_name_not_in_catalog(name: str) -> None:
    assert name not in CATALOG_NAMES


@pytest.mark.parametrize(("name", "kind"), IDENTIFYING.items())
def test_name_rule_kind(name: str, kind: str) -> None:
    assert name_rule(name) == kind


# Names holding stems of two kinds: the leftmost stem decides, a `calling-line` included.
TWO_KINDS = {
    "x-calling-line-imsi": "msisdn",
    "calling-line-imei": "msisdn",
    "x-up-calling-line-subno": "msisdn",
    "x-imsi-calling-line": "imsi",
    "x-imei-msisdn": "imei",
    "x-msisdn-imei": "msisdn",
}


@pytest.mark.parametrize(("name", "kind"), TWO_KINDS.items())
def test_leftmost_stem_decides_a_name_of_two_kinds(name: str, kind: str) -> None:
    """A `calling-line` is an msisdn stem even beside a whole-token stem of another kind."""
    assert name_rule(name) == kind


@pytest.mark.parametrize(("name", "how", "spelled"), SPELLINGS)
def test_names_classifies_every_folding(name: str, how: str, spelled: str) -> None:
    verdict = Names().classify(spelled.encode())
    assert isinstance(verdict, Flag)
    assert (verdict.shown, verdict.label, verdict.kind, verdict.rule) == (
        _shown(name),
        "other",
        IDENTIFYING[name],
        "name",
    )


@pytest.mark.parametrize(("name", "how", "spelled"), SPELLINGS)
def test_identifier_shaped_name_removed(name: str, how: str, spelled: str) -> None:
    headers = [(b"accept", b"*/*"), (spelled.encode(), b"447700900123"), (b"x-n", b"2")]
    scope, registry = _guarded(headers)
    assert scope["headers"] == [headers[0], headers[2]]
    expected = Finding(_shown(name), IDENTIFYING[name], "removed", "name")
    assert scope["privacy_guard"] == (expected,)
    labels = {"header": "other", "kind": IDENTIFYING[name], "action": "removed"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1


def test_name_rule_findings_never_show_digits() -> None:
    headers = [(b"x-447700900123-msisdn", b"1"), (b"X_MSISDN_447700900123", b"1")]
    scope, _ = _guarded(headers)
    assert scope["headers"] == []
    assert [f.header for f in scope["privacy_guard"]] == ["x-#-msisdn", "x-msisdn-#"]


def test_allow_list_beats_the_name_rules() -> None:
    headers = [(b"x-acme-msisdn", b"447700900123")]
    scope, _ = _guarded(headers, GuardConfig(allow_headers=("X_ACME_MSISDN",)))
    assert scope["headers"] is headers
    assert scope["privacy_guard"] == ()


def test_extra_headers_flag_a_name_the_rules_do_not_know() -> None:
    names = Names(extra=["x-acme-subscriber"])
    assert names.classify(b"X.Acme.Subscriber") == Flag(
        "x-acme-subscriber", "x-acme-subscriber", "other", "extra"
    )
    assert Names().classify(b"X.Acme.Subscriber") is SCAN


@pytest.mark.parametrize("name", ["x-msisdn", "x-up-calling-line-id", "x-imsi", "x-uidh"])
def test_a_catalog_name_also_listed_as_extra_keeps_its_catalog_verdict(name: str) -> None:
    """Listing a known name in PRIVACY_GUARD_EXTRA_HEADERS must not demote it to kind `other`,
    which would cost it its kind, its label and its pseudonym token."""
    catalog = Names().classify(name.encode())
    assert isinstance(catalog, Flag)
    assert catalog.rule == "catalog"
    assert Names(extra=[name]).classify(name.encode()) == catalog


# --- real-world headers that must pass untouched -----------------------------------------------
# (name as usually written, value). Values are realistic, numeric where they usually are.
BENIGN = [
    # browsers
    ("Host", "shop.example.com"),
    (
        "User-Agent",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
    ),
    (
        "User-Agent",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Connection", "keep-alive"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-User", "?1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-CH-UA", '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
    ("Sec-CH-UA-Mobile", "?1"),
    ("Sec-CH-UA-Platform", '"Android"'),
    ("Sec-CH-UA-Platform-Version", '"14.0.0"'),
    ("Sec-CH-UA-Model", '"Pixel 8"'),
    ("Sec-CH-UA-Arch", '""'),
    ("Sec-CH-UA-Bitness", '"64"'),
    (
        "Sec-CH-UA-Full-Version-List",
        '"Chromium";v="124.0.6367.82", "Google Chrome";v="124.0.6367.82"',
    ),
    ("Sec-CH-Prefers-Color-Scheme", "dark"),
    ("Sec-GPC", "1"),
    ("Device-Memory", "8"),
    ("Downlink", "10"),
    ("ECT", "4g"),
    ("RTT", "50"),
    ("DPR", "2.625"),
    ("Viewport-Width", "412"),
    ("Save-Data", "on"),
    ("Cookie", "session=3f1e9b2a7c4d; _ga=GA1.2.1234567890.1700000000; theme=dark"),
    ("Referer", "https://shop.example.com/products?page=2&sort=price"),
    ("Origin", "https://shop.example.com"),
    ("If-None-Match", 'W/"5e15153d-120f"'),
    ("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ("Cache-Control", "max-age=0"),
    ("Pragma", "no-cache"),
    ("DNT", "1"),
    ("Priority", "u=0, i"),
    ("Purpose", "prefetch"),
    ("Sec-Purpose", "prefetch;prerender"),
    ("Range", "bytes=0-1023"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Content-Length", "348"),
    ("TE", "trailers"),
    ("Expect", "100-continue"),
    ("Max-Forwards", "10"),
    # Android WebView and XHR
    ("X-Requested-With", "com.example.shop"),
    ("X-Requested-With", "XMLHttpRequest"),
    # CDNs and proxies
    ("X-Forwarded-For", "203.0.113.7, 198.51.100.23"),
    ("X-Forwarded-For", "2001:db8::1, 198.51.100.23"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "shop.example.com"),
    ("X-Forwarded-Port", "443"),
    ("X-Real-IP", "203.0.113.7"),
    ("Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
    ("Via", "1.1 varnish, 1.1 vegur"),
    ("True-Client-IP", "203.0.113.7"),
    ("Fastly-Client-IP", "203.0.113.7"),
    ("Fastly-SSL", "1"),
    ("Fastly-FF", "cache-lhr7380-LHR"),
    ("CF-Connecting-IP", "203.0.113.7"),
    ("CF-Connecting-IPv6", "2001:db8::7"),
    ("CF-Ray", "8c1f2a3b4c5d6e7f-LHR"),
    ("CF-IPCountry", "GB"),
    ("CF-Visitor", '{"scheme":"https"}'),
    ("CDN-Loop", "cloudflare; loops=1"),
    ("X-Amz-Cf-Id", "Vpx2jnk2U7BvnDmZU4jbb1Zf6y0J2xMYT7hQp1H6GsX0LQy9Xb2b3w=="),
    ("CloudFront-Viewer-Country", "GB"),
    ("CloudFront-Is-Mobile-Viewer", "true"),
    ("Akamai-Origin-Hop", "2"),
    ("X-Client-IP", "203.0.113.7"),
    ("X-Cluster-Client-IP", "203.0.113.7"),
    ("X-Original-Forwarded-For", "203.0.113.7"),
    # tracing
    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ("X-Amzn-Trace-Id", "Root=1-67891233-abcdef012345678912345678"),
    ("x-datadog-trace-id", "7263245829107465611"),
    ("x-datadog-parent-id", "1234567890123456789"),
    ("x-datadog-sampling-priority", "1"),
    ("x-datadog-origin", "rum"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
    ("x-b3-sampled", "1"),
    ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
    ("sentry-trace", "771a43a4192642f0b136d5159a501700-b1c3d4e5f6a7b8c9-1"),
    ("baggage", "sentry-environment=production,sentry-release=shop%401.4.2,sentry-sample_rate=0.1"),
    ("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1"),
    ("uber-trace-id", "4bf92f3577b34da6:00f067aa0ba902b7:0:1"),
    ("X-Request-Id", "4d1e5c3a-8f2b-4c6d-9e0f-1a2b3c4d5e6f"),
    ("X-Request-Id", "1764201600123"),
    ("X-Correlation-ID", "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b"),
    # auth gateways
    ("X-Authenticated-Userid", "alice@example.com"),
    ("X-Authenticated-Userid", "8d3c2f41-6b7a-4e9d-a1c2-3b4d5e6f7a8b"),
    ("X-Goog-Authenticated-User-Id", "accounts.google.com:118234567890123456789"),
    ("X-Goog-Authenticated-User-Email", "accounts.google.com:alice@example.com"),
    ("Client-Id", "web-frontend"),
    ("Client-Id", "3f8a1c2b9d"),
    ("X-IBM-Client-Id", "9f5c1b2e-4d3a-4b6c-8e7f-0a1b2c3d4e5f"),
    ("X-Consumer-ID", "7c5f4f3e-2d1c-4b0a-9f8e-7d6c5b4a3f2e"),
    ("X-Consumer-Username", "partner-app"),
    ("X-Anonymous-Consumer", "false"),
    ("X-Client-Id", "mobile-android"),
    ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl"),
    ("X-Api-Key", "demo-key-7f3e"),
    # device and request identifiers an app sets itself
    ("X-Device-Id", "3f1e9b2a-7c4d-4e8a-9b1c-2d3e4f5a6b7c"),
    ("X-Device-Id", "a1b2c3d4e5f60718"),
    ("X-Request-GUID", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ("X-Client-Version", "5.12.0"),
    ("X-App-Build", "20231127"),
    ("X-App-Version", "4.2.1 (1234)"),
    ("X-Cli-Version", "2.4.0"),
    ("X-Min-Version", "3.1"),
    ("X-Subscription-Id", "sub_1OqYVv2eZvKYlo2C"),
    ("X-Session-Id", "b5a6c7d8e9f0"),
    ("X-Caller-Id", "checkout-service"),
    ("Idempotency-Key", "5d7f1c2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"),
    # webhook signatures and metadata
    (
        "Stripe-Signature",
        "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
    ),
    (
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ),
    ("X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"),
    ("X-GitHub-Event", "push"),
    ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ("X-GitHub-Hook-ID", "412345678"),
    ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
    ("X-Slack-Request-Timestamp", "1700000000"),
    ("X-Shopify-Hmac-Sha256", "XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM="),
    ("X-Shopify-Topic", "orders/create"),
    ("X-Shopify-Shop-Domain", "example.myshopify.com"),
    ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    ("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ("Svix-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
    ("Svix-Timestamp", "1700000000"),
    ("Svix-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    # rate limits and pagination
    ("X-RateLimit-Limit", "5000"),
    ("X-RateLimit-Remaining", "4987"),
    ("X-RateLimit-Reset", "1700003600"),
    ("X-RateLimit-Min", "60"),
    ("RateLimit-Policy", "100;w=60"),
    ("Retry-After", "120"),
    ("X-Total-Count", "1234"),
    ("X-Page", "2"),
    ("X-Per-Page", "50"),
    ("X-Next-Page", "3"),
    ("X-Pagination-Cursor", "eyJpZCI6MTIzNH0"),
    ("Link", '<https://api.example.com/items?page=3>; rel="next"'),
    # miscellany with weak stems or numbers
    ("X-Admin", "true"),
    ("X-Admin", "1"),
    ("X-CSRF-Token", "d8f7e6c5b4a39281"),
    ("X-Timezone", "Europe/London"),
    ("X-Timestamp", "1764201600123"),
    ("X-Request-Start", "t=1700000000123"),
    ("X-Queue-Start", "t=1700000000.123"),
    ("X-HTTP-Method-Override", "PATCH"),
    ("X-Build-Number", "4711"),
    ("X-Order-Id", "100234"),
]


def _wire(name: str) -> bytes:
    return name.lower().encode("latin-1")


def test_benign_table_is_large() -> None:
    assert len(BENIGN) >= 100
    assert len({name.lower() for name, _ in BENIGN}) >= 100


@pytest.mark.parametrize(("name", "value"), BENIGN)
def test_benign_name_is_not_identifying(name: str, value: str) -> None:
    folded = name.lower()
    assert folded not in IDENTIFYING_CATALOG
    assert name_rule(folded) is None
    assert not isinstance(Names().classify(name.encode()), Flag)


@pytest.mark.parametrize(("name", "value"), BENIGN)
def test_benign_line_kept(name: str, value: str) -> None:
    for raw in (_wire(name), name.encode("latin-1")):  # as servers send it, and as written
        headers = [(raw, value.encode("latin-1"))]
        scope, _ = _guarded(headers)
        assert scope["headers"] is headers
        assert scope["privacy_guard"] == ()


@pytest.mark.parametrize("budget", [32, 10_000])
def test_benign_request_kept_byte_for_byte_in_order(budget: int) -> None:
    headers = [(_wire(name), value.encode("latin-1")) for name, value in BENIGN]
    expected = list(headers)
    scope, registry = _guarded(headers, GuardConfig(scan_budget=budget))
    assert scope["headers"] is headers
    assert scope["headers"] == expected
    assert scope["privacy_guard"] == ()
    clean = registry.get_sample_value(
        "privacy_guard_requests_total", {"type": "http", "result": "clean"}
    )
    assert clean == 1
    if budget == 10_000:
        # Every value was really looked at, not skipped for want of budget.
        exhausted = registry.get_sample_value(
            "privacy_guard_scan_budget_exhausted_total", {"type": "http"}
        )
        assert exhausted == 0


_PIECES = st.one_of(
    st.sampled_from([*_STEM_KIND, "calling", "line", "id", "x", "up", "wap", "msi", "sdn", ""]),
    st.text(alphabet="abcdeilmnsuv-", max_size=8),
)


@given(st.lists(_PIECES, min_size=1, max_size=5), st.sampled_from(["-", ""]))
def test_the_name_rule_prefilter_never_hides_a_match(pieces: list[str], joiner: str) -> None:
    folded = joiner.join(pieces)
    match = _NAME_RULE.search(folded)
    expected = None if match is None else _STEM_KIND[match.group(1) or match.group(2)]
    assert name_rule(folded) == expected


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["x-msisdn", "accept", "cookie", "x-foo", "X-Imsi", "priority"]),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12),
        ),
        max_size=40,
    )
)
def test_the_harmless_set_is_exactly_the_cached_keep_verdicts(raw_names: list[str]) -> None:
    """The clean path trusts `harmless` without looking at `table`: they must never disagree,
    also once the cache is full and forgets what it learned."""
    names = Names(extra=["x-acme-sub"], allow=["x-nokia-msisdn"])
    names.CACHE_MAX = 8  # type: ignore[misc]  # fill the cache within one example
    for raw in [*raw_names, "accept"]:
        names.classify(raw.encode("latin-1"))
        assert len(names.table) <= names._preset + names.CACHE_MAX
    harmless = {name for name, verdict in names.table.items() if verdict is KEEP}
    assert names.harmless == harmless
    assert b"accept" in names.harmless
    assert b"x-nokia-msisdn" in names.harmless  # allowed by the operator
    assert b"cookie" not in names.harmless
    assert b"x-acme-sub" not in names.harmless
