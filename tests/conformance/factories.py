"""Backend factories: how the conformance suite makes instances of one backend.

A factory makes fresh Broker, PresenceManager and Controller instances for one test,
moves the backend's time forward on request, and closes everything it made. Each
backend has one factory class; ``conftest.BACKENDS`` lists them.
"""

from __future__ import annotations

import itertools
from typing import ClassVar, NoReturn, Protocol

from parsec.auth.refresh import MemoryRefreshStore, RefreshStore
from parsec.auth.revocation_store import MemoryRevocationStore, RevocationStore
from parsec.backends.memory import (
    MemoryBroker,
    MemoryControlHub,
    MemoryController,
    MemoryPresenceManager,
)
from parsec.channels.store import ChannelStore, MemoryChannelStore
from parsec.engine.broker import Broker
from parsec.engine.cluster import Cluster
from parsec.engine.controller import Controller
from parsec.engine.presence import PresenceManager
from parsec.sinks.dlq import DLQ, MemoryDLQ

__all__ = ["BackendFactory", "ManualClock", "MemoryBackend", "MemoryClusterBackend", "supports"]

FEATURES = frozenset({"history", "idempotency"})
"""Broker features a conformance test may require (``@pytest.mark.requires``)."""


def supports(factory: object, feature: str) -> bool:
    """Whether a backend factory (class or instance) has ``feature``: one listing
    ``features`` has only those, one without that attribute has them all."""
    if feature not in FEATURES:
        raise ValueError(f"unknown backend feature {feature!r}")
    features: frozenset[str] | None = getattr(factory, "features", None)
    return features is None or feature in features


class ManualClock:
    """A monotonic clock that moves only when ``advance`` is called."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward. Raises ValueError for a negative step."""
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        self._now += seconds


class BackendFactory(Protocol):
    """Makes one test's backend instances and closes them afterwards.

    ``prefix`` passed to a factory's constructor is unique per test: a backend that
    keeps state outside the process stores it under that prefix only.
    """

    def broker(self) -> Broker:
        """A new, not yet started broker (one node's)."""

    def presence(self) -> PresenceManager:
        """A new presence manager (one node's)."""

    def controller(self) -> Controller:
        """A new, not yet started controller (one node's)."""

    def channel_store(self) -> ChannelStore:
        """A new channel store (one node's)."""

    def refresh_store(self) -> RefreshStore:
        """A new refresh-rotation store."""

    def revocation_store(self) -> RevocationStore:
        """A revocation store (one node's); every one this factory makes shares the
        same revocations."""

    def dlq(self) -> DLQ:
        """A new, empty dead-letter queue."""

    def now(self) -> float:
        """The time (unix seconds) every instance currently observes."""

    async def advance(self, seconds: float) -> None:
        """Make every instance observe ``seconds`` of time passing (TTLs run down)."""

    async def settle(self) -> None:
        """Return once everything the instances sent so far has reached its receivers."""

    async def lose_data(self) -> None:
        """Make the shared stores forget everything, as a Redis flushed or restarted
        without persistence does."""

    async def aclose(self) -> None:
        """Close every instance this factory made. Idempotent."""


class MemoryBackend:
    """The in-process backends, all on one ManualClock.

    Delivery is synchronous, so ``settle`` has nothing to wait for. ``prefix`` is
    unused: memory instances share no state with each other.
    """

    def __init__(self, prefix: str) -> None:
        self._clock = ManualClock()
        self._made: list[Broker | PresenceManager | Controller | ChannelStore] = []
        self._revocations = MemoryRevocationStore()

    def broker(self) -> Broker:
        broker = MemoryBroker(clock=self._clock)
        self._made.append(broker)
        return broker

    def presence(self) -> PresenceManager:
        presence = MemoryPresenceManager()
        self._made.append(presence)
        return presence

    def controller(self) -> Controller:
        controller = MemoryController()
        self._made.append(controller)
        return controller

    def channel_store(self) -> ChannelStore:
        store = MemoryChannelStore()
        self._made.append(store)
        return store

    def refresh_store(self) -> RefreshStore:
        return MemoryRefreshStore(clock=self._clock)

    def revocation_store(self) -> RevocationStore:
        return self._revocations

    def dlq(self) -> DLQ:
        return MemoryDLQ()

    def now(self) -> float:
        return self._clock()

    async def advance(self, seconds: float) -> None:
        self._clock.advance(seconds)

    async def settle(self) -> None:
        """Memory backends deliver before their calls return."""

    async def lose_data(self) -> None:
        self._revocations.clear()

    async def aclose(self) -> None:
        made, self._made = self._made, []
        for instance in reversed(made):
            await instance.aclose()


class PartialFactory:
    """A factory that makes only some contracts (its ``contracts``): conftest deselects
    the tests of the others, and asking for one anyway raises NotImplementedError naming
    the factory and the contract. Subclasses override what they make."""

    contracts: ClassVar[frozenset[str]] = frozenset()
    """The contracts this factory makes."""

    def broker(self) -> Broker:
        self._not_made("broker")

    def presence(self) -> PresenceManager:
        self._not_made("presence")

    def controller(self) -> Controller:
        self._not_made("controller")

    def channel_store(self) -> ChannelStore:
        self._not_made("channel_store")

    def refresh_store(self) -> RefreshStore:
        self._not_made("refresh_store")

    def revocation_store(self) -> RevocationStore:
        self._not_made("revocation_store")

    def dlq(self) -> DLQ:
        self._not_made("dlq")

    def now(self) -> float:
        self._not_made("clock")

    async def advance(self, seconds: float) -> None:
        self._not_made("clock")

    async def lose_data(self) -> None:
        self._not_made("revocation_store")

    def _not_made(self, contract: str) -> NoReturn:
        raise NotImplementedError(f"{type(self).__name__} makes no {contract}")


class MemoryClusterBackend(PartialFactory):
    """The engine's Cluster on in-process control transports (one MemoryControlHub):
    every controller is one node of the same cluster, without any server. It makes
    the Controller only."""

    contracts: ClassVar[frozenset[str]] = frozenset({"controller"})
    """The contracts this factory makes; conftest deselects the tests of the others."""

    def __init__(self, prefix: str) -> None:
        self._hub = MemoryControlHub()
        self._names = itertools.count(1)
        self._controllers: list[Cluster] = []

    def controller(self) -> Controller:
        controller = Cluster(self._hub.transport(), f"node-{next(self._names)}")
        self._controllers.append(controller)
        return controller

    async def settle(self) -> None:
        """Return once every started controller has handled what was sent before."""
        for controller in self._controllers:
            await controller.sync()

    async def aclose(self) -> None:
        controllers, self._controllers = self._controllers, []
        for controller in controllers:
            await controller.aclose()
