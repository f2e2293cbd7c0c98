"""Checks on guard/data/mcc.json, the ITU-T E.212 Mobile Country Code list."""

import json
from pathlib import Path

import pytest

MCC_PATH = Path(__file__).parents[1] / "guard" / "data" / "mcc.json"


def _load() -> dict:
    return json.loads(MCC_PATH.read_text(encoding="utf-8"))


def _mccs() -> dict[str, str]:
    return _load()["mccs"]


def test_top_level_shape() -> None:
    data = _load()
    assert set(data) == {"source", "notes", "mccs"}
    assert isinstance(data["notes"], str)
    assert data["notes"]


def test_source_names_itu_t_e212() -> None:
    assert "ITU-T E.212" in _load()["source"]


def test_keys_are_three_digit_strings_in_range() -> None:
    mccs = _mccs()
    for key in mccs:
        assert isinstance(key, str)
        assert len(key) == 3
        assert key.isdigit()
        assert 200 <= int(key) <= 999


def test_keys_are_sorted_and_names_non_empty() -> None:
    mccs = _mccs()
    assert list(mccs) == sorted(mccs)
    assert all(isinstance(name, str) and name.strip() for name in mccs.values())


def test_count_is_plausible() -> None:
    assert 230 <= len(_mccs()) <= 245


@pytest.mark.parametrize("code", ["001", "999"])
def test_test_and_internal_codes_absent(code: str) -> None:
    assert code not in _mccs()


@pytest.mark.parametrize(
    ("code", "country"),
    [
        ("202", "Greece"),
        ("204", "Netherlands"),
        ("208", "France"),
        ("222", "Italy"),
        ("234", "United Kingdom"),
        ("235", "United Kingdom"),
        ("250", "Russian Federation"),
        ("262", "Germany"),
        ("302", "Canada"),
        ("310", "United States"),
        ("316", "United States"),
        ("404", "India"),
        ("405", "India"),
        ("440", "Japan"),
        ("450", "Korea (Republic of)"),
        ("460", "China"),
        ("505", "Australia"),
        ("655", "South Africa"),
        ("724", "Brazil"),
    ],
)
def test_well_known_mcc(code: str, country: str) -> None:
    assert _mccs()[code] == country


def test_us_block_and_international_shared_code_present() -> None:
    mccs = _mccs()
    for code in range(310, 317):
        assert str(code) in mccs
    assert "901" in mccs
