"""The NATS broker as a node sees it: fan-out between connections, channel names NATS
subjects could not carry, the stable error of every history call, and a connection
that drops and comes back by itself."""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats_helpers import (
    NATS_URL,
    WAIT_SECONDS,
    Delivered,
    Nodes,
    Recorder,
    StartServer,
    nats_nodes,
    payload,
    private_servers,
    publication,
    unique_prefix,
)

import nats
from parsec.backends.nats.subjects import decode_channel, encode_channel
from parsec.backends.testing import JoinLeave
from parsec.engine.broker import HistoryFilter, PublishOptions
from parsec.engine.types import ClientInfo, StreamPosition
from parsec.errors import ParsecClientError

HISTORY = PublishOptions(history_size=10, history_ttl=60.0)


UNSAFE_NAMES = [
    "chat:room.1",
    "room.*",
    "room.>",
    "room.x",
    "*",
    ">",
    ".",
    "..",
    "with space",
    "tab\there",
    "new\nline",
    "tilde~7E",
    "~",
    "",
    "ünïcödé:канал",
    "emoji:🚀",
    "a" * 255,
]


@pytest.fixture
def subject_prefix() -> str:
    """A subject prefix no other test uses."""
    return unique_prefix()


@pytest.fixture
async def nodes(subject_prefix: str) -> AsyncIterator[Nodes]:
    """Brokers and controllers on the shared NATS under the test's prefix."""
    async with nats_nodes(subject_prefix) as made:
        yield made


@pytest.fixture
async def nats_server() -> AsyncIterator[StartServer]:
    """Private nats-servers, killed after the test."""
    async with private_servers() as start:
        yield start


async def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds; nats-py reports no event the test can await."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_history_calls_fail_with_a_stable_code(nodes: Nodes) -> None:
    """Publishing with history or an idempotency key, reading and removing history all
    raise PARSEC_INVALID_ARGUMENT (client error 107, not temporary) naming Redis."""
    make_broker, _ = nodes
    broker = await make_broker(Recorder())
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: broker.publish("chat:a", publication(1), HISTORY),
        lambda: broker.publish("chat:a", publication(1), PublishOptions(idempotency_key="k")),
        lambda: broker.history("chat:a", HistoryFilter(limit=-1)),
        lambda: broker.remove_history("chat:a"),
    ]

    for call in calls:
        with pytest.raises(ParsecClientError) as failure:
            await call()
        assert failure.value.parsec_error.code == "PARSEC_INVALID_ARGUMENT"
        assert (failure.value.code, failure.value.temporary) == (107, False)
        assert "Redis broker" in failure.value.parsec_error.message


@pytest.mark.parametrize(("size", "ttl"), [(0, 0.0), (10, 0.0), (0, 60.0)])
async def test_options_without_history_publish_normally(
    nodes: Nodes, size: int, ttl: float
) -> None:
    """A publish whose options do not turn history on reaches the other node with the
    empty position, and returns it."""
    make_broker, _ = nodes
    received = Recorder()
    sender, receiver = await make_broker(Recorder()), await make_broker(received)
    await receiver.subscribe("chat:a")

    position = await sender.publish("chat:a", publication("x"), PublishOptions(size, ttl))

    [delivered] = await received.publications(1)
    assert position == delivered.position == StreamPosition()
    assert (delivered.channel, payload(delivered.pub), delivered.pub.offset) == ("chat:a", "x", 0)


async def test_subject_unsafe_channel_names_round_trip(nodes: Nodes) -> None:
    """Channels whose names hold dots, wildcards, whitespace, non-ASCII or nothing at all
    reach the other node under their own names, each exactly once: none is taken for
    a subject pattern or collides with another."""
    make_broker, _ = nodes
    received = Recorder()
    sender, receiver = await make_broker(Recorder()), await make_broker(received)
    for name in [*UNSAFE_NAMES, "end"]:
        await receiver.subscribe(name)

    for name in UNSAFE_NAMES:
        await sender.publish(name, publication(name), PublishOptions())
    await sender.publish("end", publication("end"), PublishOptions())

    delivered = await received.publications(len(UNSAFE_NAMES) + 1)
    assert sorted((d.channel, payload(d.pub)) for d in delivered[:-1]) == sorted(
        (name, name) for name in UNSAFE_NAMES
    )
    assert delivered[-1].channel == "end"
    assert received.events.empty()


async def test_a_channel_too_long_for_a_subject_is_refused(nodes: Nodes) -> None:
    """A channel whose encoded subject would exceed a NATS protocol line is refused
    with PARSEC_INVALID_ARGUMENT; the node's connection is unharmed."""
    make_broker, _ = nodes
    received = Recorder()
    broker = await make_broker(received)
    huge = "🚀" * 400  # 4 UTF-8 bytes each, each written ~XX: 4800 characters

    for call in (
        lambda: broker.subscribe(huge),
        lambda: broker.publish(huge, publication(1), PublishOptions()),
    ):
        with pytest.raises(ParsecClientError) as failure:
            await call()
        assert failure.value.parsec_error.code == "PARSEC_INVALID_ARGUMENT"

    await broker.subscribe("🚀" * 255)
    await broker.publish("🚀" * 255, publication("fits"), PublishOptions())
    assert [payload(d.pub) for d in await received.publications(1)] == ["fits"]
    assert broker.connected


