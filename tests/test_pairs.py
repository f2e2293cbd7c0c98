"""Identifiers in cookie pairs and query parameters: a narrow list of names, nothing else.

Cookies: only the offending pairs go, the rest of the Cookie header stays byte-for-byte. Query
strings: reported and counted, never rewritten. Real-world cookies and ad-click parameters are
never touched. Numbers are fictional (UK 447700900xxx: the name decides here).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry

from guard import Finding, GuardConfig, PrivacyGuard
from guard.pairs import cookie_hits, query_hits

NUMBER = b"447700900123"
KINDS = ("msisdn", "imsi", "imei")
KEY = bytes(range(32)).hex()


def guard_for(**config: Any) -> tuple[PrivacyGuard, RecordingApp, CollectorRegistry]:
    app = RecordingApp()
    registry = CollectorRegistry()
    return PrivacyGuard(app, config=GuardConfig(**config), registry=registry), app, registry


def with_query(headers: list[tuple[bytes, bytes]], query: bytes) -> dict[str, Any]:
    scope = http_scope(headers, path="/pay")
    scope["query_string"] = query
    scope["raw_path"] = b"/pay"
    return scope


def count(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("privacy_guard_identifiers_total", labels) or 0.0


def cookie(name: str, kind: str, action: str = "removed", rule: str = "name") -> Finding:
    return Finding(f"cookie:{name}", kind, action, rule)


# --- cookies: what is removed, what stays byte-for-byte ----------------------------------------

COOKIES = [
    # (Cookie value sent, value the app sees, findings)
    (
        b"session=abc; User-Identity-Forward-msisdn=" + NUMBER + b"; theme=dark",
        b"session=abc; theme=dark",
        [cookie("user-identity-forward-msisdn", "msisdn", rule="catalog")],
    ),
    (
        b"x-up-calling-line-id=" + NUMBER + b"; session=abc",
        b"session=abc",
        [cookie("x-up-calling-line-id", "msisdn", rule="catalog")],
    ),
    (
        b"session=abc; imsi=001010123456789",
        b"session=abc",
        [cookie("imsi", "imsi")],
    ),
    (
        b"IMEI=490154203237518;session=abc",
        b"session=abc",
        [cookie("imei", "imei")],
    ),
    # a stem after a `-` keeps its kind (not msisdn, the kind of a name the rule cannot tell)
    (
        b"a=1; X-Acme-IMSI=001010123456789; x_acme_imeisv=4901542032375101",
        b"a=1",
        [cookie("x-acme-imsi", "imsi"), cookie("x-acme-imeisv", "imei")],
    ),
    (
        b"a=1; X_MSISDN=" + NUMBER + b"; imeisv=4901542032375101; b=2",
        b"a=1; b=2",
        [cookie("x-msisdn", "msisdn", rule="catalog"), cookie("imeisv", "imei")],
    ),
    # odd spacing: every kept pair keeps its own bytes
    (
        b"a=1 ;   msisdn=" + NUMBER + b"  ;b=2  ;  c = 3",
        b"a=1 ;b=2  ;  c = 3",
        [cookie("msisdn", "msisdn", rule="catalog")],
    ),
    # quoted values, `=` inside values
    (
        b'pref="a=b; c"; msisdn="' + NUMBER + b'"; t="x=y"',
        b'pref="a=b; c"; t="x=y"',
        [cookie("msisdn", "msisdn", rule="catalog")],
    ),
    (
        b"jwt=eyJhbGciOiJIUzI1NiJ9.e30=.abc==; calling_line_id=" + NUMBER,
        b"jwt=eyJhbGciOiJIUzI1NiJ9.e30=.abc==",
        [cookie("calling-line-id", "msisdn")],
    ),
    (
        b"callinglineid=" + NUMBER + b"; a=b",  # the name rule's spelling without hyphens
        b"a=b",
        [cookie("callinglineid", "msisdn")],
    ),
    # empty pairs and a trailing `;`
    (
        b"a=1;; msisdn=" + NUMBER + b";",
        b"a=1;;",
        [cookie("msisdn", "msisdn", rule="catalog")],
    ),
    (
        b"a=;msisdn=" + NUMBER + b"; b=",
        b"a=; b=",
        [cookie("msisdn", "msisdn", rule="catalog")],
    ),
    # digits in a cookie name are masked wherever it is shown
    (
        b"msisdn-" + NUMBER + b"=1; a=1",
        b"a=1",
        [cookie("msisdn-#", "msisdn")],
    ),
]


@pytest.mark.parametrize(("value", "kept", "findings"), COOKIES)
def test_only_identifying_cookie_pairs_are_removed(
    value: bytes, kept: bytes, findings: list[Finding]
) -> None:
    guard, app, _ = guard_for()
    host, accept = (b"host", b"shop.example"), (b"accept", b"*/*")

    call(guard, http_scope([host, (b"cookie", value), accept]))

    assert app.scope["headers"] == [host, (b"cookie", kept), accept]
    assert app.scope["privacy_guard"] == tuple(findings)


@pytest.mark.parametrize(
    "value",
    [
        b"msisdn=" + NUMBER,
        b"x-msisdn=" + NUMBER + b"; imsi=001010123456789",
        b"msisdn=" + NUMBER + b";",  # a trailing `;` is not a pair to keep
        b" msisdn=" + NUMBER + b" ; ",
    ],
)
def test_cookie_line_with_only_identifying_pairs_is_dropped(value: bytes) -> None:
    guard, app, _ = guard_for()

    call(guard, http_scope([(b"cookie", value), (b"accept", b"*/*")]))

    assert app.scope["headers"] == [(b"accept", b"*/*")]


def test_report_mode_keeps_the_cookie_header() -> None:
    guard, app, registry = guard_for(mode="report")
    headers = [(b"cookie", b"session=abc; msisdn=" + NUMBER)]

    call(guard, http_scope(headers))

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == (cookie("msisdn", "msisdn", "reported", "catalog"),)
    assert count(registry, header="cookie", kind="msisdn", action="reported") == 1


def test_each_cookie_line_is_handled_on_its_own() -> None:
    # HTTP/2 may split cookies over several lines.
    guard, app, registry = guard_for()
    headers = [
        (b"cookie", b"a=1"),
        (b"cookie", b"msisdn=" + NUMBER),
        (b"cookie", b"imsi=001010123456789; b=2"),
    ]

    call(guard, http_scope(headers))

    assert app.scope["headers"] == [(b"cookie", b"a=1"), (b"cookie", b"b=2")]
    assert count(registry, header="cookie", kind="msisdn", action="removed") == 1
    assert count(registry, header="cookie", kind="imsi", action="removed") == 1


def test_cookie_findings_are_counted_under_cookie() -> None:
    guard, _, registry = guard_for()

    call(guard, http_scope([(b"cookie", b"x-up-calling-line-id=" + NUMBER + b"; a=1")]))

    assert count(registry, header="cookie", kind="msisdn", action="removed") == 1
    assert not count(registry, header="x-up-calling-line-id", kind="msisdn", action="removed")


def test_capitalised_cookie_header_is_checked_too() -> None:
    guard, app, _ = guard_for()

    call(guard, http_scope([(b"Cookie", b"a=1; msisdn=" + NUMBER)]))

    assert app.scope["headers"] == [(b"Cookie", b"a=1")]


def test_cookie_pair_is_not_what_a_header_token_replaced() -> None:
    # The token is made from the x-msisdn line; the cookie pair was removed, not replaced.
    guard, app, _ = guard_for(pseudonym_key=KEY)
    headers = [(b"x-msisdn", b"61491570006"), (b"cookie", b"a=1; msisdn=" + NUMBER)]

    call(guard, http_scope(headers))

    assert app.scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "replaced", "catalog"),
        cookie("msisdn", "msisdn", "removed", "catalog"),
    )


REAL_WORLD_COOKIES = (
    b"_ga=GA1.2.1234567890.1718032456; _gid=GA1.2.987654321.1718032456; "
    b"_fbp=fb.1.1718032456123.1234567890; __cf_bm=abc.def-1718032456-0-AQ==; "
    b"__Secure-next-auth.session-token=eyJhbGciOiJkaXIifQ..abc; csrftoken=Zx9; "
    b"sessionid=q1w2e3; uid=447700900123; user_id=447700900124; client_id=42; clid=7; "
    b"gclid=Cj0KCQ; fbclid=IwAR3; PHPSESSID=abc123; AWSALB=xyz; AWSALBCORS=xyz; "
    b"JSESSIONID=ABC.node1; _gcl_au=1.1.1; ajs_user_id=447700900125; c_user=100001; "
    b"XSRF-TOKEN=abc; cf_clearance=abc; __stripe_mid=abc; OptanonConsent=isIABGlobal=false; "
    b"_hjSessionUser_123=eyJ; li_at=AQE; NID=511=abc; 1P_JAR=2024-06-10-12; IDE=AHWqTU; "
    b"mp_abc_mixpanel=%7B%22distinct_id%22; intercom-id-abc=123; _shopify_y=abc; "
    b"hint=anytimeimei"  # a marker inside a value: looked at, left alone
)


@pytest.mark.parametrize("value", [*REAL_WORLD_COOKIES.split(b"; "), REAL_WORLD_COOKIES])
def test_real_world_cookies_are_left_alone(value: bytes) -> None:
    guard, app, registry = guard_for()
    headers = [(b"cookie", value), (b"accept", b"*/*")]

    call(guard, http_scope(headers))

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == ()
    assert count(registry, header="cookie", kind="msisdn", action="removed") == 0


@pytest.mark.parametrize("name", [n.split(b"=", 1)[0] for n in REAL_WORLD_COOKIES.split(b"; ")])
def test_real_world_cookie_names_are_not_identifying(name: bytes) -> None:
    assert cookie_hits(name + b"=447700900123") == (name + b"=447700900123", [])


def test_cookie_value_is_never_looked_at() -> None:
    guard, app, _ = guard_for()
    headers = [(b"cookie", b"pref=msisdn; last=imsi-imei; q=calling-line-id")]

    call(guard, http_scope(headers))

    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == ()


# --- query strings: reported, never rewritten --------------------------------------------------

QUERIES = [
    # (query string, findings)
    (b"msisdn=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (b"MSISDN=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (b"a=1&x_msisdn=" + NUMBER, [Finding("query:x-msisdn", "msisdn", "reported", "catalog")]),
    (b"x%5Fmsisdn=" + NUMBER, [Finding("query:x-msisdn", "msisdn", "reported", "catalog")]),
    (b"%4DSISDN=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (b"ms%69sdn=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (b"%6D%73%69%73%64%6E=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (b"imsi=001010123456789;b=2", [Finding("query:imsi", "imsi", "reported", "name")]),
    (b"a=1;%6Dsisdn=" + NUMBER, [Finding("query:msisdn", "msisdn", "reported", "catalog")]),
    (
        b"x-up-%63alling-line-id=" + NUMBER,
        [Finding("query:x-up-calling-line-id", "msisdn", "reported", "catalog")],
    ),
    (
        b"imei=490154203237518&calling-line-id=" + NUMBER,
        [
            Finding("query:imei", "imei", "reported", "name"),
            Finding("query:calling-line-id", "msisdn", "reported", "name"),
        ],
    ),
    (
        b"x-up-callinglineid=" + NUMBER,
        [Finding("query:x-up-callinglineid", "msisdn", "reported", "name")],
    ),
    (b"msisdn", [Finding("query:msisdn", "msisdn", "reported", "catalog")]),  # a name alone
    (b"msisdn" + NUMBER + b"=1", [Finding("query:msisdn#", "msisdn", "reported", "name")]),
    # not identifying
    (b"gclid=Cj0KCQ&fbclid=IwAR3&uid=447700900123&user_id=7&client_id=42&clid=7", []),
    (b"q=msisdn&search=imsi+imei&utm_source=calling-line-id", []),
    (b"utm_campaign=summer&page=2", []),
    (b"imsize=640&imeiverified=1", []),  # a marker word that only starts a longer word
]


@pytest.mark.parametrize("mode", ["strip", "report"])
@pytest.mark.parametrize(("query", "findings"), QUERIES)
def test_query_parameters_are_reported_never_rewritten(
    query: bytes, findings: list[Finding], mode: str
) -> None:
    guard, app, registry = guard_for(mode=mode)
    headers = [(b"accept", b"*/*")]
    scope = with_query(headers, query)

    call(guard, scope)

    assert app.scope["query_string"] == query
    assert app.scope["raw_path"] == b"/pay"
    assert app.scope["headers"] is headers
    assert app.scope["privacy_guard"] == tuple(findings)
    for finding in findings:
        labels = {"header": "query", "kind": finding.kind, "action": "reported"}
        assert count(registry, **labels) >= 1
    removed = sum(count(registry, header="query", kind=k, action="removed") for k in KINDS)
    assert removed == 0


def test_query_and_header_findings_together() -> None:
    guard, app, registry = guard_for()
    scope = with_query([(b"x-msisdn", NUMBER), (b"accept", b"*/*")], b"msisdn=" + NUMBER)

    call(guard, scope)

    assert app.scope["headers"] == [(b"accept", b"*/*")]
    assert app.scope["query_string"] == b"msisdn=" + NUMBER
    assert app.scope["privacy_guard"] == (
        Finding("x-msisdn", "msisdn", "removed", "catalog"),
        Finding("query:msisdn", "msisdn", "reported", "catalog"),
    )
    assert count(registry, header="query", kind="msisdn", action="reported") == 1
    assert count(registry, header="x-msisdn", kind="msisdn", action="removed") == 1


def test_query_hits_unit() -> None:
    assert [h.shown for h in query_hits(b"a=1&x+msisdn=2&%78_imsi=3")] == ["x msisdn", "x-imsi"]
