"""The request header sets every suite sends. All numbers are fictional (see the brief's rules).

- clean: what Chrome on Android sends for a page load (16 lines).
- cookies: the same from a returning browser, with ~1 KiB of cookies (in-process only).
- carrier: the same plus three carrier-injected identifiers the guard removes by name.
- hidden: the same plus a valid mobile number in a header no rule names (value rules find it).
- adversarial: 1,000 unknown names, each holding a 15-digit number (the scan budget bounds it).
- distinct: like adversarial, but the names are new on every request (defeats the name cache).
"""

from __future__ import annotations

import random

__all__ = ["ADVERSARIAL_LINES", "SETS", "distinct_names", "fresh", "wrk_args"]

CLEAN: tuple[tuple[bytes, bytes], ...] = (
    (b"host", b"127.0.0.1:8000"),
    (b"connection", b"keep-alive"),
    (b"sec-ch-ua", b'"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
    (b"sec-ch-ua-mobile", b"?1"),
    (b"sec-ch-ua-platform", b'"Android"'),
    (b"upgrade-insecure-requests", b"1"),
    (
        b"user-agent",
        b"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/124.0.0.0 Mobile Safari/537.36",
    ),
    (
        b"accept",
        b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
        b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    ),
    (b"sec-fetch-site", b"none"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-user", b"?1"),
    (b"sec-fetch-dest", b"document"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en-US;q=0.9,en;q=0.8"),
    (b"cookie", b"session=3f9c2a7be14d4e0c9a1b; consent=1; theme=dark"),
    (b"priority", b"u=0, i"),
)
# UK drama-range numbers (+44 7700 900xxx): flagged by name, never valid to phonenumbers.
CARRIER = (
    *CLEAN,
    (b"x-up-calling-line-id", b"447700900123"),
    (b"x-msisdn", b"447700900456"),
    (b"x-uidh", b"OTgxNTk2NDk0ADJVquRu5NS5+rSbBANlrp+13QL7CXLGsFHpMi4LsUHw"),
)
# Australia's fictional mobile range +61 491 570 006–159 is valid for phonenumbers.
HIDDEN = (*CLEAN, (b"x-foo", b"+61 491 570 006"))

# The same page load from a browser that has been to the site before: ~1 KiB of analytics,
# consent and session cookies (made up, no identifiers). The Cookie marker test reads every byte.
_LONG_COOKIE = (
    b"_ga=GA1.1.1234567890.1732800000; _ga_ABCDEF1234=GS1.1.1732800000.3.1.1732800500.0.0.0; "
    b"_gid=GA1.2.987654321.1732800000; _gcl_au=1.1.1122334455.1732800000; "
    b"_fbp=fb.1.1732800000000.1234567890; ajs_anonymous_id=8d2f6c1e-4b7a-4f0e-9c3d-5a1b2c3d4e5f; "
    b"csrftoken=Zq4xV7nR2pL9sK3mT8wY1bC6dF0gH5jE; sessionid=k2j4h6g8f0d1s3a5p7o9i2u4y6t8r0e1; "
    b"cf_clearance=Xk9mPq2Lr7Vt4Ws1Yz8Nb3Cd6Fg0Hj5K.Tm2Qp7Rs4Uv9Wx1Yz3Ab6Cd8Ef0-1732800000-1.2.1.1-"
    b"aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNo; "
    b"OptanonConsent=isGpcEnabled=0&datestamp=Thu+Nov+28+2024+12%3A00%3A00+GMT%2B0000&version="
    b"202409.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId=0f1e2d3c-4b5a-6978-8796-"
    b"a5b4c3d2e1f0&interactionCount=1&landingPath=NotLandingPage&groups=C0001%3A1%2CC0002%3A1%2C"
    b"C0003%3A1%2CC0004%3A0&AwaitingReconsent=false; "
    b"OptanonAlertBoxClosed=2024-11-28T12:00:00.000Z; theme=dark; lang=en-GB; consent=1; "
    b"_hjSessionUser_123456=eyJpZCI6IjBmMWUyZDNjLTRiNWEtNjk3O"
    b"C04Nzk2LWE1YjRjM2QyZTFmMCIsImNyZWF0ZWQiOjE3MzI4MDAwMDAwMDAsImV4aXN0aW5nIjp0cnVlfQ=="
)
COOKIES = tuple((name, _LONG_COOKIE if name == b"cookie" else value) for name, value in CLEAN)

ADVERSARIAL_LINES = 1000
_random = random.Random(6)
ADVERSARIAL = tuple(
    (f"x-h-{i:04d}".encode(), str(_random.randrange(10**14, 10**15)).encode())
    for i in range(ADVERSARIAL_LINES)
)

SETS: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "clean": CLEAN,
    "cookies": COOKIES,
    "carrier": CARRIER,
    "hidden": HIDDEN,
    "adversarial": ADVERSARIAL,
}
LABELS = {
    "clean": "clean mobile browser (16 headers)",
    "cookies": "the same with 1 KiB of cookies",
    "carrier": "+ 3 carrier headers (removed)",
    "hidden": "+ number in an unknown header",
    "adversarial": "1,000 headers of 15-digit numbers",
    "distinct": "1,000 never-seen names (cache defeated)",
}

_serial = 0


def distinct_names() -> tuple[tuple[bytes, bytes], ...]:
    """1,000 adversarial lines whose names were never sent before (a fresh serial per call)."""
    global _serial
    _serial += 1
    return tuple(
        (f"x-{_serial:x}-{i:04d}".encode(), value) for i, (_, value) in enumerate(ADVERSARIAL)
    )


def fresh(lines: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """A header list of new bytes objects, as a server builds per request (no cached hashes)."""
    return [(bytes(bytearray(name)), bytes(bytearray(value))) for name, value in lines]


def wrk_args(name: str) -> list[str]:
    """`-H` arguments for wrk (it adds Host itself; ours would replace it with the wrong port)."""
    args = []
    for key, value in SETS[name]:
        if key == b"host":
            continue
        args += ["-H", f"{key.decode()}: {value.decode()}"]
    return args
