"""Helpers of the Redis-only tests: private redis-server processes, an event recorder
and a reconnect gate the test opens by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis_keys import REDIS_URL
from server_processes import ServerProcess

from parsec.backends.testing import BrokerRecorder as Recorder
from parsec.backends.testing import Delivered, payload, publication
from parsec.testing import free_port

__all__ = [
    "REDIS_URL",
    "ClusterNodeServer",
    "Delivered",
    "Gate",
    "Recorder",
    "RedisServer",
    "SentinelServer",
    "payload",
    "publication",
]


class RedisServer(ServerProcess):
    """A redis-server of the test's own on a free loopback port.

    ``stop`` and ``start`` again keep the port; with ``persistent`` the data survives
    too (append-only file, fsync on every write), as a production restart would.
    """

    name = "redis-server"
    ready_line = b"Ready to accept connections"

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        super().__init__()
        self._directory = directory
        self._persistent = persistent

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._directory)),
            *("--save", "", "--logfile", "", "--appendfsync", "always"),
            *("--appendonly", "yes" if self._persistent else "no"),
        ]


class ClusterNodeServer(RedisServer):
    """A redis-server with cluster mode on, not yet part of any cluster; its cluster bus
    listens on a free port of its own (the default, port + 10000, may not be free)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, persistent=False)
        self.bus_port = free_port()

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            *("--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)),
            *("--cluster-config-file", str(self._directory / "nodes.conf")),
        ]


class SentinelServer(ServerProcess):
    """A Redis Sentinel (``redis-server <conf> --sentinel``) on a free loopback port,
    monitoring the master at ``master_port`` as ``service`` with a quorum of 1. Its
    config file (which Sentinel rewrites) lives in ``directory``."""

    name = "redis-sentinel"
    ready_line = b"+monitor master"

    def __init__(self, directory: Path, *, master_port: int, service: str) -> None:
        super().__init__()
        self._config = directory / "sentinel.conf"
        self._config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
        )

    def argv(self) -> list[str]:
        return ["redis-server", str(self._config), "--sentinel", "--logfile", ""]


class Gate:
    """A reconnect backoff that holds every reconnect until the test opens the gate.

    ``lost`` is set when the broker noticed its connection was gone.
    """

    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self, attempt: int) -> None:
        self.lost.set()
        await self.open.wait()
