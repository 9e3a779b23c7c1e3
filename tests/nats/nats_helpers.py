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

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from server_processes import ServerProcess

from parsec.backends.nats import NatsBroker, NatsConnection, NatsController
from parsec.backends.testing import BrokerRecorder as Recorder
from parsec.backends.testing import Delivered, payload, publication
from parsec.engine.broker import BrokerEventHandler

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


def nats_server_binary() -> str:
    """The nats-server executable; a missing one fails the test (never skips it)."""
    found = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None
    )
    if found is None:
        raise RuntimeError("nats-server is not installed (apt-get install nats-server)")
    return found


class NatsServer(ServerProcess):
    """A nats-server of the test's own on a free loopback port; ``stop`` (SIGKILL: no
    goodbye to its clients) and ``start`` again keep the port."""

    name = "nats-server"
    ready_line = b"Server is ready"
    stop_signal = signal.SIGKILL

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port)]


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
