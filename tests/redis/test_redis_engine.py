"""The engine on the Redis broker, seen by a WebSocket client: a subscriber gets every
publication across a killed pub/sub connection, and is told honestly (unsubscribe
2500, then ``recovered: false``) when a Redis restart lost the stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis_helpers import Gate, RedisServer
from serving import serving
from websockets.asyncio.client import ClientConnection, connect

from parsec import Namespace, Options, Parsec
from parsec.backends.redis import RedisBroker, RedisPresenceManager
from parsec.backends.redis.client import ClientShare
from parsec.backends.redis.urls import make_clients, parse_url
from parsec.options import AuthOptions, ServerOptions
from parsec.testing import free_port

CHANNEL = "feed:news"
WAIT = 10.0

Message = dict[str, Any]
StartServer = Callable[[bool], Awaitable[RedisServer]]


class Client:
    """A raw protocol client: sends commands, queues what it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._inbox: deque[Message] = deque()
        self._ids = 0

    async def call(self, method: str, body: Message) -> Message:
        self._ids += 1
        await self._ws.send(json.dumps({"id": self._ids, method: body}))
        return await self.next(lambda m: m.get("id") == self._ids)

    async def push(self, kind: str) -> Message:
        """The next push of ``kind`` (``pub``, ``unsubscribe``…) for the channel."""
        message = await self.next(lambda m: kind in m.get("push", {}))
        body: Message = message["push"][kind]
        return body

    async def next(self, wanted: Callable[[Message], bool]) -> Message:
        async with asyncio.timeout(WAIT):
            while True:
                for message in self._inbox:
                    if wanted(message):
                        self._inbox.remove(message)
                        return message
                frame = await self._ws.recv()
                self._inbox.extend(json.loads(line) for line in str(frame).splitlines())


@contextlib.asynccontextmanager
async def serve(url: str, prefix: str, state: Path, gate: Gate) -> AsyncIterator[Parsec]:
    """A Parsec server on the Redis at ``url``; ``feed:`` channels keep history and
    are recoverable, for anonymous clients."""
    client = make_clients(parse_url(url)).main
    share = ClientShare(client, holders=2)
    broker = RedisBroker(client, prefix=prefix, share=share, backoff=gate)
    presence = RedisPresenceManager(client, prefix=prefix, share=share)
    options = Options(
        server=ServerOptions(addr=f"127.0.0.1:{free_port()}"),
        auth=AuthOptions(state_dir=state, allow_anonymous=True),
        namespaces=[
            Namespace(
                name="feed",
                history_size=100,
                history_ttl=300.0,
                force_recovery=True,
                allow_subscribe_for_client=True,
                allow_subscribe_for_anonymous=True,
            )
        ],
    )
    try:
        async with (
            Parsec(options, broker=broker, presence=presence) as parsec,
            serving(parsec, wait=WAIT),
        ):
            yield parsec
    finally:
        await broker.aclose()
        await presence.aclose()


@contextlib.asynccontextmanager
async def subscriber(parsec: Parsec) -> AsyncIterator[tuple[Client, Message]]:
    """An anonymous client subscribed to CHANNEL, and its subscribe result."""
    async with connect(f"ws://{parsec.options.server.addr}/connection/websocket") as ws:
        client = Client(ws)
        assert "connect" in await client.call("connect", {})
        reply = await client.call("subscribe", {"channel": CHANNEL})
        yield client, reply["subscribe"]


async def kill_pubsub(url: str) -> None:
    admin = Redis.from_url(url)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()


@pytest.fixture
def gate() -> Gate:
    return Gate()


async def test_a_subscriber_misses_nothing_across_a_killed_connection(
    redis_server: StartServer, key_prefix: str, tmp_path: Path, gate: Gate
) -> None:
    """Publications made while the node's pub/sub connection was down reach the client,
    in order, with contiguous offsets and no unsubscribe."""
    server = await redis_server(False)
    async with (
        serve(server.url, key_prefix, tmp_path, gate) as parsec,
        subscriber(parsec) as (client, subscribed),
    ):
        await parsec.publish(CHANNEL, {"n": 1})
        await kill_pubsub(server.url)
        await gate.lost.wait()
        await parsec.publish(CHANNEL, {"n": 2})
        await parsec.publish(CHANNEL, {"n": 3})
        gate.open.set()
        await parsec.publish(CHANNEL, {"n": 4})

        pubs = [await client.push("pub") for _ in range(4)]

    assert subscribed["recoverable"] is True
    assert [p["offset"] for p in pubs] == [1, 2, 3, 4]
    assert [p["data"] for p in pubs] == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]


async def test_a_subscriber_is_told_when_a_restart_lost_the_stream(
    redis_server: StartServer, key_prefix: str, tmp_path: Path, gate: Gate
) -> None:
    """Redis restarts without its data: the client gets unsubscribe 2500 and, when it
    resubscribes to recover, ``recovered: false`` in the new epoch."""
    server = await redis_server(False)
    async with (
        serve(server.url, key_prefix, tmp_path, gate) as parsec,
        subscriber(parsec) as (client, subscribed),
    ):
        await parsec.publish(CHANNEL, {"n": 1})
        first = await client.push("pub")
        await server.stop()
        await gate.lost.wait()
        await server.start()
        gate.open.set()
        await parsec.publish(CHANNEL, {"n": 2})

        unsubscribed = await client.push("unsubscribe")
        again = await client.call(
            "subscribe",
            {"channel": CHANNEL, "recover": True, "offset": 1, "epoch": subscribed["epoch"]},
        )

    assert first["offset"] == 1
    assert unsubscribed["code"] == 2500
    result = again["subscribe"]
    assert result.get("recovered", False) is False
    assert result["was_recovering"] is True
    assert result["epoch"] != subscribed["epoch"]


async def test_a_lost_stream_is_reported_even_when_the_channel_goes_quiet(
    redis_server: StartServer, key_prefix: str, tmp_path: Path, gate: Gate
) -> None:
    """Redis restarts without its data and nothing more is published: the node still
    tells the subscriber (unsubscribe 2500) as soon as it reconnects — no silent gap."""
    server = await redis_server(False)
    async with (
        serve(server.url, key_prefix, tmp_path, gate) as parsec,
        subscriber(parsec) as (client, _),
    ):
        await parsec.publish(CHANNEL, {"n": 1})
        await client.push("pub")
        await server.stop()
        await gate.lost.wait()
        await server.start()
        gate.open.set()

        unsubscribed = await client.push("unsubscribe")

    assert unsubscribed["code"] == 2500
