"""Positioning and recovery on subscribe: all missed publications or none."""

from __future__ import annotations

from typing import Any

from parsec.backends.memory import MemoryBroker
from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import RawClient, Server


async def _publish(server: Server, channel: str, first: int, last: int) -> None:
    for n in range(first, last + 1):
        await server.parsec.publish(channel, {"n": n})


async def _subscribe(client: RawClient, **body: Any) -> dict[str, Any]:
    reply = await client.call("subscribe", body)
    assert "subscribe" in reply, reply
    result: dict[str, Any] = reply["subscribe"]
    return result


async def _position(server: Server, channel: str) -> tuple[int, str]:
    """(offset, epoch) a first subscriber of ``channel`` is told."""
    client = await server.client("first")
    result = await _subscribe(client, channel=channel)
    return result.get("offset", 0), result["epoch"]


async def test_positioned_result_has_epoch_and_offset(server: Server) -> None:
    """A recoverable channel's subscribe result carries the stream's epoch and top."""
    await _publish(server, "chat:r", 1, 2)
    client = await server.client()
    result = await _subscribe(client, channel="chat:r")
    assert result["positioned"] is True
    assert result["recoverable"] is True
    assert result["offset"] == 2
    assert len(result["epoch"]) == 8
    assert "recovered" not in result
    assert "was_recovering" not in result


async def test_positioning_is_opt_in_where_allowed(server: Server) -> None:
    """In an allow_positioning namespace the client chooses positioned / recoverable."""
    client = await server.client()
    assert await _subscribe(client, channel="opt:a") == {}
    positioned = await _subscribe(client, channel="opt:b", positioned=True)
    assert positioned["positioned"] is True
    assert "recoverable" not in positioned
    recoverable = await _subscribe(client, channel="opt:c", recoverable=True)
    assert recoverable["positioned"] is True
    assert recoverable["recoverable"] is True


async def test_positioning_is_not_granted_without_permission(server: Server) -> None:
    """Asking positioned / recoverable where neither is allowed changes nothing."""
    client = await server.client()
    token = server.sub_token("alice", "locked:a", ttl=None)
    result = await _subscribe(
        client, channel="locked:a", token=token, positioned=True, recoverable=True
    )
    assert result == {}


async def test_history_permission_allows_positioning(make_server: ServerFactory) -> None:
    """A client that may read history may ask for positioning and recovery."""
    from parsec import Namespace

    ns = Namespace(
        name="feed",
        history_size=5,
        history_ttl=60,
        allow_subscribe_for_client=True,
        allow_history_for_subscriber=True,
    )
    server = await make_server(namespaces=[ns])
    client = await server.client()
    assert await _subscribe(client, channel="feed:a") == {}
    result = await _subscribe(client, channel="feed:b", recoverable=True)
    assert result["recoverable"] is True


async def test_recovery_returns_exactly_the_missed_publications(server: Server) -> None:
    """Recovering from an offset returns every later publication, recovered true."""
    await _publish(server, "chat:r", 1, 2)
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 3, 5)
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    assert result["recovered"] is True
    assert result["was_recovering"] is True
    assert result["epoch"] == epoch
    assert result["offset"] == 5
    assert result["publications"] == [
        {"data": {"n": 3}, "offset": 3},
        {"data": {"n": 4}, "offset": 4},
        {"data": {"n": 5}, "offset": 5},
    ]


async def test_recovery_with_nothing_missed(server: Server) -> None:
    """Recovering from the top offset is recovered with no publications."""
    await _publish(server, "chat:r", 1, 3)
    offset, epoch = await _position(server, "chat:r")
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    assert result["recovered"] is True
    assert "publications" not in result


async def test_live_publications_continue_after_recovery(server: Server) -> None:
    """After a recovery, live publications continue at the next offset."""
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 2)
    client = await server.client()
    await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    await _publish(server, "chat:r", 3, 3)
    assert await client.push("chat:r", "pub") == {"data": {"n": 3}, "offset": 3}


async def test_more_missed_than_history_size_is_not_recovered(server: Server) -> None:
    """When history dropped some missed publications: recovered false and none at all."""
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 12)  # chat keeps 10
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    assert "recovered" not in result
    assert "publications" not in result
    assert result["was_recovering"] is True
    assert result["offset"] == 12
    assert result["epoch"] == epoch


async def test_more_missed_than_recovery_limit_is_not_recovered(
    make_server: ServerFactory,
) -> None:
    """More missed than recovery_max_publication_limit: recovered false, no partial set."""
    server = await make_server(client=ClientOptions(recovery_max_publication_limit=3))
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 5)
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    assert "recovered" not in result
    assert "publications" not in result


async def test_recovery_limit_exactly_reached_is_recovered(make_server: ServerFactory) -> None:
    """Exactly recovery_max_publication_limit missed publications still recover."""
    server = await make_server(client=ClientOptions(recovery_max_publication_limit=3))
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 3)
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=offset, epoch=epoch)
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [1, 2, 3]


