"""``parsec serve --workers N``: N processes serving one port, sharing one broker.

The supervisor starts N copies of the same ``parsec serve`` command (the same config,
environment and flags, less ``--workers``), each marked with ``PARSEC_WORKER=<index>``.
Every worker binds the port with SO_REUSEPORT and the kernel spreads connections among
them; they act as one server through the shared broker (Redis). SIGINT / SIGTERM are
passed on to every worker; when one worker exits with an error the others are stopped
and the supervisor exits with that code.

Metrics: the supervisor gives its workers one private ``PROMETHEUS_MULTIPROC_DIR``
(a temporary directory it removes when they have stopped), so that a scrape of
``/metrics`` on any worker shows the whole server (:mod:`parsec.observability.metrics`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType
from typing import Final

__all__ = ["WORKER_ENV", "run_workers", "worker_index"]

WORKER_ENV: Final = "PARSEC_WORKER"
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""Where workers' metric values meet (prometheus-client's multiprocess mode)."""
_POLL: Final = 0.2
_STOP_GRACE: Final = 10.0


def worker_index() -> int | None:
    """This process's worker index, or None when it is not a worker."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value and value.isdigit() else None


def run_workers(count: int, serve_args: Sequence[str]) -> int:
    """Run ``count`` workers of ``parsec serve <serve_args>`` until they stop; the
    worst exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="parsec-metrics-")
    try:
        return _run(count, _without_workers(serve_args), metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(count: int, args: list[str], metrics_dir: str) -> int:
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "parsec", "serve", *args],
            env={**os.environ, WORKER_ENV: str(index), MULTIPROC_ENV: metrics_dir},
        )
        for index in range(count)
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        _signal_all(workers, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _supervise(workers)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(workers: list[subprocess.Popen[bytes]]) -> int:
    while True:
        codes = [worker.poll() for worker in workers]
        if all(code is not None for code in codes):
            return max(abs(code or 0) for code in codes)
        if any(code not in (None, 0) for code in codes):  # one failed: stop the rest
            _signal_all(workers, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_GRACE
            for worker in workers:
                try:
                    worker.wait(max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            return max(abs(int(worker.returncode or 0)) for worker in workers)
        time.sleep(_POLL)


def _signal_all(workers: list[subprocess.Popen[bytes]], signum: int) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signum)


def _without_workers(args: Sequence[str]) -> list[str]:
    """``args`` less ``--workers N`` / ``--workers=N``."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept
