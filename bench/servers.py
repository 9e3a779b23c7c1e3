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
``<workdir>/server.log``; ``start`` returns once the port accepts connections. A
cluster run (``[cluster]`` in the workload file) starts Parsec as ``parsec serve
--workers N --broker <redis>`` with the run's key prefix in ``PARSEC_BROKER_KEY_PREFIX``,
and python-socketio as ``socketio_server --workers N --redis <redis>`` with the prefix
as its channel: a supervisor and N workers on one port (SO_REUSEPORT); ``start`` then
also waits until every worker listens. The process group is stopped as a whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.cluster import ClusterRun
from bench.loadgen.sockets import listening_processes
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
    scales_out: bool = False
    """Whether it runs as several workers sharing Redis (a ``[cluster]`` workload)."""

    def command(
        self, port: int, workdir: Path, keys: Secrets, cluster: ClusterRun | None = None
    ) -> list[str]:
        if cluster is not None and not self.scales_out:
            raise ServerError(f"{self.name} does not run as workers sharing Redis")
        if self.module is not None:
            peer = [sys.executable, "-m", self.module, "--port", str(port)]
            peer += ["--secret", keys.hmac_secret]
            if cluster is not None:
                peer += ["--workers", str(cluster.workers), "--redis", cluster.redis_url]
                peer += ["--redis-channel", cluster.channel]
            return peer
        script = Path(sys.executable).with_name("parsec")
        head = [str(script)] if script.exists() else [sys.executable, "-m", "parsec"]
        serve = [*head, "serve", "--config", str(PARSEC_CONFIG), "--addr", f"{HOST}:{port}"]
        serve += ["--state-dir", str(workdir / "state")]
        if cluster is not None:
            serve += ["--workers", str(cluster.workers), "--broker", cluster.redis_url]
        return serve

    def environment(self, cluster: ClusterRun | None) -> dict[str, str]:
        """The server's environment: the runner's, plus Parsec's key prefix, and
        Parsec's log level ``warning`` unless the runner sets ``PARSEC_LOG_LEVEL`` (a
        logging pair: ``PARSEC_LOG_LEVEL=info python -m bench run …``)."""
        env = dict(os.environ)
        if self.module is None:
            env.setdefault("PARSEC_LOG_LEVEL", "warning")
        if cluster is not None and self.module is None:
            env["PARSEC_BROKER_KEY_PREFIX"] = cluster.prefix
        return env


SERVERS: dict[str, ServerKind] = {
    "parsec": ServerKind(
        "parsec", "centrifuge", None, "/api/publish", "/api/batch", api_key=True, scales_out=True
    ),
    "socketio": ServerKind(
        "socketio", "socketio", "bench.peers.socketio_server", "/publish", scales_out=True
    ),
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
    """One server process (with its workers, in a process group of its own); a context
    manager that stops it (SIGTERM, then SIGKILL to the whole group)."""

    def __init__(
        self, kind: ServerKind, workdir: Path, keys: Secrets, cluster: ClusterRun | None = None
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.keys = keys
        self.workers = 1 if cluster is None else cluster.workers
        self.log_path = workdir / "server.log"
        command = kind.command(self.port, workdir, keys, cluster)
        workdir.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=kind.environment(cluster),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can end every worker
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
            workers=self.workers,
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
            if self._listening():
                return
            time.sleep(0.05)  # not listening yet: poll again shortly
        raise ServerError(
            f"{self.kind.name} did not listen within {READY_TIMEOUT_S}s"
            + ("" if self.workers == 1 else f" with {self.workers} workers")
            + f":\n{self.log_tail()}"
        )

    def _listening(self) -> bool:
        """Whether the port accepts connections (and every worker listens on it)."""
        try:
            socket.create_connection((HOST, self.port), timeout=1.0).close()
        except OSError:
            return False
        if self.workers == 1:
            return True
        try:
            return len(listening_processes(self.process.pid, self.port)) >= self.workers
        except OSError:
            return False  # it exited meanwhile: the caller's poll() sees it

    def stop(self) -> None:
        """Stop the process and its workers (idempotent): SIGTERM, then SIGKILL to the
        process group after ``STOP_TIMEOUT_S``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if not _exits_within(self.process.pid, STOP_TIMEOUT_S):
                self._kill_group()
                _exits_within(self.process.pid, STOP_TIMEOUT_S)
            # Until it is reaped, the exited leader keeps its group id from being reused:
            # whatever is left in the group is one of its workers.
            self._kill_group()
            self.process.wait()
        self._log.close()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is empty
            os.killpg(self.process.pid, signal.SIGKILL)


def _exits_within(pid: int, seconds: float) -> bool:
    """Whether child ``pid`` exits within ``seconds``, leaving it unreaped."""
    deadline = time.monotonic() + seconds
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)  # polling the exit, which has no deadline-aware wait
    return True
