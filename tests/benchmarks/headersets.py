"""The request header sets every suite sends. All numbers are fictional (see the brief's rules).

- clean: what Chrome on Android sends for a page load (16 lines).
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

ADVERSARIAL_LINES = 1000
_random = random.Random(6)
ADVERSARIAL = tuple(
    (f"x-h-{i:04d}".encode(), str(_random.randrange(10**14, 10**15)).encode())
    for i in range(ADVERSARIAL_LINES)
)

SETS: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "clean": CLEAN,
    "carrier": CARRIER,
    "hidden": HIDDEN,
    "adversarial": ADVERSARIAL,
}
LABELS = {
    "clean": "clean mobile browser (16 headers)",
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
