"""Real servers under `wrk` load: start uvicorn stacks, run wrk, read server CPU time."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tests.support import Server, clean_env, free_port, serve

from . import headersets

__all__ = ["WRK_PACKAGE", "Run", "cpu_seconds", "servers", "uvicorn_argv", "wrk", "wrk_path"]

WRK_PACKAGE = "wrk (Debian/Ubuntu package: apt-get install -y wrk)"
_TICK = os.sysconf("SC_CLK_TCK")
_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(f"the http and probe suites need wrk: install {WRK_PACKAGE}")
    return path


def uvicorn_argv(target: str, port: int) -> list[str]:
    """One worker, no access log, httptools, uvloop: the fastest stock uvicorn configuration."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--lifespan",
        "on",
        "--log-level",
        "warning",
    ]


@contextlib.contextmanager
def servers(
    targets: dict[str, str], env: Mapping[str, str] | None = None
) -> Iterator[dict[str, Server]]:
    """Every target (name -> `module:factory`) served at once, each on its own free port."""
    with contextlib.ExitStack() as stack:
        running = {}
        for name, target in targets.items():
            port = free_port()
            running[name] = stack.enter_context(
                serve(uvicorn_argv(target, port), port=port, env=clean_env(**(env or {})))
            )
        yield running


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Run:
    requests: int
    seconds: float
    cpu: float  # server CPU seconds during the run

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6


def wrk(server: Server, header_set: str, duration: int, connections: int, path: str = "/") -> Run:
    argv: Sequence[str] = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        *headersets.wrk_args(header_set),
        f"{server.url}{path}",
    ]
    before = cpu_seconds(server.process.pid)
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    cpu = cpu_seconds(server.process.pid) - before
    out = done.stdout
    found = _REQUESTS.search(out)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}{done.stderr}")
    failed = _NON_2XX.search(out)
    if failed:
        raise RuntimeError(f"{failed.group(1)} non-2xx responses from {server.url}:\n{out}")
    sockets = _SOCKET.search(out)
    if sockets and any(int(n) for n in sockets.groups()[:3]):
        raise RuntimeError(f"socket errors against {server.url}:\n{out}")
    seconds = float(found.group(2)) * _UNIT[found.group(3)]
    return Run(int(found.group(1)), seconds, cpu)
