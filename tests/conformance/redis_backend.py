"""The Redis backend factory of the conformance suite (the real Redis, never a fake).

Every instance keeps its keys under the test's unique prefix; closing the factory
deletes them. Time moves without sleeping: ``advance`` shortens the TTL of every key
under the prefix (a key whose TTL runs out is deleted) and moves the clock presence
entries are stamped with. A missing Redis fails the tests that use this factory.
"""

from __future__ import annotations

import time
import uuid
from typing import ClassVar

from redis_keys import REDIS_URL

from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation_store import RevocationStore
from parsec.backends.redis import RedisBroker, RedisPresenceManager
from parsec.backends.redis.controller import RedisController
from parsec.backends.redis.dlq import RedisDLQ
from parsec.backends.redis.stores import (
    RedisChannelStore,
    RedisRefreshStore,
    RedisRevocationStore,
)
from parsec.backends.redis.urls import make_clients, parse_url
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller
from parsec.engine.presence import PresenceManager
from parsec.sinks.dlq import DLQ

__all__ = ["REDIS_URL", "RedisBackend"]


"""The Redis the tests use (``PARSEC_TEST_REDIS_URL`` overrides it)."""


class RedisBackend:
    """Redis implementations of every contract, sharing one prefix and client."""

    contracts: ClassVar[frozenset[str]] = frozenset(
        {
            "broker",
            "presence",
            "controller",
            "channel_store",
            "refresh_store",
            "revocation_store",
            "dlq",
        }
    )
    """The contracts this factory makes; conftest deselects the tests of the others."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._client = make_clients(parse_url(REDIS_URL)).main
        self._skew = 0.0
        self._brokers: list[RedisBroker] = []
        self._presences: list[RedisPresenceManager] = []
        self._controllers: list[RedisController] = []
        self._closed = False

    def broker(self) -> Broker:
        broker = RedisBroker(self._client, prefix=self._prefix)
        self._brokers.append(broker)
        return broker

    def presence(self) -> PresenceManager:
        presence = RedisPresenceManager(self._client, prefix=self._prefix, clock=self.now)
        self._presences.append(presence)
        return presence

    def controller(self) -> Controller:
        controller = RedisController(
            self._client, f"node-{uuid.uuid4().hex[:8]}", prefix=self._prefix
        )
        self._controllers.append(controller)
        return controller

    def channel_store(self) -> ChannelStore:
        return RedisChannelStore(self._client, prefix=self._prefix)

    def refresh_store(self) -> RefreshStore:
        return RedisRefreshStore(self._client, prefix=self._prefix)

    def revocation_store(self) -> RevocationStore:
        return RedisRevocationStore(self._client, prefix=self._prefix)

    def dlq(self) -> DLQ:
        return RedisDLQ(self._client, prefix=self._prefix)

    def now(self) -> float:
        return time.time() + self._skew

    async def advance(self, seconds: float) -> None:
        """Run every TTL under the prefix down by ``seconds``; move the clock as much."""
        step = round(seconds * 1000)
        async for key in self._client.scan_iter(match=f"{self._prefix}:*", count=500):
            left = await self._client.pttl(key)
            if left < 0:  # no TTL, or already gone
                continue
            if left <= step:
                await self._client.delete(key)
            else:
                await self._client.pexpire(key, left - step)
        self._skew += seconds

    async def lose_data(self) -> None:
        """Delete every key under the prefix, as a Redis restarted empty would lose it."""
        keys = [key async for key in self._client.scan_iter(match=f"{self._prefix}:*", count=500)]
        if keys:
            await self._client.delete(*keys)

    async def settle(self) -> None:
        """Return once every broker made here has handled what was sent before."""
        for broker in self._brokers:
            await broker.sync()

    async def aclose(self) -> None:
        """Close every instance, delete the prefix's keys, close the client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        brokers, self._brokers = self._brokers, []
        presences, self._presences = self._presences, []
        controllers, self._controllers = self._controllers, []
        for controller in controllers:
            await controller.aclose()
        for presence in presences:
            await presence.aclose()
        for broker in brokers:
            await broker.aclose()
        keys = [key async for key in self._client.scan_iter(match=f"{self._prefix}:*", count=500)]
        if keys:
            await self._client.delete(*keys)
        await self._client.aclose()
