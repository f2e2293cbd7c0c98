"""The packaged data, loaded once into frozen lookups.

`data/catalog.json` is derived from the sourced research corpus by `guard.data.derive`;
`data/mcc.json` is the ITU-T E.212 list of mobile country codes used by the IMSI value rule.
Nothing here changes after import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "CATALOG",
    "CATALOG_VERSION",
    "KINDS",
    "LOW_RISK",
    "MCCS",
    "Entry",
    "fold",
    "shown",
]

KINDS = (
    "msisdn",
    "imsi",
    "imei",
    "subscriber_token",
    "device_id",
    "location",
    "network",
    "session",
    "account",
    "other",
)

_FOLD = str.maketrans({"_": "-", ".": "-"})
_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SHOWN_MAX = 64
_SHOWN_READ = 2 * SHOWN_MAX  # how much of a name `shown` reads first


def fold(name: str) -> str:
    """DESIGN's name folding: `X_MSISDN`, `x.msisdn` and ` x-msisdn ` are one name."""
    return name.strip().lower().translate(_FOLD)


def shown(name: str) -> str:
    """A client-sent name made safe to show: folded, control bytes dropped, digits masked, capped.

    A client can put a phone number, a CR/LF or a whole page of HTML into a header name.

    Only as much of the name is read as the capped result needs: folding, dropping and masking
    a prefix of the name gives a prefix of what the whole name gives (a digit run cut short is
    still one `#`, trailing whitespace the cut exposes only shortens it), so once a prefix alone
    yields more than SHOWN_MAX characters the result is decided. The one exception is `Σ`,
    which `str.lower` turns into `ς` or `σ` by what follows it: a prefix holding one is not used.
    A name of digit runs or control bytes may need more of itself: the prefix grows fourfold.
    """
    size = _SHOWN_READ
    while True:
        part = name[:size]
        safe = _DIGITS.sub("#", _CONTROL.sub("", fold(part)))
        if len(part) == len(name):
            break
        if len(safe) > SHOWN_MAX and "\u03a3" not in part:
            break
        size *= 4
    return safe if len(safe) <= SHOWN_MAX else safe[: SHOWN_MAX - 1] + "…"


class Entry(NamedTuple):
    name: str  # folded
    kind: str
    risk: str  # high, medium (identifying) or low (allow-listed)
    confidence: str
    sources: int


def _load(name: str) -> Any:
    return json.loads(files("guard").joinpath("data", name).read_text(encoding="utf-8"))


def _entries(rows: list[dict[str, Any]]) -> dict[str, Entry]:
    table = {}
    for row in rows:
        entry = Entry(
            fold(row["name"]), row["kind"], row["risk"], row["confidence"], row["sources"]
        )
        for name in [row["name"], *row.get("aliases", ())]:
            table[fold(name)] = entry
    return table


_catalog = _load("catalog.json")

CATALOG_VERSION: str = _catalog["version"]
CATALOG: Mapping[str, Entry] = MappingProxyType(_entries(_catalog["identifying"]))
LOW_RISK: Mapping[str, Entry] = MappingProxyType(_entries(_catalog["low_risk"]))
MCCS: frozenset[str] = frozenset(_load("mcc.json")["mccs"])

del _catalog
