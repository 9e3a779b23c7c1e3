"""Recovery and history never hand a client more than its queue can take in one go.

Missed publications that would not fit the client's queue (``client.queue_max_size``)
in the reply are not sent: the subscribe answers ``recovered: false`` at the stream's
top, so the client does not reconnect into the same wall (3008 slow, over and over).
A history read too large for the queue is an error reply, not a disconnect.
"""

from __future__ import annotations

from typing import Any

import pytest_asyncio

from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import RawClient, Server, default_namespaces

QUEUE = 64 * 1024
PUB = 15_000
"""Bytes of each large publication: 8 of them (120 KB) overflow the queue, 1 fits."""


@pytest_asyncio.fixture(loop_scope="session")
async def server(make_server: ServerFactory) -> Server:
    return await make_server(
        client=ClientOptions(queue_max_size=QUEUE),
        namespaces=default_namespaces(),
        server={"max_publication_size": QUEUE // 2},
    )


async def _position(server: Server, channel: str) -> tuple[int, str]:
    """(offset, epoch) a first subscriber of ``channel`` is told."""
    client = await server.client("first")
    reply = await client.call("subscribe", {"channel": channel})
    await client.aclose()
    return reply["subscribe"].get("offset", 0), reply["subscribe"]["epoch"]


async def _publish_large(server: Server, channel: str, count: int) -> None:
    for n in range(count):
        await server.parsec.publish(channel, {"n": n, "pad": "x" * PUB})


async def _recover(client: RawClient, channel: str, offset: int, epoch: str) -> dict[str, Any]:
    reply = await client.call(
        "subscribe", {"channel": channel, "recover": True, "offset": offset, "epoch": epoch}
    )
    assert "subscribe" in reply, reply
    result: dict[str, Any] = reply["subscribe"]
    return result


async def test_recovery_larger_than_the_queue_is_refused_not_a_3008_loop(server: Server) -> None:
    """Missed publications over the queue size: ``recovered: false`` at the top of the
    stream, the connection stays and live publications follow. Recovering again from
    that position works: the client is past the wall."""
    offset, epoch = await _position(server, "chat:wall")
    await _publish_large(server, "chat:wall", 8)

    for attempt in range(2):  # the same client state, twice: never a disconnect
        client = await server.client()
        result = await _recover(client, "chat:wall", offset, epoch)
        assert result["was_recovering"] is True, attempt
        assert result.get("recovered", False) is False
        assert "publications" not in result
        assert (result["offset"], result["epoch"]) == (8 + attempt, epoch)
        await server.parsec.publish("chat:wall", {"live": attempt})
        pub = await client.push("chat:wall", "pub")
        assert (pub["offset"], pub["data"]) == (9 + attempt, {"live": attempt})
        await client.aclose()

    client = await server.client()
    caught_up = await _recover(client, "chat:wall", 9, epoch)
    assert caught_up["recovered"] is True
    assert [p["data"] for p in caught_up["publications"]] == [{"live": 1}]


async def test_recovery_that_fits_the_queue_is_whole(server: Server) -> None:
    """One large publication fits the queue: it is recovered as usual."""
    offset, epoch = await _position(server, "chat:fits")
    await _publish_large(server, "chat:fits", 1)

    client = await server.client()
    result = await _recover(client, "chat:fits", offset, epoch)

    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [1]


async def test_oversized_recovery_with_flag_2_is_112(server: Server) -> None:
    """A client that asks to be refused when not recovered (flag 2) gets 112."""
    offset, epoch = await _position(server, "chat:flag")
    await _publish_large(server, "chat:flag", 8)

    client = await server.client()
    reply = await client.call(
        "subscribe",
        {"channel": "chat:flag", "recover": True, "offset": offset, "epoch": epoch, "flag": 2},
    )

    assert reply["error"]["code"] == 112


async def test_server_side_recovery_larger_than_the_queue_is_refused(server: Server) -> None:
    """Token subscriptions recovering through connect.subs follow the same rule."""
    offset, epoch = await _position(server, "chat:side")
    await _publish_large(server, "chat:side", 8)

    client = await server.open()
    subs = {"chat:side": {"recover": True, "offset": offset, "epoch": epoch}}
    reply = await client.connect(server.token("alice", channels=["chat:side"]), subs=subs)

    result = reply["connect"]["subs"]["chat:side"]
    assert result["was_recovering"] is True
    assert result.get("recovered", False) is False
    assert result["offset"] == 8
    await server.parsec.publish("chat:side", {"live": True})
    assert (await client.push("chat:side", "pub"))["offset"] == 9


async def test_recovery_whose_reply_outgrows_the_queue_is_refused(server: Server) -> None:
    """Small data but large tags on every publication: the reply, not the data alone,
    is what must fit the queue. It does not, so ``recovered: false``."""
    offset, epoch = await _position(server, "chat:tags")
    for n in range(10):
        body = {"channel": "chat:tags", "data": {"n": n}, "tags": {"t": "t" * 7000}}
        await server.api_result("publish", body)

    client = await server.client()
    result = await _recover(client, "chat:tags", offset, epoch)

    assert result.get("recovered", False) is False
    assert result["offset"] == 10
    await server.parsec.publish("chat:tags", {"live": True})
    assert (await client.push("chat:tags", "pub"))["offset"] == 11


async def test_outgrown_reply_with_flag_2_is_112_and_leaves_no_subscription(
    server: Server,
) -> None:
    """With flag 2, a reply that outgrows the queue is 112 and the channel is not
    subscribed: the client may subscribe again (no 105 already subscribed)."""
    offset, epoch = await _position(server, "chat:tags2")
    for n in range(10):
        body = {"channel": "chat:tags2", "data": {"n": n}, "tags": {"t": "t" * 7000}}
        await server.api_result("publish", body)

    client = await server.client()
    refused = await client.call(
        "subscribe",
        {"channel": "chat:tags2", "recover": True, "offset": offset, "epoch": epoch, "flag": 2},
    )
    again = await client.call("subscribe", {"channel": "chat:tags2"})

    assert refused["error"]["code"] == 112
    assert again["subscribe"]["offset"] == 10


async def test_history_larger_than_the_queue_is_an_error_not_a_disconnect(
    server: Server,
) -> None:
    """A history read whose reply cannot fit the queue is refused with 106 (asking for
    fewer publications); the connection stays and a smaller read works."""
    await _publish_large(server, "chat:hist", 8)
    client = await server.client()
    sub = await client.call("subscribe", {"channel": "chat:hist"})
    assert "subscribe" in sub

    refused = await client.call("history", {"channel": "chat:hist", "limit": 8})
    smaller = await client.call("history", {"channel": "chat:hist", "limit": 2})

    assert refused["error"]["code"] == 106
    assert "limit" in refused["error"]["message"]
    assert [p["offset"] for p in smaller["history"]["publications"]] == [1, 2]
