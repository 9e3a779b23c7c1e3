"""RedisBroker resilience: a killed pub/sub connection or a Redis restart mid-stream
never makes a publication go missing silently.

Each test runs its own redis-server (CLIENT KILL and restarts would disturb other
users of the shared one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis_helpers import Delivered, Gate, Recorder, RedisServer, payload, publication

from parsec.backends.redis import RedisBroker
from parsec.backends.redis.client import ClientShare
from parsec.backends.redis.subscriber import Backoff
from parsec.backends.redis.urls import make_clients, parse_url
from parsec.engine.broker import HistoryFilter, PublishOptions
from parsec.engine.types import StreamPosition
from parsec.errors import ParsecClientError

HISTORY = PublishOptions(history_size=1000, history_ttl=300.0)
CHANNEL = "chat:resilience"
PREFIX = "parsec-resilience"
QUICKLY = 3.0
"""An upper bound that tells "fails fast" from "hangs"; not a performance target."""

StartServer = Callable[[bool], Awaitable[RedisServer]]
OpenNode = Callable[..., Awaitable[tuple[RedisBroker, Recorder]]]


@pytest.fixture
async def open_node() -> AsyncIterator[OpenNode]:
    """Starts brokers on a Redis URL, each with a client of its own; closes them after."""
    brokers: list[RedisBroker] = []

    async def open_(url: str, backoff: Backoff | None = None) -> tuple[RedisBroker, Recorder]:
        client = make_clients(parse_url(url)).main
        share = ClientShare(client, holders=1)
        broker = RedisBroker(client, prefix=PREFIX, share=share, backoff=backoff, ready_timeout=1.0)
        recorder = Recorder()
        await broker.start(recorder)
        brokers.append(broker)
        return broker, recorder

    try:
        yield open_
    finally:
        for broker in brokers:
            await broker.aclose()


async def publish_range(broker: RedisBroker, values: range) -> list[StreamPosition]:
    return [await broker.publish(CHANNEL, publication(v), HISTORY) for v in values]


def assert_contiguous(delivered: list[Delivered], count: int) -> None:
    """Offsets 1..count in one epoch, carrying values 0..count-1 in order."""
    assert [d.position.offset for d in delivered] == list(range(1, count + 1))
    assert len({d.position.epoch for d in delivered}) == 1
    assert [payload(d.pub) for d in delivered] == list(range(count))
    assert [d.pub.offset for d in delivered] == list(range(1, count + 1))


async def kill_pubsub_connections(url: str) -> None:
    admin = Redis.from_url(url)
    try:
        assert await admin.client_kill_filter(_type="pubsub") >= 1
    finally:
        await admin.aclose()


async def test_killed_pubsub_connection_mid_stream_loses_nothing(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """CLIENT KILL TYPE pubsub mid-stream: every publication arrives once, in order."""
    server = await redis_server(False)
    node, recorder = await open_node(server.url)
    publisher, _ = await open_node(server.url)
    await node.subscribe(CHANNEL)
    killed = asyncio.Event()

    async def publish_around_the_kill() -> list[StreamPosition]:
        before = await publish_range(publisher, range(100))
        await killed.wait()
        return before + await publish_range(publisher, range(100, 200))

    publishing = asyncio.create_task(publish_around_the_kill())
    first = await recorder.publications(50)
    await kill_pubsub_connections(server.url)
    killed.set()
    positions = await publishing
    delivered = first + await recorder.publications(150)
    await node.sync()

    assert_contiguous(delivered, 200)
    assert [d.position for d in delivered] == positions
    assert recorder.events.empty()


async def test_publications_missed_while_disconnected_are_delivered_first(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """What was published while the connection was down arrives, in order, before newer ones."""
    server = await redis_server(False)
    gate = Gate()
    node, recorder = await open_node(server.url, gate)
    publisher, _ = await open_node(server.url)
    await node.subscribe(CHANNEL)
    await publish_range(publisher, range(5))
    before = await recorder.publications(5)

    await kill_pubsub_connections(server.url)
    await gate.lost.wait()
    missed = await publish_range(publisher, range(5, 10))
    assert not node.connected
    assert recorder.events.empty()
    gate.open.set()
    await publish_range(publisher, range(10, 15))
    after = await recorder.publications(10)
    await node.sync()

    assert node.connected
    assert_contiguous(before + after, 15)
    assert [d.position for d in after[:5]] == missed
    assert recorder.events.empty()


async def test_redis_restart_mid_stream_loses_nothing(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """A persistent Redis restarts: publishing fails fast while it is down, then the
    node catches up on what it missed and delivers on, in one epoch."""
    server = await redis_server(True)
    gate = Gate()
    node, recorder = await open_node(server.url, gate)
    publisher, _ = await open_node(server.url)
    await node.subscribe(CHANNEL)
    await publish_range(publisher, range(5))
    before = await recorder.publications(5)

    await server.stop()
    await gate.lost.wait()
    async with asyncio.timeout(QUICKLY):
        with pytest.raises(ParsecClientError) as down:
            await publisher.publish(CHANNEL, publication("lost"), HISTORY)
    await server.start()
    missed = await publish_range(publisher, range(5, 10))
    gate.open.set()
    await publish_range(publisher, range(10, 15))
    after = await recorder.publications(10)
    history = await publisher.history(CHANNEL, HistoryFilter(limit=-1))

    assert down.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    assert (down.value.code, down.value.temporary) == (100, True)
    assert_contiguous(before + after, 15)
    assert [d.position for d in after[:5]] == missed
    assert [p.offset for p in history.publications] == list(range(1, 16))


async def test_restart_that_loses_the_stream_delivers_the_new_epoch(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """A Redis restart without persistence starts a new epoch; the node delivers its
    publications anyway, so each subscription sees the epoch change (no silent gap)."""
    server = await redis_server(False)
    gate = Gate()
    node, recorder = await open_node(server.url, gate)
    publisher, _ = await open_node(server.url)
    await node.subscribe(CHANNEL)
    [old] = await publish_range(publisher, range(1))
    await recorder.publications(1)

    await server.stop()
    await gate.lost.wait()
    await server.start()
    missed = await publish_range(publisher, range(2))
    gate.open.set()
    later = await publish_range(publisher, range(2, 3))
    delivered = await recorder.publications(3)

    assert [d.position for d in delivered] == missed + later
    assert [d.position.offset for d in delivered] == [1, 2, 3]
    assert delivered[0].position.epoch != old.epoch


async def test_calls_while_redis_is_down_fail_fast_with_a_temporary_error(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """Subscribe, publish, history and remove_history all raise PARSEC_BROKER_NOT_READY."""
    server = await redis_server(False)
    gate = Gate()
    node, _ = await open_node(server.url, gate)
    await server.stop()
    await gate.lost.wait()

    calls = [
        node.subscribe(CHANNEL),
        node.publish(CHANNEL, publication("x"), HISTORY),
        node.history(CHANNEL, HistoryFilter(limit=-1)),
        node.remove_history(CHANNEL),
        node.sync(),
    ]
    for call in calls:
        async with asyncio.timeout(QUICKLY):
            with pytest.raises(ParsecClientError) as failed:
                await call
        assert failed.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"


async def test_subscribe_works_again_after_a_restart(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """After Redis comes back the node subscribes new channels and delivers to them."""
    server = await redis_server(False)
    gate = Gate()
    node, recorder = await open_node(server.url, gate)
    await server.stop()
    await gate.lost.wait()
    await server.start()
    gate.open.set()

    await node.subscribe(CHANNEL)
    [position] = await publish_range(node, range(1))
    [delivered] = await recorder.publications(1)

    assert delivered.position == position


async def test_the_first_calls_after_a_restart_succeed(
    redis_server: StartServer, open_node: OpenNode
) -> None:
    """Pooled connections the restart closed are replaced before use: once Redis is
    back, no call fails because of them."""
    server = await redis_server(False)
    node, _ = await open_node(server.url, Gate())
    await asyncio.gather(*(node.history(CHANNEL, HistoryFilter()) for _ in range(4)))

    await server.stop()
    await server.start()
    positions = await asyncio.gather(
        *(node.publish(CHANNEL, publication(n), HISTORY) for n in range(4))
    )

    assert sorted(p.offset for p in positions) == [1, 2, 3, 4]
