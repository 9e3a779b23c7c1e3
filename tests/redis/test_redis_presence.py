"""RedisPresenceManager beyond the conformance suite: expiry of entries nobody
refreshes, presence shared by nodes, bad input and a Redis that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis_helpers import REDIS_URL, RedisServer

from parsec.backends.redis import RedisPresenceManager, from_url
from parsec.backends.redis.client import ClientShare
from parsec.backends.redis.keys import Keys
from parsec.backends.redis.urls import make_clients, parse_url
from parsec.engine.presence import PresenceStats
from parsec.engine.types import ClientInfo
from parsec.errors import ParsecClientError, ParsecError

CHANNEL = "chat:room"


class Clock:
    """Unix time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def info(user: str, client: str) -> ClientInfo:
    return ClientInfo(user=user, client=client)


MakePresence = Callable[..., RedisPresenceManager]


@pytest.fixture
async def make_presence(key_prefix: str) -> AsyncIterator[MakePresence]:
    """Presence managers of separate nodes on the shared Redis; closed after the test."""
    made: list[RedisPresenceManager] = []

    def make(clock: Callable[[], float] | None = None) -> RedisPresenceManager:
        client = make_clients(parse_url(REDIS_URL)).main
        share = ClientShare(client, holders=1)
        if clock is None:
            presence = RedisPresenceManager(client, prefix=key_prefix, share=share)
        else:
            presence = RedisPresenceManager(client, prefix=key_prefix, share=share, clock=clock)
        made.append(presence)
        return presence

    try:
        yield make
    finally:
        for presence in made:
            await presence.aclose()


async def test_entries_nobody_refreshes_expire(
    make_presence: MakePresence, key_prefix: str, shared_redis: Redis
) -> None:
    """An entry past its TTL is no longer listed or counted, and is deleted from Redis."""
    clock = Clock()
    presence = make_presence(clock)
    await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 10.0)
    await presence.add_presence(CHANNEL, "c2", info("bob", "c2"), 100.0)

    clock.now += 10.0
    present = await presence.presence(CHANNEL)
    stats = await presence.presence_stats(CHANNEL)

    assert present == {"c2": info("bob", "c2")}
    assert stats == PresenceStats(1, 1)
    keys = Keys(key_prefix)
    assert await shared_redis.hkeys(keys.presence(CHANNEL)) == [b"c2"]
    assert await shared_redis.zrange(keys.expiry(CHANNEL), 0, -1) == [b"c2"]


async def test_refreshing_keeps_an_entry(make_presence: MakePresence) -> None:
    """Adding again before the TTL ends keeps the client present for another TTL."""
    clock = Clock()
    presence = make_presence(clock)
    await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 10.0)

    clock.now += 8.0
    await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 10.0)
    clock.now += 8.0

    assert list(await presence.presence(CHANNEL)) == ["c1"]


async def test_a_short_ttl_never_shortens_the_channel_keys(
    make_presence: MakePresence, key_prefix: str, shared_redis: Redis
) -> None:
    """The channel's keys live as long as its longest-lived entry."""
    presence = make_presence()
    await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 100.0)
    await presence.add_presence(CHANNEL, "c2", info("bob", "c2"), 5.0)

    keys = Keys(key_prefix)
    assert await shared_redis.ttl(keys.presence(CHANNEL)) > 90
    assert await shared_redis.ttl(keys.expiry(CHANNEL)) > 90


async def test_presence_is_shared_by_nodes(make_presence: MakePresence) -> None:
    """What one node records, another node lists; what it removes, the first stops listing."""
    a = make_presence()
    b = make_presence()

    await a.add_presence(CHANNEL, "c1", info("alice", "c1"), 60.0)
    await b.add_presence(CHANNEL, "c2", info("alice", "c2"), 60.0)
    seen_by_b = await b.presence(CHANNEL)
    await b.remove_presence(CHANNEL, "c1", "alice")

    assert seen_by_b == {"c1": info("alice", "c1"), "c2": info("alice", "c2")}
    assert await a.presence(CHANNEL) == {"c2": info("alice", "c2")}
    assert await a.presence_stats(CHANNEL) == PresenceStats(1, 1)


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan")])
async def test_a_ttl_that_is_not_positive_is_refused(
    make_presence: MakePresence, ttl: float
) -> None:
    """add_presence with a TTL that is not > 0 raises PARSEC_INVALID_ARGUMENT."""
    presence = make_presence()

    with pytest.raises(ParsecError) as caught:
        await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), ttl)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert await presence.presence(CHANNEL) == {}


async def test_malformed_entries_are_skipped(
    make_presence: MakePresence, key_prefix: str, shared_redis: Redis
) -> None:
    """An entry that is not a ClientInfo (another writer's) is neither listed nor counted."""
    presence = make_presence()
    await presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 60.0)
    keys = Keys(key_prefix)
    await shared_redis.hset(keys.presence(CHANNEL), "junk", b"\x00not json")
    await shared_redis.zadd(keys.expiry(CHANNEL), {"junk": 4_000_000_000})

    assert await presence.presence(CHANNEL) == {"c1": info("alice", "c1")}
    assert await presence.presence_stats(CHANNEL) == PresenceStats(1, 1)


async def test_presence_calls_fail_fast_while_redis_is_down(
    redis_server: Callable[[bool], Awaitable[RedisServer]], key_prefix: str
) -> None:
    """Every presence call raises PARSEC_BROKER_NOT_READY while Redis is down."""
    server = await redis_server(False)
    broker, presence = from_url(server.url, key_prefix=key_prefix)
    await server.stop()
    try:
        calls = [
            presence.add_presence(CHANNEL, "c1", info("alice", "c1"), 60.0),
            presence.remove_presence(CHANNEL, "c1", "alice"),
            presence.presence(CHANNEL),
            presence.presence_stats(CHANNEL),
        ]
        for call in calls:
            async with asyncio.timeout(3.0):
                with pytest.raises(ParsecClientError) as failed:
                    await call
            assert failed.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    finally:
        await broker.aclose()
        await presence.aclose()
