"""A peer as several worker processes on one port, the way ``parsec serve --workers N``
runs Parsec: a supervisor starts N copies of the worker command, each binding the port
with SO_REUSEPORT (the kernel spreads new connections among them), passes SIGINT and
SIGTERM on to every worker, and stops the others once one has exited.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from types import FrameType

__all__ = ["reuse_port_socket", "supervise"]

POLL_S = 0.2


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT, for the server to listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def supervise(command: list[str], count: int) -> int:
    """Run ``count`` processes of ``command`` until every one has exited; the largest
    exit status (a signal counts as its number)."""
    workers = [subprocess.Popen(command) for _ in range(count)]

    def forward(signum: int, frame: FrameType | None) -> None:
        _signal_all(workers, signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    stopping = False
    while True:
        codes = [worker.poll() for worker in workers]
        if all(code is not None for code in codes):
            return max(abs(code or 0) for code in codes)
        if not stopping and any(code is not None for code in codes):
            stopping = True  # one worker is gone: the server is no longer whole
            _signal_all(workers, signal.SIGTERM)
        time.sleep(POLL_S)  # the workers' exits are polled, as Parsec's supervisor does


def _signal_all(workers: list[subprocess.Popen[bytes]], signum: int) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signum)
