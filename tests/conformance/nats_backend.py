"""The NATS backend factory of the conformance suite (the real NATS, never a fake).

Every broker and controller is one node with a connection of its own to the NATS on
127.0.0.1:4222 (``PARSEC_TEST_NATS_URL`` overrides it), on subjects under the test's
unique prefix; NATS keeps nothing, so closing the factory leaves nothing behind. The
NATS backends implement the Broker and the Controller only, without history or
idempotency (``features``). A missing NATS fails the tests that use this factory.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import ClassVar

from parsec.backends.nats import NatsBroker, NatsConnection, NatsController
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller

from .factories import PartialFactory

__all__ = ["NATS_URL", "NatsBackend"]

NATS_URL = os.environ.get("PARSEC_TEST_NATS_URL", "nats://127.0.0.1:4222")
"""The NATS the tests use (``PARSEC_TEST_NATS_URL`` overrides it)."""


class NatsBackend(PartialFactory):
    """NATS implementations of the Broker and Controller contracts, one connection per
    instance (one node each), all on one subject prefix."""

    contracts: ClassVar[frozenset[str]] = frozenset({"broker", "controller"})
    """The contracts this factory makes; conftest deselects the tests of the others."""
    features: ClassVar[frozenset[str]] = frozenset()
    """Core NATS keeps no history and shares no state: no history, no idempotency."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._skew = 0.0
        self._brokers: list[NatsBroker] = []
        self._controllers: list[NatsController] = []
        self._closed = False

    def broker(self) -> Broker:
        broker = NatsBroker(_connection(), prefix=self._prefix, release_connection=True)
        self._brokers.append(broker)
        return broker

    def controller(self) -> Controller:
        controller = NatsController(
            _connection(),
            f"node-{uuid.uuid4().hex[:8]}",
            prefix=self._prefix,
            release_connection=True,
            clock=self._monotonic,
        )
        self._controllers.append(controller)
        return controller

    def now(self) -> float:
        return time.time() + self._skew

    async def advance(self, seconds: float) -> None:
        """Move the clock node reports are aged with (NATS itself keeps no TTLs)."""
        self._skew += seconds

    async def settle(self) -> None:
        """Return once every started broker's sends reached NATS and every started
        controller has handled what NATS delivered to it before the call."""
        for broker in self._brokers:
            await broker.sync()
        for controller in self._controllers:
            await controller.sync()

    async def aclose(self) -> None:
        """Close every instance (and with it its connection). Idempotent."""
        if self._closed:
            return
        self._closed = True
        controllers, self._controllers = self._controllers, []
        brokers, self._brokers = self._brokers, []
        for controller in controllers:
            await controller.aclose()
        for broker in brokers:
            await broker.aclose()

    def _monotonic(self) -> float:
        return time.monotonic() + self._skew


def _connection() -> NatsConnection:
    return NatsConnection(NATS_URL, name="parsec-conformance")
