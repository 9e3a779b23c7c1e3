"""Two Parsec nodes sharing the channel registry in the real Redis: one node's
lifecycle changes reach the other node's clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest_asyncio
import redis.asyncio as aioredis
import websockets

from parsec import AuthOptions, Options, Parsec, ServerOptions
from parsec.backends.redis.events import RedisChannelEventBus
from parsec.backends.redis.stores import RedisChannelStore
from parsec.testing import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
CHANNEL = "public:cluster.news"


@pytest_asyncio.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    """A client of the real Redis (a missing Redis fails the test, never skips it)."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.ping()
    yield redis
    await redis.aclose()


@asynccontextmanager
async def node(redis: aioredis.Redis, prefix: str, name: str) -> AsyncIterator[Parsec]:
    """A serving Parsec whose channel registry and lifecycle events live in Redis."""
    options = Options(
        server=ServerOptions(addr=f"127.0.0.1:{free_port()}"),
        auth=AuthOptions(allow_anonymous=True),
        node_name=name,
    )
    parsec = Parsec(
        options,
        channel_store=RedisChannelStore(redis, prefix=prefix),
        channel_event_bus=RedisChannelEventBus(redis, name, prefix=prefix),
    )
    async with parsec:
        ready = asyncio.Event()
        serving = asyncio.create_task(parsec.run(ready.set))
        await ready.wait()
        try:
            yield parsec
        finally:
            await parsec.aclose()
            await serving


async def _messages(ws: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (await ws.recv()).split("\n")]


async def test_a_channel_deleted_on_one_node_unsubscribes_clients_of_another(
    client: aioredis.Redis,
) -> None:
    """A public channel opened on node A is subscribable on node B (one registry); when
    A deletes it, B's subscriber gets unsubscribe 2000 and B refuses new subscribes."""
    prefix = f"parsec-test-{uuid.uuid4().hex[:12]}"
    try:
        async with node(client, prefix, "a") as a, node(client, prefix, "b") as b:
            await a.open_public(CHANNEL)
            url = f"ws://{b.options.server.addr}/connection/websocket"
            async with websockets.connect(url) as ws:
                await ws.send(
                    f'{{"id":1,"connect":{{}}}}\n{{"id":2,"subscribe":{{"channel":"{CHANNEL}"}}}}'
                )
                replies: list[dict[str, Any]] = []
                while len(replies) < 2:
                    replies += await _messages(ws)
                assert "subscribe" in replies[1], replies
                await a.delete_channel(CHANNEL)
                async with asyncio.timeout(5):
                    push = (await _messages(ws))[0]
                assert push == {
                    "push": {
                        "channel": CHANNEL,
                        "unsubscribe": {"code": 2000, "reason": "server unsubscribe"},
                    }
                }
                await ws.send(f'{{"id":3,"subscribe":{{"channel":"{CHANNEL}"}}}}')
                assert (await _messages(ws))[0]["error"]["code"] == 404
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
