"""Helpers for tests that start real processes: free ports, servers killed by PID, strict skips."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Set by .ci/run: a missing external tool is then a failure, not a skip. (Not a PRIVACY_GUARD_*
# name: the guard rejects unknown variables of its own prefix.)
STRICT = os.environ.get("GUARD_CI_STRICT") == "1"


def require_tool(name: str) -> str:
    """Path of an external tool (prometheus, promtool, npm, nginx, …); skip or fail if absent."""
    path = shutil.which(name) or shutil.which(name, path=str(BIN))
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without PRIVACY_GUARD_* / PROMETHEUS_MULTIPROC_DIR, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PRIVACY_GUARD_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Server:
    """A process started by a test; `output()` is everything it wrote (stdout and stderr)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    url: str = field(init=False)
    final: str | None = field(default=None, init=False)  # the output, once the log is gone

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        if self.final is not None:
            return self.final
        return self.log.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        """Keep the output in memory and remove the log file: a test run leaves no files."""
        self.final = self.output()
        self.log.unlink(missing_ok=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session=True, and all its children, by PID."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextlib.contextmanager
def serve(
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
    wait: bool = True,
) -> Iterator[Server]:
    """Start `argv` (which must listen on 127.0.0.1:`port`), yield it, then kill it by PID."""
    log = Path(tempfile.mkstemp(prefix="guard-server-", suffix=".log")[1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(argv),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else clean_env(),
            cwd=cwd or ROOT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    try:
        if wait and not wait_for_port(port, process, timeout):
            stop(process)
            raise AssertionError(f"{argv[0]} did not listen on {port}:\n{server.output()}")
        yield server
    finally:
        stop(process)
        server.close()
