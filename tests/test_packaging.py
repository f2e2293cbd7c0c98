"""Packaging: the declared dependency floors are the ones CI tests (`.ci/floors.txt`), and the
wheel `pip install .` builds holds what the guard needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

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


_FROM_THE_WHEEL = """
import asyncio, sys
# Not the checkout's editable install, whose finder would answer for guard's submodules.
sys.meta_path = [f for f in sys.meta_path if "editable" not in str(getattr(f, "__module__", ""))]
import guard
from prometheus_client import CollectorRegistry
from guard import GuardConfig, PrivacyGuard

assert guard.__file__.startswith(sys.argv[1]), guard.__file__
import guard.speedups
if sys.argv[2] == "c":
    assert guard.speedups.compiled.__file__.startswith(sys.argv[1]), guard.speedups.compiled
else:
    assert guard.speedups.compiled is None
seen = []

async def app(scope, receive, send):
    seen.append([name for name, _ in scope["headers"]])

async def main():
    g = PrivacyGuard(app, config=GuardConfig(), registry=CollectorRegistry())
    headers = [(b"x-up-calling-line-id", b"447700900123"), (b"x-contact", b"+61 491 570 006"),
               (b"x-acme-data", b"505010000000042"), (b"accept", b"*/*")]
    await g({"type": "http", "path": "/", "method": "GET", "headers": headers}, None, None)

asyncio.run(main())
print("app saw", seen)
"""


def _wheel(tmp_path: Path, **env: str) -> Path:
    """A wheel built from a copy of the checkout (a stale build/ directory would lend the wheel
    files it lacks), and unpacked to `tmp_path / "site"`; `env` adds to the build's environment."""
    source = tmp_path / "source"
    # Built extensions are outputs (one per interpreter that installed the checkout), not sources.
    ignored = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    shutil.copytree(ROOT / "guard", source / "guard", ignore=ignored)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("privacy_guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    return wheel


def _run_from(tmp_path: Path, clean_path: str) -> None:
    """Run the guard from the unpacked wheel; `clean_path`: "c" or "python", which must serve."""
    site = str(tmp_path / "site")
    ran = subprocess.run(
        [sys.executable, "-c", _FROM_THE_WHEEL, site, clean_path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout, whose guard/ would shadow the wheel's
        # The wheel's own clean path is what is checked, whatever this run uses.
        env={**os.environ, "PYTHONPATH": site, "PRIVACY_GUARD_SPEEDUPS": "on"},
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # The catalog (data/catalog.json) took one line, the value rule the others: a phone number
    # (phonenumbers) and an IMSI (data/mcc.json).
    assert ran.stdout.strip().splitlines()[-1] == "app saw [[b'accept']]"


@pytest.mark.slow
def test_the_wheel_carries_everything_the_guard_loads(tmp_path: Path) -> None:
    """`pip install .` installs a built wheel, not the checkout the other tests import: build
    one, check it holds every module and data file and the licence, and run the guard from it."""
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "guard").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".so", ".pyd")
    }
    assert shipped <= names, shipped - names
    # The C clean path, built for this interpreter (a compiler is on every machine CI runs on).
    assert "guard/_speedups" + sysconfig.get_config_var("EXT_SUFFIX") in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    _run_from(tmp_path, "c")


@pytest.mark.slow
def test_without_a_compiler_the_wheel_builds_and_serves_on_the_python_definitions(
    tmp_path: Path,
) -> None:
    """The C extension is optional: a compiler that fails leaves it out, and nothing else."""
    wheel = _wheel(tmp_path, CC="false", LDSHARED="false")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [name for name in names if name.endswith((".so", ".pyd"))]
    assert {"guard/harmless.py", "guard/speedups.py", "guard/middleware.py"} <= names
    _run_from(tmp_path, "python")
