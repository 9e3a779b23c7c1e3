"""publish, presence and presence_stats from the client side."""

from __future__ import annotations

import asyncio

from parsec.backends.memory import MemoryBroker

from .conftest import ServerFactory
from .harness import WAIT, Server


async def test_publish_reaches_every_subscriber_with_info(server: Server) -> None:
    """A client publication reaches all subscribers, itself included, with its info."""
    alice = await server.open()
    alice_id = (await alice.connect(server.token("alice", info={"n": "A"})))["connect"]["client"]
    bob = await server.client("bob")
    await alice.call("subscribe", {"channel": "chat:room"})
    await bob.call("subscribe", {"channel": "chat:room"})
    reply = await alice.call("publish", {"channel": "chat:room", "data": {"text": "hi"}})
    assert reply == {"id": 3, "publish": {}}
    expected = {
        "data": {"text": "hi"},
        "offset": 1,
        "info": {"user": "alice", "client": alice_id, "conn_info": {"n": "A"}},
    }
    assert await alice.push("chat:room", "pub") == expected
    assert await bob.push("chat:room", "pub") == expected


async def test_publish_preserves_any_json_value(server: Server) -> None:
    """Strings, numbers, arrays, null and nested objects arrive as sent."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:values"})
    values: list[object] = ["text\nwith newline", 3.5, [1, [2]], None, {"a": {"b": []}}, True]
    for value in values:
        await client.call("publish", {"channel": "plain:values", "data": value})
        assert (await client.push("plain:values", "pub"))["data"] == value


async def test_publish_offsets_grow_by_one(server: Server) -> None:
    """Publications in a history channel carry offsets 1, 2, 3 … in order."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:count"})
    for n in range(1, 4):
        await client.call("publish", {"channel": "chat:count", "data": n})
    offsets = [(await client.push("chat:count", "pub"))["offset"] for _ in range(3)]
    assert offsets == [1, 2, 3]


async def test_publish_without_permission_is_103(server: Server) -> None:
    """chat allows publishing to subscribers only; locked to nobody."""
    client = await server.client()
    for channel in ["chat:room", "locked:room"]:
        reply = await client.call("publish", {"channel": channel, "data": 1})
        message = f"permission denied: publish to {channel!r}"
        assert reply["error"] == {"code": 103, "message": message}, channel


async def test_publish_for_client_needs_no_subscription(server: Server) -> None:
    """allow_publish_for_client lets a connection publish without subscribing."""
    sender = await server.client("alice")
    reader = await server.client("bob")
    await reader.call("subscribe", {"channel": "plain:open"})
    assert "publish" in await sender.call("publish", {"channel": "plain:open", "data": "x"})
    assert (await reader.push("plain:open", "pub"))["data"] == "x"


async def test_publish_without_data_is_107(server: Server) -> None:
    """A publish with no data is refused with 107."""
    client = await server.client()
    reply = await client.call("publish", {"channel": "plain:room"})
    assert reply["error"] == {"code": 107, "message": "bad request"}


async def test_publish_without_channel_is_107(server: Server) -> None:
    """A publish with an empty channel is refused with 107."""
    client = await server.client()
    reply = await client.call("publish", {"channel": "", "data": 1})
    assert reply["error"]["code"] == 107


async def test_publish_to_unknown_namespace_is_102(server: Server) -> None:
    """A publish to a channel in no configured namespace is refused with 102."""
    client = await server.client()
    reply = await client.call("publish", {"channel": "nope:room", "data": 1})
    assert reply["error"]["code"] == 102


async def test_anonymous_publish_needs_anonymous_permission(make_server: ServerFactory) -> None:
    """Anonymous clients publish only where allow_publish_for_anonymous is set."""
    server = await make_server(allow_anonymous=True)
    client = await server.open()
    await client.connect()
    assert "publish" in await client.call("publish", {"channel": "anon:room", "data": 1})
    reply = await client.call("publish", {"channel": "plain:room", "data": 1})
    assert reply["error"]["code"] == 103


async def test_presence_lists_subscribers(server: Server) -> None:
    """presence maps each subscribed client id to its user and client."""
    alice = await server.open()
    alice_id = (await alice.connect(server.token("alice")))["connect"]["client"]
    bob = await server.open()
    bob_id = (await bob.connect(server.token("bob")))["connect"]["client"]
    await alice.call("subscribe", {"channel": "chat:room"})
    await bob.call("subscribe", {"channel": "chat:room"})
    reply = await alice.call("presence", {"channel": "chat:room"})
    assert reply["presence"] == {
        "presence": {
            alice_id: {"user": "alice", "client": alice_id},
            bob_id: {"user": "bob", "client": bob_id},
        }
    }


