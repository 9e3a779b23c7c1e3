"""RedisBroker beyond the conformance suite: several nodes on one Redis, the key layout,
bad messages and handlers, lifecycle, and scripts Redis has forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis_helpers import REDIS_URL, Recorder, RedisServer, payload, publication

from parsec.backends.redis import RedisBroker, from_url
from parsec.backends.redis.client import ClientShare
from parsec.backends.redis.keys import Keys, load_script
from parsec.backends.redis.urls import make_clients, parse_url
from parsec.backends.testing import JoinLeave
from parsec.engine.broker import HistoryFilter, PublishOptions
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.errors import ParsecError

HISTORY = PublishOptions(history_size=10, history_ttl=60.0)
ALL = HistoryFilter(limit=-1)
CHANNEL = "chat:room"

OpenNode = Callable[..., Awaitable[tuple[RedisBroker, Recorder]]]


@pytest.fixture
async def open_node(key_prefix: str) -> AsyncIterator[OpenNode]:
    """Starts nodes' brokers on the shared Redis (the test's prefix unless another is
    given), each on a client of its own; closes them after the test."""
    brokers: list[RedisBroker] = []

    async def open_(prefix: str = key_prefix) -> tuple[RedisBroker, Recorder]:
        client = make_clients(parse_url(REDIS_URL)).main
        broker = RedisBroker(client, prefix=prefix, share=ClientShare(client, holders=1))
        recorder = Recorder()
        await broker.start(recorder)
        brokers.append(broker)
        return broker, recorder

    try:
        yield open_
    finally:
        for broker in brokers:
            await broker.aclose()


# --- several nodes -------------------------------------------------------------------


async def test_a_publication_on_one_node_reaches_every_subscribed_node(
    open_node: OpenNode,
) -> None:
    """Nodes sharing Redis and a prefix get every publication, with the same positions."""
    a, at_a = await open_node()
    b, at_b = await open_node()
    c, _ = await open_node()
    await a.subscribe(CHANNEL)
    await b.subscribe(CHANNEL)

    positions = [await c.publish(CHANNEL, publication(n), HISTORY) for n in range(3)]

    for recorder in (at_a, at_b):
        delivered = await recorder.publications(3)
        assert [d.position for d in delivered] == positions
        assert [payload(d.pub) for d in delivered] == [0, 1, 2]
    assert (await a.history(CHANNEL, ALL)).position == positions[-1]


async def test_concurrent_subscribes_to_one_channel_deliver_once(open_node: OpenNode) -> None:
    """Subscribing to a channel twice at once returns for both, subscribed, delivering once."""
    a, at_a = await open_node()
    b, _ = await open_node()

    await asyncio.gather(a.subscribe(CHANNEL), a.subscribe(CHANNEL))
    await b.publish(CHANNEL, publication("once"), HISTORY)
    await a.sync()

    assert [payload(d.pub) for d in await at_a.publications(1)] == ["once"]
    assert at_a.events.empty()


async def test_join_and_leave_reach_other_nodes(open_node: OpenNode) -> None:
    """A join and a leave published on one node reach another subscribed node."""
    a, at_a = await open_node()
    b, _ = await open_node()
    info = ClientInfo(user="alice", client="c-1")
    await a.subscribe(CHANNEL)

    await b.publish_join(CHANNEL, info)
    await b.publish_leave(CHANNEL, info)
    await a.sync()

    assert [at_a.events.get_nowait(), at_a.events.get_nowait()] == [
        JoinLeave("join", CHANNEL, info),
        JoinLeave("leave", CHANNEL, info),
    ]


async def test_an_idempotency_key_holds_across_nodes(open_node: OpenNode) -> None:
    """A key repeated on another node returns the first position and is not published."""
    a, _ = await open_node()
    b, _ = await open_node()
    keyed = PublishOptions(history_size=10, history_ttl=60.0, idempotency_key="order-7")

    first = await a.publish(CHANNEL, publication("first"), keyed)
    repeat = await b.publish(CHANNEL, publication("repeat"), keyed)

    assert repeat == first
    assert [payload(p) for p in (await b.history(CHANNEL, ALL)).publications] == ["first"]


async def test_prefixes_keep_deployments_apart(open_node: OpenNode, key_prefix: str) -> None:
    """Nodes under another prefix neither see the publications nor share the stream."""
    a, at_a = await open_node()
    other, at_other = await open_node(f"{key_prefix}-other")
    await a.subscribe(CHANNEL)
    await other.subscribe(CHANNEL)

    await a.publish(CHANNEL, publication("mine"), HISTORY)
    await a.sync()
    await other.sync()

    assert [payload(d.pub) for d in await at_a.publications(1)] == ["mine"]
    assert at_other.events.empty()
    assert (await other.history(CHANNEL, ALL)).position.offset == 0


# --- layout --------------------------------------------------------------------------


async def test_keys_live_under_the_prefix_with_the_documented_ttls(
    key_prefix: str, shared_redis: Redis
) -> None:
    """from_url's broker and presence keep their keys under the prefix, with TTLs."""
    broker, presence = from_url(REDIS_URL, key_prefix=key_prefix)
    opts = PublishOptions(history_size=10, history_ttl=60.0, history_meta_ttl=3600.0)
    await broker.publish(CHANNEL, publication(1), opts)
    await presence.add_presence(CHANNEL, "c1", ClientInfo(user="u", client="c1"), 30.0)
    await broker.aclose()
    still_open = await presence.presence(CHANNEL)
    await presence.aclose()

    keys = sorted([key.decode() async for key in shared_redis.scan_iter(match=f"{key_prefix}:*")])
    ttls = [await shared_redis.ttl(key) for key in keys]

    assert list(still_open) == ["c1"]
    assert keys == [
        f"{key_prefix}:expiry:{{{CHANNEL}}}",
        f"{key_prefix}:meta:{{{CHANNEL}}}",
        f"{key_prefix}:presence:{{{CHANNEL}}}",
        f"{key_prefix}:stream:{{{CHANNEL}}}",
    ]
    assert 0 < ttls[0] <= 30
    assert 0 < ttls[2] <= 30
    assert 3500 < ttls[1] <= 3600
    assert 0 < ttls[3] <= 60