async def test_wrong_epoch_is_not_recovered(server: Server) -> None:
    """A position from another epoch is not recovered; the result has the real epoch."""
    await _publish(server, "chat:r", 1, 3)
    client = await server.client()
    result = await _subscribe(client, channel="chat:r", recover=True, offset=1, epoch="gone")
    assert "recovered" not in result
    assert "publications" not in result
    assert result["epoch"] != "gone"
    assert result["offset"] == 3


async def test_future_offset_is_not_recovered(server: Server) -> None:
    """An offset beyond the stream's top is not recovered."""
    await _publish(server, "chat:r", 1, 2)
    offset, epoch = await _position(server, "chat:r")
    client = await server.client()
    result = await _subscribe(
        client, channel="chat:r", recover=True, offset=offset + 5, epoch=epoch
    )
    assert "recovered" not in result


async def test_unrecoverable_with_flag_2_is_112(server: Server) -> None:
    """With flag bit 2, an unrecoverable position is error 112, not recovered false."""
    await _publish(server, "chat:r", 1, 3)
    client = await server.client()
    body = {"channel": "chat:r", "recover": True, "offset": 1, "epoch": "gone", "flag": 2}
    reply = await client.call("subscribe", body)
    assert reply["error"] == {"code": 112, "message": "unrecoverable position"}
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:r"})


async def test_recoverable_with_flag_2_is_recovered(server: Server) -> None:
    """flag bit 2 does not change a recoverable subscribe."""
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 1)
    client = await server.client()
    body = {"channel": "chat:r", "recover": True, "offset": offset, "epoch": epoch, "flag": 3}
    result = (await client.call("subscribe", body))["subscribe"]
    assert result["recovered"] is True


async def test_recover_is_ignored_where_not_recoverable(server: Server) -> None:
    """recover on a channel that is not recoverable answers a plain result."""
    client = await server.client()
    result = await _subscribe(client, channel="plain:r", recover=True, offset=3, epoch="x")
    assert result == {}


async def test_server_side_subscription_recovers_from_connect_subs(server: Server) -> None:
    """connect.subs positions recover the token's server-side subscriptions."""
    offset, epoch = await _position(server, "chat:s")
    await _publish(server, "chat:s", 1, 2)
    client = await server.open()
    subs = {"chat:s": {"recover": True, "offset": offset, "epoch": epoch}}
    reply = await client.connect(server.token("alice", channels=["chat:s"]), subs=subs)
    result = reply["connect"]["subs"]["chat:s"]
    assert result["recovered"] is True
    assert [p["data"]["n"] for p in result["publications"]] == [1, 2]


async def test_no_publication_lost_between_recovery_and_live(server: Server) -> None:
    """Publications sent while a recovering subscribe is in flight arrive once, in order."""
    offset, epoch = await _position(server, "chat:r")
    await _publish(server, "chat:r", 1, 2)
    client = await server.client()
    command_id = client.next_id()
    await client.send(
        {
            "id": command_id,
            "subscribe": {"channel": "chat:r", "recover": True, "offset": offset, "epoch": epoch},
        }
    )
    await _publish(server, "chat:r", 3, 4)
    result = (await client.reply(command_id))["subscribe"]
    recovered = [p["offset"] for p in result["publications"]]
    live = [(await client.push("chat:r", "pub"))["offset"] for _ in range(4 - result["offset"])]
    assert recovered + live == [1, 2, 3, 4]


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_epoch_change_unsubscribes_client_with_2500(make_server: ServerFactory) -> None:
    """A new stream epoch unsubscribes a positioned client subscription (2500)."""
    clock = _Clock()
    server = await make_server(broker=MemoryBroker(clock=clock))
    client = await server.client()
    await _subscribe(client, channel="chat:e")
    await server.parsec.publish("chat:e", 1)
    assert (await client.push("chat:e", "pub"))["offset"] == 1
    clock.now += 31 * 24 * 3600.0  # the stream's meta expires: the next publish starts anew
    await server.parsec.publish("chat:e", 2)
    assert await client.push("chat:e", "unsubscribe") == {
        "code": 2500,
        "reason": "insufficient state",
    }
    stats = await server.api_result("presence_stats", {"channel": "chat:e"})
    assert stats == {"num_clients": 0, "num_users": 0}
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:e"})


async def test_epoch_change_disconnects_server_side_subscriber_3010(
    make_server: ServerFactory,
) -> None:
    """When the stream starts a new epoch, a server-side subscriber is closed with 3010."""
    clock = _Clock()
    server = await make_server(broker=MemoryBroker(clock=clock))
    client = await server.client("alice", channels=["chat:e"])
    await server.parsec.publish("chat:e", 1)
    assert (await client.push("chat:e", "pub"))["offset"] == 1
    clock.now += 31 * 24 * 3600.0
    await server.parsec.publish("chat:e", 2)
    assert await client.closed() == (3010, "insufficient state")
