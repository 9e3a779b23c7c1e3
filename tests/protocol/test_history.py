"""history from the client side: availability, permission, limit, since, reverse."""

from __future__ import annotations

from typing import Any

from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import RawClient, Server


async def _publish(server: Server, channel: str, count: int) -> str:
    """Publish 1..count to ``channel``; the stream's epoch."""
    epoch = ""
    for n in range(1, count + 1):
        epoch = (await server.parsec.publish(channel, {"n": n})).epoch
    return epoch


async def _history(client: RawClient, **body: Any) -> dict[str, Any]:
    reply = await client.call("history", body)
    assert "history" in reply, reply
    result: dict[str, Any] = reply["history"]
    return result


def _ns(result: dict[str, Any]) -> list[int]:
    return [p["data"]["n"] for p in result["publications"]]


async def test_history_when_off_is_108(server: Server) -> None:
    """history answers 108 where the namespace keeps no history."""
    client = await server.client()
    reply = await client.call("history", {"channel": "plain:room", "limit": 10})
    assert reply["error"] == {"code": 108, "message": "not available"}


async def test_history_without_permission_is_103(server: Server) -> None:
    """history needs permission: chat only for subscribers, locked for nobody."""
    client = await server.client()
    for channel in ["chat:room", "locked:room"]:
        reply = await client.call("history", {"channel": channel, "limit": 10})
        assert reply["error"]["code"] == 103, channel


async def test_history_bad_channel(server: Server) -> None:
    """history with an empty channel is 107, with an unknown namespace 102."""
    client = await server.client()
    assert (await client.call("history", {"channel": ""}))["error"]["code"] == 107
    assert (await client.call("history", {"channel": "nope:x"}))["error"]["code"] == 102


async def test_history_returns_publications_and_position(server: Server) -> None:
    """history returns kept publications oldest first, with epoch and top offset."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    epoch = await _publish(server, "chat:h", 3)
    result = await _history(client, channel="chat:h", limit=-1)
    assert result == {
        "publications": [
            {"data": {"n": 1}, "offset": 1},
            {"data": {"n": 2}, "offset": 2},
            {"data": {"n": 3}, "offset": 3},
        ],
        "epoch": epoch,
        "offset": 3,
    }


async def test_history_limit_zero_returns_position_only(server: Server) -> None:
    """limit 0 (or absent) returns only the stream position."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    epoch = await _publish(server, "chat:h", 2)
    assert await _history(client, channel="chat:h") == {
        "publications": [],
        "epoch": epoch,
        "offset": 2,
    }


async def test_history_of_an_empty_stream(server: Server) -> None:
    """A stream nobody published to has offset 0 and a fresh epoch."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:new"})
    result = await _history(client, channel="chat:new", limit=10)
    assert result["publications"] == []
    assert result["offset"] == 0
    assert len(result["epoch"]) == 8


async def test_history_limit(server: Server) -> None:
    """limit N returns the N oldest kept publications."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    await _publish(server, "chat:h", 5)
    assert _ns(await _history(client, channel="chat:h", limit=2)) == [1, 2]


async def test_history_reverse(server: Server) -> None:
    """reverse returns the newest first."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    await _publish(server, "chat:h", 5)
    assert _ns(await _history(client, channel="chat:h", limit=2, reverse=True)) == [5, 4]


async def test_history_since(server: Server) -> None:
    """since returns the publications after the given position."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    epoch = await _publish(server, "chat:h", 5)
    since = {"offset": 3, "epoch": epoch}
    assert _ns(await _history(client, channel="chat:h", limit=10, since=since)) == [4, 5]
    top = {"offset": 5, "epoch": epoch}
    assert _ns(await _history(client, channel="chat:h", limit=10, since=top)) == []


async def test_history_since_reverse_pages_backwards(server: Server) -> None:
    """since with reverse returns the publications before that position, newest first."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    epoch = await _publish(server, "chat:h", 5)
    since = {"offset": 4, "epoch": epoch}
    result = await _history(client, channel="chat:h", limit=2, reverse=True, since=since)
    assert _ns(result) == [3, 2]


async def test_history_since_wrong_epoch_is_112(server: Server) -> None:
    """since in another epoch is refused with 112."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    await _publish(server, "chat:h", 2)
    body = {"channel": "chat:h", "limit": 10, "since": {"offset": 1, "epoch": "stale"}}
    reply = await client.call("history", body)
    assert reply["error"] == {"code": 112, "message": "unrecoverable position"}


async def test_history_keeps_only_history_size(server: Server) -> None:
    """Only the newest history_size (10 in chat) publications are kept."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    await _publish(server, "chat:h", 13)
    result = await _history(client, channel="chat:h", limit=-1)
    assert _ns(result) == list(range(4, 14))
    assert result["offset"] == 13


async def test_history_limit_is_clamped(make_server: ServerFactory) -> None:
    """A limit above history_max_publication_limit, or negative, is clamped to it."""
    server = await make_server(client=ClientOptions(history_max_publication_limit=3))
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:h"})
    await _publish(server, "chat:h", 6)
    assert _ns(await _history(client, channel="chat:h", limit=100)) == [1, 2, 3]
    assert _ns(await _history(client, channel="chat:h", limit=-1)) == [1, 2, 3]


async def test_history_for_client_needs_no_subscription(make_server: ServerFactory) -> None:
    """allow_history_for_client lets any connection read history."""
    from parsec import Namespace

    ns = Namespace(name="log", history_size=5, history_ttl=60, allow_history_for_client=True)
    server = await make_server(namespaces=[ns])
    client = await server.client()
    await _publish(server, "log:x", 2)
    assert _ns(await _history(client, channel="log:x", limit=5)) == [1, 2]


async def test_history_includes_publisher_info(server: Server) -> None:
    """A client publication keeps its info in history."""
    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    await client.call("subscribe", {"channel": "chat:h"})
    await client.call("publish", {"channel": "chat:h", "data": "x"})
    result = await _history(client, channel="chat:h", limit=1)
    assert result["publications"][0]["info"] == {"user": "alice", "client": client_id}