async def test_a_zero_meta_ttl_keeps_the_position_forever(
    open_node: OpenNode, key_prefix: str, shared_redis: Redis
) -> None:
    """history_meta_ttl 0 stores the stream position without a TTL."""
    a, _ = await open_node()

    await a.publish(CHANNEL, publication(1), PublishOptions(10, 60.0, history_meta_ttl=0))

    assert await shared_redis.ttl(Keys(key_prefix).meta(CHANNEL)) == -1


@pytest.mark.parametrize("channel", ["chat:1", "a}b", "}x", "{x}", "open{", "", "#" + "0" * 40])
def test_all_keys_of_a_channel_share_one_cluster_slot(channel: str) -> None:
    """Stream, position, results and presence of a channel hash to one Redis Cluster slot."""
    keys = Keys("parsec")
    names = [
        keys.stream(channel),
        keys.meta(channel),
        keys.result(channel, "k"),
        keys.presence(channel),
        keys.expiry(channel),
    ]

    assert len({key_slot(name.encode()) for name in names}) == 1


def test_channels_never_share_keys() -> None:
    """Channels whose names would cut the hash tag short still get keys of their own."""
    keys = Keys("parsec")
    channels = ["a}b", "a", "}b", "b", ""]

    assert len({keys.stream(channel) for channel in channels}) == len(channels)


def test_every_script_ships_with_the_package() -> None:
    """The Lua scripts load from the installed package."""
    for name in ["publish", "history", "presence_add", "presence_get", "presence_remove"]:
        assert "redis.call" in load_script(name)


# --- bad input, lifecycle ------------------------------------------------------------


async def test_a_malformed_message_is_dropped_and_delivery_goes_on(
    open_node: OpenNode, key_prefix: str, shared_redis: Redis
) -> None:
    """Garbage on a channel's pub/sub channel is skipped; later publications arrive."""
    a, at_a = await open_node()
    await a.subscribe(CHANNEL)

    for garbage in [b"not json", b'["x",1]', b'["p","one","e",{}]', b"{}"]:
        await shared_redis.publish(Keys(key_prefix).pubsub(CHANNEL), garbage)
    await a.publish(CHANNEL, publication("after"), HISTORY)

    assert [payload(d.pub) for d in await at_a.publications(1)] == ["after"]
    await a.sync()
    assert at_a.events.empty()


