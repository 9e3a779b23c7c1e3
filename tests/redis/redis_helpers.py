"""Helpers of the Redis-only tests: private redis-server processes, an event recorder
and a reconnect gate the test opens by hand."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from server_processes import ServerProcess

from parsec.backends.testing import BrokerRecorder as Recorder
from parsec.backends.testing import Delivered, payload, publication

__all__ = [
    "REDIS_URL",
    "Delivered",
    "Gate",
    "Recorder",
    "RedisServer",
    "payload",
    "publication",
]

REDIS_URL = os.environ.get("PARSEC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
"""The shared Redis (``PARSEC_TEST_REDIS_URL`` overrides it)."""


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
