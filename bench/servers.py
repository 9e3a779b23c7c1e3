"""The servers under test and how each is started, reached and stopped.

=============== =============================================== =========================
server          process                                         publishes through
=============== =============================================== =========================
``parsec``      ``parsec serve -c configs/parsec.toml``         client ``publish``;
                                                                ``/api/publish``, ``batch``
``socketio``    ``python -m bench.peers.socketio_server``       ``publish`` event;
                                                                ``POST /publish``
``broadcaster`` ``python -m bench.peers.broadcaster_server``    ``publish`` command;
                                                                ``POST /publish``
``limit``       ``python -m bench.peers.limit_server``          ``p <channel> <data>``
=============== =============================================== =========================

Each run gets a fresh process on a free loopback port, with its output in
``<workdir>/server.log``; ``start`` returns once the port accepts connections.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.loadgen.spec import AdapterName, Target

__all__ = [
    "PARSEC_CONFIG",
    "SERVERS",
    "RunningServer",
    "ServerError",
    "ServerKind",
    "free_port",
    "secrets",
]

BENCH_DIR = Path(__file__).parent
REPO_ROOT = BENCH_DIR.parent
PARSEC_CONFIG = BENCH_DIR / "configs" / "parsec.toml"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class ServerError(Exception):
    """A server exited or did not listen in time; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """The HS256 token secret and API key every server of a run shares (Parsec's
    ``configs/parsec.toml`` is the source)."""

    hmac_secret: str
    api_key: str


def secrets() -> Secrets:
    config = tomllib.loads(PARSEC_CONFIG.read_text())
    return Secrets(config["auth"]["token_hmac_secret"], config["api"]["key"])


@dataclass(frozen=True, slots=True)
class ServerKind:
    name: str
    adapter: AdapterName
    module: str | None
    """The peer's ``python -m`` module; None for Parsec (``parsec serve``)."""
    publish_path: str | None = None
    batch_path: str | None = None
    api_key: bool = False

    def command(self, port: int, workdir: Path, keys: Secrets) -> list[str]:
        if self.module is not None:
            return [
                sys.executable,
                "-m",
                self.module,
                "--port",
                str(port),
                "--secret",
                keys.hmac_secret,
            ]
        script = Path(sys.executable).with_name("parsec")
        head = [str(script)] if script.exists() else [sys.executable, "-m", "parsec"]
        return [
            *head,
            "serve",
            "--config",
            str(PARSEC_CONFIG),
            "--addr",
            f"{HOST}:{port}",
            "--state-dir",
            str(workdir / "state"),
            "--log-level",
            "warning",
        ]


SERVERS: dict[str, ServerKind] = {
    "parsec": ServerKind("parsec", "centrifuge", None, "/api/publish", "/api/batch", api_key=True),
    "socketio": ServerKind("socketio", "socketio", "bench.peers.socketio_server", "/publish"),
    "broadcaster": ServerKind(
        "broadcaster", "broadcaster", "bench.peers.broadcaster_server", "/publish"
    ),
    "limit": ServerKind("limit", "limit", "bench.peers.limit_server"),
}


def free_port() -> int:
    """A loopback TCP port nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """One server process; a context manager that stops it (SIGTERM, then SIGKILL)."""

    def __init__(self, kind: ServerKind, workdir: Path, keys: Secrets) -> None:
        self.kind = kind
        self.port = free_port()
        self.keys = keys
        self.log_path = workdir / "server.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            kind.command(self.port, workdir, keys),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> RunningServer:
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def target(self) -> Target:
        """How the load generator reaches this server."""
        return Target(
            adapter=self.kind.adapter,
            host=HOST,
            port=self.port,
            pid=self.process.pid,
            hmac_secret=self.keys.hmac_secret,
            publish_path=self.kind.publish_path,
            batch_path=self.kind.batch_path,
            api_key=self.keys.api_key if self.kind.api_key else None,
        )

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.kind.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                socket.create_connection((HOST, self.port), timeout=1.0).close()
            except OSError:
                time.sleep(0.05)  # not listening yet: poll again shortly
            else:
                return
        raise ServerError(f"{self.kind.name} did not listen within {READY_TIMEOUT_S}s")

    def stop(self) -> None:
        """Stop the process (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()
