"""Helpers of the Redis-only tests: private redis-server processes, an event recorder
and a reconnect gate the test opens by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path

import msgspec

from parsec.backends.testing import BrokerRecorder as Recorder
from parsec.backends.testing import Delivered
from parsec.engine.types import Publication

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
READY_LINE = b"Ready to accept connections"
WAIT_SECONDS = 10.0


def publication(value: object) -> Publication:
    """A fresh Publication carrying ``value`` as compact JSON."""
    return Publication(data=msgspec.Raw(json.dumps(value, separators=(",", ":")).encode()))


def payload(pub: Publication) -> object:
    return json.loads(bytes(pub.data))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of the test's own on a free loopback port.

    ``stop`` and ``start`` again keep the port; with ``persistent`` the data survives
    too (append-only file, fsync on every write), as a production restart would.
    """

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.port = free_port()
        self._directory = directory
        self._persistent = persistent
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        self._process = process = await asyncio.create_subprocess_exec(
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._directory)),
            *("--save", "", "--logfile", "", "--appendfsync", "always"),
            *("--appendonly", "yes" if self._persistent else "no"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen = b""
        async with asyncio.timeout(WAIT_SECONDS):
            while READY_LINE not in seen:
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError(f"redis-server exited before it was ready:\n{seen!r}")
                seen += line
        self._drain = asyncio.create_task(self._read_to_end(process.stdout))

    async def stop(self) -> None:
        """Stop the server (SIGTERM) and wait until it has exited. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()
        if self._drain is not None:
            await self._drain

    @staticmethod
    async def _read_to_end(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass


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
