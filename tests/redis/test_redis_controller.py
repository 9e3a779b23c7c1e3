"""RedisController against the real Redis on 127.0.0.1:6379: commands reach every other
node (never the sender), and nodes() lists the live ones (a starting node announces
itself at once, and hears of the others as they answer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from parsec.backends.redis.controller import RedisController
from parsec.engine.controller import (
    ControlCommand,
    DisconnectCommand,
    NodeInfo,
    UnsubscribeCommand,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


class Node:
    """A ControlEventHandler that records what it receives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: asyncio.Queue[ControlCommand] = asyncio.Queue()

    async def handle_control(self, command: ControlCommand) -> None:
        await self.received.put(command)

    def node_info(self) -> NodeInfo:
        return NodeInfo(self.name, self.name, "test", 1, 1, 1, 1)

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        return self.name.encode()  # surveys are tested in tests/conformance


@pytest_asyncio.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    """A client of the real Redis (a missing Redis fails the test, never skips it)."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.ping()
    yield redis
    await redis.aclose()


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return key_prefix


async def _start(
    client: aioredis.Redis, prefix: str, name: str, **kwargs: float
) -> tuple[RedisController, Node]:
    node = Node(name)
    controller = RedisController(client, name, prefix=prefix, **kwargs)
    await controller.start(node)
    return controller, node


async def test_broadcast_reaches_other_nodes_and_never_the_sender(
    client: aioredis.Redis, prefix: str
) -> None:
    """A command sent by one node is applied by every other node, once, and not echoed."""
    a, node_a = await _start(client, prefix, "a")
    b, node_b = await _start(client, prefix, "b")
    c, node_c = await _start(client, prefix, "c")
    try:
        first = DisconnectCommand(user="alice", code=3503, reason="force disconnect")
        second = UnsubscribeCommand(user="alice", channel="chat:x")
        await a.broadcast(first)
        await a.broadcast(second)
        for node in (node_b, node_c):
            async with asyncio.timeout(5):
                assert await node.received.get() == first
                assert await node.received.get() == second
        await b.broadcast(second)  # a marker: once node a has it, a's own sends were not echoed
        async with asyncio.timeout(5):
            assert await node_a.received.get() == second
        assert node_a.received.empty()
    finally:
        for controller in (a, b, c):
            await controller.aclose()


async def test_nodes_lists_live_peers_and_forgets_silent_ones(
    client: aioredis.Redis, prefix: str
) -> None:
    """nodes() lists every other reporting node; a node that stops reporting drops
    out after node_ttl, and a closed node at once."""
    a, _ = await _start(client, prefix, "a", report_interval=0.05, node_ttl=0.5)
    b, _ = await _start(client, prefix, "b", report_interval=0.05, node_ttl=0.5)
    try:
        assert [n.uid for n in await a.nodes()] == ["b"]  # b announced itself
        async with asyncio.timeout(5):  # a answers b's announcement a moment later
            while [n.uid for n in await b.nodes()] != ["a"]:  # noqa: ASYNC110 - no event
                await asyncio.sleep(0.01)
        await b.aclose()
        assert await a.nodes() == []
        # a node that vanished without a goodbye: its last report ages out
        stale = RedisController(client, "ghost", prefix=prefix, report_interval=60)
        await stale.start(Node("ghost"))
        assert [n.uid for n in await a.nodes()] == ["ghost"]
        await stale._transport.aclose()  # simulate a crash: no more reports, no goodbye
        await stale.aclose()
        await asyncio.sleep(0.6)
        assert await a.nodes() == []
    finally:
        await a.aclose()


async def test_close_is_idempotent(client: aioredis.Redis, prefix: str) -> None:
    """aclose may be called twice; the first says goodbye."""
    a, _ = await _start(client, prefix, "a")
    b, _ = await _start(client, prefix, "b")
    try:
        await a.aclose()
        await a.aclose()
        assert await b.nodes() == []  # a said goodbye
    finally:
        await b.aclose()