async def test_joins_and_leaves_carry_the_client(nodes: Nodes) -> None:
    """A join and a leave published on one node reach the other with the client info."""
    make_broker, _ = nodes
    received = Recorder()
    sender, receiver = await make_broker(Recorder()), await make_broker(received)
    await receiver.subscribe("chat:a.b")
    info = ClientInfo(user="alice", client="c1")

    await sender.publish_join("chat:a.b", info)
    await sender.publish_leave("chat:a.b", info)

    events = await received.take(2)
    assert events == [JoinLeave("join", "chat:a.b", info), JoinLeave("leave", "chat:a.b", info)]


async def test_malformed_messages_are_dropped(nodes: Nodes, subject_prefix: str) -> None:
    """Bytes on a channel's subject that are no Parsec message are dropped; the next
    publication still arrives."""
    make_broker, _ = nodes
    received = Recorder()
    receiver = await make_broker(received)
    await receiver.subscribe("chat:a")
    raw = await nats.connect(NATS_URL)
    try:
        await raw.publish(f"{subject_prefix}.ch.{encode_channel('chat:a')}", b"not json")
        await raw.flush()
    finally:
        await raw.close()
    sender = await make_broker(Recorder())

    await sender.publish("chat:a", publication("fine"), PublishOptions())

    [delivered] = await received.publications(1)
    assert payload(delivered.pub) == "fine"


@given(st.text(max_size=64))
def test_channel_encoding_is_a_safe_reversible_token(channel: str) -> None:
    """Any channel name encodes to one non-empty subject token of printable ASCII
    without dots, wildcards or whitespace, and decodes back to itself."""
    token = encode_channel(channel)

    assert token
    assert set(token) <= set(string.ascii_letters + string.digits + "-_:~")
    assert decode_channel(token) == channel


@pytest.mark.parametrize("token", ["a.b", "~2", "~zz", "~2e", "a b", "*", "~FF"])
def test_decoding_a_foreign_token_fails(token: str) -> None:
    """A token encode_channel cannot have made is rejected, not misread."""
    with pytest.raises(ValueError, match="not an encoded channel"):
        decode_channel(token)


async def test_a_dropped_connection_comes_back_by_itself(
    nodes: Nodes, nats_server: StartServer
) -> None:
    """When NATS goes away both nodes report it (``connected``) and publishing fails at
    once with PARSEC_BROKER_NOT_READY; once NATS is back they reconnect and
    re-subscribe by themselves and publications flow again."""
    server = await nats_server()
    make_broker, _ = nodes
    received = Recorder()
    sender = await make_broker(Recorder(), url=server.url)
    receiver = await make_broker(received, url=server.url)
    await receiver.subscribe("chat:a")
    await sender.publish("chat:a", publication(1), PublishOptions())
    assert [payload(d.pub) for d in await received.publications(1)] == [1]

    await server.stop()
    await _until(lambda: not sender.connected and not receiver.connected)
    async with asyncio.timeout(1.0):  # fails fast: nothing is buffered
        with pytest.raises(ParsecClientError) as failure:
            await sender.publish("chat:a", publication("lost"), PublishOptions())
    assert failure.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    assert failure.value.temporary

    await server.start()
    await _until(lambda: sender.connected and receiver.connected)
    await receiver.sync()  # its re-subscription has reached the server
    await sender.publish("chat:a", publication(2), PublishOptions())

    [again] = await received.publications(1)
    assert isinstance(again, Delivered)
    assert payload(again.pub) == 2


async def test_a_node_starts_while_nats_is_down(nodes: Nodes, nats_server: StartServer) -> None:
    """A broker started with NATS down starts anyway (not connected, publishing fails
    fast) and connects by itself once NATS is up."""
    server = await nats_server()
    await server.stop()
    make_broker, _ = nodes
    received = Recorder()

    broker = await make_broker(received, url=server.url, ready_timeout=0.3)

    assert not broker.connected
    with pytest.raises(ParsecClientError) as failure:
        await broker.publish("chat:a", publication(1), PublishOptions())
    assert failure.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    await server.start()
    await _until(lambda: broker.connected)
    await broker.subscribe("chat:a")
    await broker.publish("chat:a", publication(2), PublishOptions())
    assert [payload(d.pub) for d in await received.publications(1)] == [2]


async def test_a_publication_right_after_subscribe_is_never_lost(nodes: Nodes) -> None:
    """Once ``subscribe`` returns, NATS has the subscription: a publication made right
    after it, from another node, arrives — every time (nats-py's flush alone let its PING
    overtake the SUB now and then, and such a publication was lost)."""
    make_broker, _ = nodes
    received = Recorder()
    sender, receiver = await make_broker(Recorder()), await make_broker(received)
    for n in range(1000):
        await receiver.subscribe(f"chat:{n}")
        await sender.publish(f"chat:{n}", publication(n), PublishOptions())
    delivered = await received.publications(1000)
    assert sorted(d.channel for d in delivered) == sorted(f"chat:{n}" for n in range(1000))
