"""/healthz follows the Redis connection: 503 while it is down, 200 again once the
node has reconnected by itself; publishing meanwhile fails fast with a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from redis_helpers import RedisServer

from parsec import BrokerOptions, Namespace, Options, ParsecError
from parsec.testing import serve_for_tests

WAIT = 15.0


async def _health(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/healthz")).status_code


async def _until_health(url: str, status: int) -> None:
    """Poll /healthz (an HTTP endpoint: there is no event to await) until ``status``."""
    async with asyncio.timeout(WAIT):
        while True:
            if await _health(url) == status:
                return
            await asyncio.sleep(0.1)


async def test_healthz_reports_a_lost_redis_and_recovers(
    redis_server: Callable[[bool], Awaitable[RedisServer]], key_prefix: str
) -> None:
    """Stopping Redis turns /healthz to 503 and makes a publish fail quickly with
    PARSEC_BROKER_NOT_READY; restarting it turns /healthz back to 200 and publishing
    works again, with no restart of Parsec."""
    redis = await redis_server(False)
    options = Options(
        broker=BrokerOptions(url=redis.url, key_prefix=key_prefix),
        namespaces=[Namespace(name="chat", history_size=10, history_ttl=60)],
    )
    async with serve_for_tests(options) as server:
        await _until_health(server.url, 200)
        await server.parsec.publish("chat:health", {"n": 1})

        await redis.stop()
        await _until_health(server.url, 503)
        async with asyncio.timeout(WAIT):
            with pytest.raises(ParsecError) as failure:
                await server.parsec.publish("chat:health", {"n": 2})
        assert failure.value.code == "PARSEC_BROKER_NOT_READY"

        await redis.start()
        await _until_health(server.url, 200)
        await server.parsec.publish("chat:health", {"n": 3})
