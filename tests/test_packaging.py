"""The declared dependency floors are the ones CI tests (`.ci/floors.txt`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)$")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = _FLOOR.match(requirement.replace(" ", ""))
        assert match, f"{requirement!r}: a runtime dependency needs a plain >= floor to test"
        floors[_name(match[1])] = match[2]
    return floors


def _pinned() -> dict[str, str]:
    lines = (ROOT / ".ci" / "floors.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {_name(name): version for name, version in pins}


def _release(version: str) -> tuple[int, ...]:
    numbers = [int(part) for part in version.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def test_ci_tests_every_runtime_dependency_at_its_declared_floor() -> None:
    declared, pinned = _declared(), _pinned()
    assert pinned.keys() == declared.keys()
    for name, floor in declared.items():
        assert _release(pinned[name]) == _release(floor), name
