"""The packaged catalog, row by row: every identifying header removed, every low-risk one kept.

`guard/data/catalog.json` is derived from the research corpus (`shared/corpus/carrier-headers.json`)
by `guard.data.derive`. These tests read the JSON file itself, not the guard's loaded view of it,
and drive the real middleware with each row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingApp, call, http_scope
from prometheus_client import CollectorRegistry

from guard import Finding, GuardConfig, PrivacyGuard
from guard.catalog import fold, shown

ROOT = Path(__file__).parents[1]
CATALOG_PATH = ROOT / "guard" / "data" / "catalog.json"
CORPUS_PATH = Path(__file__).parents[2] / "shared" / "corpus" / "carrier-headers.json"
CATALOG = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))

# DESIGN, "Metrics": the closed set of kinds, and how the corpus's kinds map onto it.
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
CORPUS_KIND = {
    "msisdn": "msisdn",
    "imsi": "imsi",
    "imei": "imei",
    "subscriber-token": "subscriber_token",
    "device-id": "device_id",
    "location-cell": "location",
    "network-info": "network",
}
OTHER_KINDS = ("session", "account", "other")

# A value of the shape each kind is sent in (fictional: UK drama range, documentation IMEI).
VALUE = {
    "msisdn": b"447700900123",
    "imsi": b"234150000000001",
    "imei": b"490154203237518",
}
OTHER_VALUE = b"a1b2c3d4e5f6"
# Low-risk values that look like identifiers: a valid (fictional) Australian mobile number.
NUMBER_LIKE = (b"+61 491 570 006", b"+61491570006", b"61491570006", b"tel:+61-491-570-006")
NEIGHBOURS = [(b"host", b"shop.example.com"), (b"accept", b"*/*")]


def _fold(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _shown(name: str) -> str:
    return re.sub(r"[0-9]+", "#", _fold(name))


def _spellings(row: dict[str, Any]) -> list[str]:
    """The folded wire form, and every spelling the corpus uses for the row."""
    spelled = [_fold(row["name"]), row["name"], *row.get("aliases", ())]
    return list(dict.fromkeys(spelled))


IDENTIFYING = [
    pytest.param(spelling, row, id=spelling)
    for row in CATALOG["identifying"]
    for spelling in _spellings(row)
]
LOW_RISK = [
    pytest.param(spelling, row, id=spelling)
    for row in CATALOG["low_risk"]
    for spelling in _spellings(row)
]


def _guarded(headers: list[tuple[bytes, bytes]]) -> tuple[dict, CollectorRegistry]:
    app, registry = RecordingApp(), CollectorRegistry()
    call(PrivacyGuard(app, config=GuardConfig(), registry=registry), http_scope(headers))
    return app.scope, registry


# --- the data file -----------------------------------------------------------------------------


# DESIGN's folding, spelled out (not recomputed with the module's own constants): the catalog,
# the operator's header lists and every event name depend on it.
FOLDED = [
    ("X_MSISDN", "x-msisdn"),
    ("x.msisdn", "x-msisdn"),
    (" x-msisdn ", "x-msisdn"),
    ("\tX-Up-Calling-Line-Id\r\n", "x-up-calling-line-id"),
    ("X_Nokia.MSISDN", "x-nokia-msisdn"),
]


@pytest.mark.parametrize(("name", "folded"), FOLDED)
def test_fold(name: str, folded: str) -> None:
    assert fold(name) == folded


# What `shown` makes of a client-sent name: no digit, no control byte, at most 64 characters.
SHOWN = [
    ("X-MSISDN-447700900123", "x-msisdn-#"),  # a digit run is one `#`
    ("x-7-7_0", "x-#-#-#"),
    ("x-\r\nset-cookie", "x-set-cookie"),  # CR/LF: a forged line in a log
    ("x-\x7f\x85\x9fname", "x-name"),  # DEL and C1 controls (\x85 is NEL, a line break)
    ("x-" + "a" * 62, "x-" + "a" * 62),  # 64: shown whole
    ("x-" + "a" * 63, "x-" + "a" * 61 + "…"),  # 65: cut to 63 and an ellipsis
    ("x-" + "9" * 500 + "-msisdn", "x-#-msisdn"),
]


@pytest.mark.parametrize(("name", "safe"), SHOWN)
def test_shown(name: str, safe: str) -> None:
    assert shown(name) == safe
    assert len(shown(name)) <= 64


def test_catalog_shape() -> None:
    assert set(CATALOG) >= {"version", "source", "identifying", "low_risk"}
    assert len(CATALOG["identifying"]) >= 100
    assert len(CATALOG["low_risk"]) >= 50


@pytest.mark.parametrize("row", CATALOG["identifying"], ids=lambda row: row["name"])
def test_identifying_row(row: dict[str, Any]) -> None:
    assert row["kind"] in KINDS
    assert row["risk"] in ("high", "medium")
    assert row["sources"] >= 1


@pytest.mark.parametrize("row", CATALOG["low_risk"], ids=lambda row: row["name"])
def test_low_risk_row(row: dict[str, Any]) -> None:
    assert row["kind"] in KINDS
    assert row["risk"] == "low"


def test_no_name_is_both_identifying_and_low_risk() -> None:
    identifying = {_fold(s) for row in CATALOG["identifying"] for s in _spellings(row)}
    low_risk = {_fold(s) for row in CATALOG["low_risk"] for s in _spellings(row)}
    assert not identifying & low_risk


# --- through the middleware --------------------------------------------------------------------


@pytest.mark.parametrize(("spelling", "row"), IDENTIFYING)
def test_identifying_header_removed(spelling: str, row: dict[str, Any]) -> None:
    line = (spelling.encode("latin-1"), VALUE.get(row["kind"], OTHER_VALUE))
    headers = [NEIGHBOURS[0], line, NEIGHBOURS[1]]
    scope, registry = _guarded(headers)
    assert scope["headers"] == NEIGHBOURS
    # The finding names the line as sent (folded, digits masked); the metric, the catalog row.
    finding = Finding(_shown(spelling), row["kind"], "removed", "catalog")
    assert scope["privacy_guard"] == (finding,)
    labels = {"header": _fold(row["name"]), "kind": row["kind"], "action": "removed"}
    assert registry.get_sample_value("privacy_guard_identifiers_total", labels) == 1


@pytest.mark.parametrize(("spelling", "row"), LOW_RISK)
@pytest.mark.parametrize("value", [b"internet", *NUMBER_LIKE])
def test_low_risk_header_kept(spelling: str, row: dict[str, Any], value: bytes) -> None:
    headers = [NEIGHBOURS[0], (spelling.encode("latin-1"), value), NEIGHBOURS[1]]
    scope, _ = _guarded(headers)
    assert scope["headers"] is headers
    assert scope["headers"] == [NEIGHBOURS[0], (spelling.encode("latin-1"), value), NEIGHBOURS[1]]
    assert scope["privacy_guard"] == ()


def test_whole_catalog_in_one_request() -> None:
    identifying = [
        (_fold(row["name"]).encode(), VALUE.get(row["kind"], OTHER_VALUE))
        for row in CATALOG["identifying"]
    ]
    low_risk = [(_fold(row["name"]).encode(), NUMBER_LIKE[0]) for row in CATALOG["low_risk"]]
    # Interleaved, so that order and position both matter.
    headers = [line for pair in zip(identifying, low_risk, strict=False) for line in pair]
    headers += identifying[len(low_risk) :] + low_risk[len(identifying) :]
    scope, _ = _guarded(headers)
    assert scope["headers"] == [line for line in headers if line in low_risk]
    assert len(scope["privacy_guard"]) == len(identifying)
    assert {f.rule for f in scope["privacy_guard"]} == {"catalog"}


# --- the corpus it is derived from -------------------------------------------------------------

needs_corpus = pytest.mark.skipif(
    not CORPUS_PATH.exists(),
    reason=f"the research corpus is not beside the repository ({CORPUS_PATH})",
)


def _corpus() -> list[dict[str, Any]]:
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


@needs_corpus
def test_derive_reproduces_the_packaged_catalog() -> None:
    from guard.data.derive import derive

    assert derive(_corpus()) == CATALOG


@needs_corpus
def test_every_corpus_row_is_represented() -> None:
    by_name = {
        _fold(spelling): row
        for row in CATALOG["identifying"] + CATALOG["low_risk"]
        for spelling in _spellings(row)
    }
    for source in _corpus():
        row = by_name.get(_fold(source["name"]))
        assert row is not None, source["name"]
        assert row["risk"] == source["risk"], source["name"]
        if source["kind"] == "other":
            assert row["kind"] in OTHER_KINDS, source["name"]
        else:
            assert row["kind"] == CORPUS_KIND[source["kind"]], source["name"]


@needs_corpus
def test_catalog_names_come_from_the_corpus() -> None:
    corpus = {_fold(source["name"]) for source in _corpus()}
    for row in CATALOG["identifying"] + CATALOG["low_risk"]:
        assert _fold(row["name"]) in corpus, row["name"]