class _Failing(Recorder):
    """A handler whose first publication raises."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def handle_publication(self, channel: str, pub: Publication, position: StreamPosition) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("handler bug")
        super().handle_publication(channel, pub, position)


async def test_a_failing_handler_does_not_stop_delivery(key_prefix: str) -> None:
    """An exception in the node's handler is logged; the next publication still arrives."""
    broker, presence = from_url(REDIS_URL, key_prefix=key_prefix)
    handler = _Failing()
    await broker.start(handler)
    try:
        await broker.subscribe(CHANNEL)
        await broker.publish(CHANNEL, publication("boom"), HISTORY)
        await broker.publish(CHANNEL, publication("fine"), HISTORY)

        [delivered] = await handler.publications(1)
        assert payload(delivered.pub) == "fine"
    finally:
        await broker.aclose()
        await presence.aclose()


async def test_subscribe_before_start_is_a_programming_error(key_prefix: str) -> None:
    """Subscribing a broker that was never started raises RuntimeError."""
    broker, presence = from_url(REDIS_URL, key_prefix=key_prefix)
    try:
        with pytest.raises(RuntimeError, match="not started"):
            await broker.subscribe(CHANNEL)
    finally:
        await broker.aclose()
        await presence.aclose()


async def test_a_broker_starts_once(open_node: OpenNode) -> None:
    """A second start raises RuntimeError, also after the broker was closed."""
    a, _ = await open_node()

    with pytest.raises(RuntimeError, match="start once"):
        await a.start(Recorder())
    await a.aclose()
    with pytest.raises(RuntimeError, match="start once"):
        await a.start(Recorder())


async def test_a_closed_broker_delivers_nothing_more(open_node: OpenNode) -> None:
    """After aclose the node is unsubscribed from everything; closing again is harmless."""
    a, at_a = await open_node()
    b, _ = await open_node()
    await a.subscribe(CHANNEL)

    await a.aclose()
    await a.aclose()
    await b.publish(CHANNEL, publication("late"), HISTORY)
    await b.sync()

    assert at_a.events.empty()


async def test_scripts_forgotten_by_redis_are_loaded_again(
    redis_server: Callable[[bool], Awaitable[RedisServer]], key_prefix: str
) -> None:
    """After SCRIPT FLUSH (a restart or failover) publish and history still work."""
    server = await redis_server(False)
    broker, presence = from_url(server.url, key_prefix=key_prefix)
    admin = Redis.from_url(server.url)
    try:
        await broker.publish(CHANNEL, publication(1), HISTORY)
        await admin.script_flush()
        position = await broker.publish(CHANNEL, publication(2), HISTORY)
        await admin.script_flush()
        result = await broker.history(CHANNEL, ALL)

        assert position.offset == 2
        assert [payload(p) for p in result.publications] == [1, 2]
    finally:
        await admin.aclose()
        await broker.aclose()
        await presence.aclose()


class _FakeClient:
    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_shared_client_closes_after_its_last_holder() -> None:
    """ClientShare closes the client and its helpers once, on the last release."""
    client, helper = _FakeClient(), _FakeClient()
    share = ClientShare(cast(Redis, client), holders=2, helpers=[cast(Redis, helper)])

    await share.release()
    assert (client.closed, helper.closed) == (0, 0)
    await share.release()
    assert (client.closed, helper.closed) == (1, 1)
    with pytest.raises(RuntimeError):
        await share.release()


def test_a_share_needs_a_holder() -> None:
    """A share for no holder is refused."""
    with pytest.raises(ValueError, match="at least one holder"):
        ClientShare(cast(Redis, _FakeClient()), holders=0)


def test_a_bad_prefix_is_refused_by_the_broker() -> None:
    """RedisBroker refuses a prefix with braces with PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        RedisBroker(cast(Redis, _FakeClient()), prefix="{bad}")

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
