"""Helpers of the NATS-only tests.

They use the real NATS on 127.0.0.1:4222 (``PARSEC_TEST_NATS_URL`` overrides it) or
nats-server processes of their own on free ports (``private_servers``); each test
publishes under a subject prefix of its own (``unique_prefix``), so tests never hear
each other, and NATS keeps nothing of theirs. A missing NATS or nats-server binary
fails these tests: they never skip.

(No conftest.py here: mypy would take it for a second module named ``conftest``
beside tests/redis/conftest.py; each test module wraps these helpers in fixtures.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from parsec.backends.nats import NatsBroker, NatsConnection, NatsController
from parsec.backends.testing import BrokerRecorder as Recorder
from parsec.backends.testing import Delivered
from parsec.engine.broker import BrokerEventHandler
from parsec.engine.types import Publication

__all__ = [
    "NATS_URL",
    "WAIT_SECONDS",
    "Delivered",
    "MakeBroker",
    "MakeController",
    "NatsServer",
    "Nodes",
    "Recorder",
    "StartServer",
    "nats_nodes",
    "payload",
    "private_servers",
    "publication",
    "unique_prefix",
]

NATS_URL = os.environ.get("PARSEC_TEST_NATS_URL", "nats://127.0.0.1:4222")
"""The shared NATS (``PARSEC_TEST_NATS_URL`` overrides it)."""
WAIT_SECONDS = 10.0
READY_LINE = b"Server is ready"

MakeBroker = Callable[..., Awaitable[NatsBroker]]
"""``await make(handler, url=…, **broker_kwargs)``: a started broker, one node."""
MakeController = Callable[..., NatsController]
"""``make(node_id, url=…, **controller_kwargs)``: a controller not started yet."""
Nodes = tuple[MakeBroker, MakeController]
StartServer = Callable[[], Awaitable["NatsServer"]]
"""``await start()``: a private nats-server, running."""


def unique_prefix() -> str:
    """A subject prefix no other test uses."""
    return f"parsec-test-{uuid.uuid4().hex[:12]}"


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


def nats_server_binary() -> str:
    """The nats-server executable; a missing one fails the test (never skips it)."""
    found = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None
    )
    if found is None:
        raise RuntimeError("nats-server is not installed (apt-get install nats-server)")
    return found


class NatsServer:
    """A nats-server of the test's own on a free loopback port; ``stop`` and ``start``
    again keep the port, as a production restart would."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        self._process = process = await asyncio.create_subprocess_exec(
            nats_server_binary(),
            *("-a", "127.0.0.1", "-p", str(self.port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen = b""
        async with asyncio.timeout(WAIT_SECONDS):
            while READY_LINE not in seen:
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError(f"nats-server exited before it was ready:\n{seen!r}")
                seen += line
        self._drain = asyncio.create_task(self._read_to_end(process.stdout))

    async def stop(self) -> None:
        """Kill the server (SIGKILL: no goodbye to its clients) and wait until it has
        exited. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if self._drain is not None:
            await self._drain

    @staticmethod
    async def _read_to_end(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass


@contextlib.asynccontextmanager
async def private_servers() -> AsyncIterator[StartServer]:
    """Starts private nats-servers (``await start()``); kills them all on exit."""
    servers: list[NatsServer] = []

    async def start() -> NatsServer:
        server = NatsServer()
        servers.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


@contextlib.asynccontextmanager
async def nats_nodes(prefix: str) -> AsyncIterator[Nodes]:
    """Makers of brokers (started with a handler) and controllers, one NATS connection
    each (one node each), on subjects under ``prefix``; all are closed on exit."""
    made: list[NatsBroker | NatsController] = []

    async def broker(
        handler: BrokerEventHandler, *, url: str = NATS_URL, **kwargs: Any
    ) -> NatsBroker:
        connection = NatsConnection(url)
        instance = NatsBroker(connection, prefix=prefix, release_connection=True, **kwargs)
        made.append(instance)
        await instance.start(handler)
        return instance

    def controller(node_id: str, *, url: str = NATS_URL, **kwargs: Any) -> NatsController:
        connection = NatsConnection(url)
        instance = NatsController(
            connection, node_id, prefix=prefix, release_connection=True, **kwargs
        )
        made.append(instance)
        return instance

    try:
        yield broker, controller
    finally:
        for instance in reversed(made):
            await instance.aclose()
