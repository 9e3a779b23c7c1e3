"""The Redis client's bounded pool on the real Redis: more commands at once than
``pool_size`` wait their turn and all succeed, on at most ``pool_size`` connections; a
command that gets no turn within ``pool_timeout`` fails with a temporary error that
says so."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis_helpers import REDIS_URL
from waiting import WAIT

from parsec.backends.redis import from_url
from parsec.engine.types import ClientInfo
from parsec.errors import ParsecClientError

CONCURRENCY = 500
"""Commands at once: beyond redis-py's default pool (100), far beyond the test's."""


def named(url: str, name: str) -> str:
    """``url`` with its connections named ``name`` (CLIENT LIST shows them)."""
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


async def connections_named(name: str, command: str = "") -> int:
    """Connections to Redis named ``name`` (running ``command``, when given)."""
    admin = Redis.from_url(REDIS_URL)
    try:
        return sum(
            1
            for client in await admin.client_list()
            if client["name"] == name and command in ("", client["cmd"])
        )
    finally:
        await admin.aclose()


async def test_more_commands_than_connections_wait_and_all_succeed(key_prefix: str) -> None:
    """Five hundred presence and join commands at once on a pool of 2 all succeed, on
    no more than 2 connections."""
    name = f"pool-{uuid.uuid4().hex[:8]}"
    broker, presence = from_url(named(REDIS_URL, name), key_prefix=key_prefix, pool_size=2)
    try:

        async def arrive(n: int) -> None:
            info = ClientInfo(user=f"u{n}", client=f"c{n}")
            await presence.add_presence("room:big", f"c{n}", info, 60.0)
            await broker.publish_join("room:big", info)

        await asyncio.gather(*(arrive(n) for n in range(CONCURRENCY)))

        assert len(await presence.presence("room:big")) == CONCURRENCY
        assert 1 <= await connections_named(name) <= 2
    finally:
        await broker.aclose()
        await presence.aclose()


async def test_a_command_that_finds_every_connection_busy_fails_saying_so(
    key_prefix: str,
) -> None:
    """With the pool's one connection held by a slow command, another command waits
    pool_timeout, then fails with the temporary PARSEC_BROKER_NOT_READY naming the pool."""
    name = f"pool-{uuid.uuid4().hex[:8]}"
    url = named(REDIS_URL, name)
    broker, presence = from_url(url, key_prefix=key_prefix, pool_size=1, pool_timeout=0.2)
    slow = asyncio.ensure_future(broker.client.blpop([f"{key_prefix}:nothing"], timeout=1))
    try:
        async with asyncio.timeout(WAIT):  # the slow command holds the connection
            while True:
                if await connections_named(name, "blpop") == 1:
                    break
                await asyncio.sleep(0.005)
        with pytest.raises(ParsecClientError) as caught:
            await presence.presence("room:big")
    finally:
        await slow
        await broker.aclose()
        await presence.aclose()

    error = caught.value
    assert (error.code, error.temporary) == (100, True)
    assert error.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    assert error.parsec_error.message == (
        "no free redis connection while reading presence: no connection came free within "
        "0.2s (see broker.pool_size and broker.pool_timeout)"
    )