async def test_presence_stats_counts_clients_and_users(server: Server) -> None:
    """presence_stats counts distinct clients and distinct users."""
    clients = [await server.client(user) for user in ["alice", "alice", "bob"]]
    for client in clients:
        await client.call("subscribe", {"channel": "chat:room"})
    reply = await clients[0].call("presence_stats", {"channel": "chat:room"})
    assert reply["presence_stats"] == {"num_clients": 3, "num_users": 2}


async def test_presence_of_channel_nobody_is_in(server: Server) -> None:
    """A channel nobody is in has empty presence and zero stats."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:a"})
    empty = {"channel": "chat:empty"}
    assert (await client.call("presence", {"channel": "chat:a"}))["presence"]["presence"]
    assert await server.api_result("presence", empty) == {"presence": {}}
    assert await server.api_result("presence_stats", empty) == {"num_clients": 0, "num_users": 0}


async def test_presence_when_off_is_108(server: Server) -> None:
    """presence and presence_stats answer 108 where presence is off."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:room"})
    for method in ["presence", "presence_stats"]:
        reply = await client.call(method, {"channel": "plain:room"})
        assert reply["error"] == {"code": 108, "message": "not available"}, method


async def test_presence_without_permission_is_103(server: Server) -> None:
    """presence needs permission: chat only for subscribers, locked for nobody."""
    client = await server.client()
    for channel in ["chat:room", "locked:room"]:
        for method in ["presence", "presence_stats"]:
            reply = await client.call(method, {"channel": channel})
            assert reply["error"]["code"] == 103, (method, channel)


async def test_presence_bad_channel_is_107_or_102(server: Server) -> None:
    """presence with an empty channel is 107, with an unknown namespace 102."""
    client = await server.client()
    assert (await client.call("presence", {"channel": ""}))["error"]["code"] == 107
    assert (await client.call("presence", {"channel": "nope:x"}))["error"]["code"] == 102


async def test_presence_removed_when_session_disconnects(server: Server) -> None:
    """A client's presence entry goes away when its connection closes."""
    watcher = await server.open()
    watcher_id = (await watcher.connect(server.token("alice")))["connect"]["client"]
    await watcher.call("subscribe", {"channel": "opt:room", "join_leave": True})
    leaving = await server.open()
    leaving_id = (await leaving.connect(server.token("bob")))["connect"]["client"]
    await leaving.call("subscribe", {"channel": "opt:room"})
    before = (await watcher.call("presence", {"channel": "opt:room"}))["presence"]["presence"]
    assert leaving_id in before
    await leaving.aclose()
    await watcher.next(
        lambda m: m.get("push", {}).get("leave", {}).get("info", {}).get("client") == leaving_id
    )
    after = (await watcher.call("presence", {"channel": "opt:room"}))["presence"]["presence"]
    assert set(after) == {watcher_id}


async def test_presence_removed_when_server_disconnects_session(server: Server) -> None:
    """A session closed by the server (3012, 3501, API) leaves presence too."""
    client = await server.client("bob")
    await client.call("subscribe", {"channel": "chat:room"})
    await client.send("garbage")
    assert (await client.closed())[0] == 3501
    stats = await server.api_result("presence_stats", {"channel": "chat:room"})
    assert stats == {"num_clients": 0, "num_users": 0}


async def test_presence_removed_on_unsubscribe(server: Server) -> None:
    """Unsubscribing removes the client from the channel's presence."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:room"})
    await client.call("unsubscribe", {"channel": "chat:room"})
    assert await server.api_result("presence", {"channel": "chat:room"}) == {"presence": {}}


class _GatedBroker(MemoryBroker):
    """A memory broker whose node-level subscribe waits until the test opens a gate,
    as a networked broker may take its time."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        self.entered.set()
        await self.gate.wait()


async def test_session_closed_during_subscribe_leaves_no_presence(
    make_server: ServerFactory,
) -> None:
    """A session closed while its subscribe waits on the broker is not left in presence."""
    broker = _GatedBroker()
    server = await make_server(broker=broker)
    client = await server.client("alice")
    await client.send({"id": 2, "subscribe": {"channel": "chat:slow"}})
    async with asyncio.timeout(WAIT):
        await broker.entered.wait()
    disconnect = asyncio.create_task(server.api("disconnect", {"user": "alice"}))
    assert (await client.closed())[0] == 3503
    broker.gate.set()
    assert (await disconnect).status_code == 200
    stats = await server.api_result("presence_stats", {"channel": "chat:slow"})
    assert stats == {"num_clients": 0, "num_users": 0}
    assert await server.api_result("channels", {}) == {"channels": {}}
