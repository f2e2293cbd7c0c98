"""gunicorn with several uvicorn workers, and one /metrics that counts for all of them.

Run from examples/:   gunicorn -c gunicorn/gunicorn.conf.py starlette_app:app

Each worker is a separate process with its own counters. prometheus-client's multiprocess mode
makes every worker write its counts to files in PROMETHEUS_MULTIPROC_DIR; whichever worker answers
a scrape of /metrics (served by the guard) sums them all, so one scrape shows the whole server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = "127.0.0.1:8000"
workers = 2
worker_class = "uvicorn_worker.UvicornWorker"

# Set here, in the master, so that every worker inherits it before it imports prometheus-client.
_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-multiproc-")
os.environ.setdefault("PRIVACY_GUARD_METRICS_PATH", "/metrics")


def on_starting(server: Any) -> None:
    # prometheus-client requires an empty directory at start: files from an earlier run would
    # add that run's counts to this one's.
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    server.log.info("prometheus multiprocess directory: %s", directory)


def post_worker_init(worker: Any) -> None:
    # Redact what the worker logs, its access lines included: the request line keeps the query
    # string, where a client or a link may have put a number (`/?msisdn=…`). Headers never reach
    # a log line here: the guard removed them before the app ran.
    from guard.logs import configure_logging

    configure_logging()


def child_exit(server: Any, worker: Any) -> None:
    # A dead worker's counters stay in the sums; its live gauges must not.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    server.log.info("worker %s exited: marked dead for prometheus multiprocess", worker.pid)


def on_exit(server: Any) -> None:
    if _OWN_DIRECTORY:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
