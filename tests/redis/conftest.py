"""Fixtures of the Redis-only tests.

They use the real Redis on 127.0.0.1:6379 (``PARSEC_TEST_REDIS_URL`` overrides it) or
redis-server processes of their own on free ports; each test keeps its keys under a
unique prefix and deletes them afterwards. A missing Redis or redis-server binary
fails these tests: they never skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis_helpers import REDIS_URL, RedisServer
from redis_keys import scratch_prefix


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A key prefix no other test uses; every key under it (and under prefixes that
    extend it) is deleted after the test."""
    with scratch_prefix() as prefix:
        yield prefix


@pytest.fixture
async def shared_redis(key_prefix: str) -> AsyncIterator[Redis]:
    """A client of the shared Redis; the test's keys are deleted afterwards."""
    client = Redis.from_url(REDIS_URL)
    await client.ping()
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{key_prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_server(
    tmp_path: Path,
) -> AsyncIterator[Callable[[bool], Awaitable[RedisServer]]]:
    """Starts private redis-servers (``await redis_server(persistent)``); stops them all
    after the test."""
    servers: list[RedisServer] = []

    async def start(persistent: bool) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, persistent=persistent)
        servers.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()
