"""Connection lifecycle timers (stale, ping/pong, expiry) and connection refresh."""

from __future__ import annotations

import time

from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import Server, soon


async def test_no_connect_within_stale_delay_closes_3502(make_server: ServerFactory) -> None:
    """A connection that never sends connect is closed with 3502 stale."""
    server = await make_server(client=ClientOptions(stale_close_delay=0.1))
    client = await server.open()
    assert await client.closed() == (3502, "stale")


async def test_connect_cancels_the_stale_timer(make_server: ServerFactory) -> None:
    """Once connected, the stale delay no longer applies (pings outlive it)."""
    server = await make_server(
        client=ClientOptions(stale_close_delay=0.2, ping_interval=0.5, pong_timeout=0)
    )
    client = await server.client()
    await client.ping()
    reply = await client.call("presence_stats", {"channel": "plain:x"})
    assert reply["error"]["code"] == 108


async def test_pings_are_sent_every_ping_interval(make_server: ServerFactory) -> None:
    """The server sends an empty message {} every ping interval."""
    server = await make_server(client=ClientOptions(ping_interval=0.1, pong_timeout=0))
    client = await server.client()
    started = time.monotonic()
    for _ in range(3):
        await client.ping()
    assert time.monotonic() - started >= 0.25


async def test_pings_continue_on_a_busy_connection(make_server: ServerFactory) -> None:
    """Pings are sent even while other traffic flows (clients only watch pings)."""
    server = await make_server(client=ClientOptions(ping_interval=0.1, pong_timeout=0))
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:busy"})
    await server.parsec.publish("plain:busy", 1)
    await client.ping()
    await server.parsec.publish("plain:busy", 2)
    await client.ping()


async def test_connect_result_without_pong_timeout_has_no_pong(make_server: ServerFactory) -> None:
    """With pong_timeout 0 the connect result does not ask for pongs."""
    server = await make_server(client=ClientOptions(ping_interval=5, pong_timeout=0))
    client = await server.open()
    result = (await client.connect(server.token()))["connect"]
    assert result["ping"] == 5
    assert "pong" not in result


async def test_missing_pong_closes_3012(make_server: ServerFactory) -> None:
    """A client that does not answer a ping within pong_timeout is closed with 3012."""
    server = await make_server(client=ClientOptions(ping_interval=0.1, pong_timeout=0.1))
    client = await server.client()
    assert await client.closed() == (3012, "no pong")
    assert {} in client.inbox


async def test_pongs_keep_the_connection_alive(make_server: ServerFactory) -> None:
    """Answering every ping with {} keeps the connection open across many intervals."""
    server = await make_server(client=ClientOptions(ping_interval=0.2, pong_timeout=0.15))
    client = await server.client()
    for _ in range(4):
        await client.ping()
        await client.send({})
    reply = await client.call("presence_stats", {"channel": "plain:x"})
    assert reply["error"]["code"] == 108


async def test_pong_without_ping_closes_3501(server: Server) -> None:
    """A pong that answers no ping closes with 3501."""
    client = await server.client()
    await client.send({})
    assert (await client.closed())[0] == 3501


async def test_connection_expires_with_3005(make_server: ServerFactory) -> None:
    """An unrefreshed connection is closed with 3005 after expired_close_delay."""
    server = await make_server(client=ClientOptions(expired_close_delay=0.2))
    client = await server.open()
    expire_at = soon()
    result = (await client.connect(server.token(expire_at=expire_at)))["connect"]
    assert result["expires"] is True
    assert result["ttl"] == 1
    assert await client.closed() == (3005, "connection expired")
    assert time.time() >= expire_at + 0.15  # not before the grace delay has passed


async def test_reconnect_with_the_expired_token_gets_109(server: Server) -> None:
    """The token of an expired connection gets 109 on the next connect."""
    client = await server.open()
    reply = await client.connect(server.token(ttl=-1))
    assert reply["error"] == {"code": 109, "message": "token expired"}


async def test_refresh_result_fields(server: Server) -> None:
    """refresh with a fresh token answers client, version, expires and ttl."""
    client = await server.open()
    connected = (await client.connect(server.token("alice", ttl=60)))["connect"]
    reply = await client.call("refresh", {"token": server.token("alice", ttl=7200)})
    result = reply["refresh"]
    assert result["client"] == connected["client"]
    assert result["version"] == connected["version"]
    assert result["expires"] is True
    assert 7190 <= result["ttl"] <= 7200


async def test_refresh_extends_the_connection(make_server: ServerFactory) -> None:
    """A refreshed connection outlives its first token; an unrefreshed twin expires."""
    server = await make_server(client=ClientOptions(expired_close_delay=0.05))
    expire_at = soon()
    refreshed = await server.client("alice", expire_at=expire_at)
    reply = await refreshed.call("refresh", {"token": server.token("alice", ttl=600)})
    assert reply["refresh"]["expires"] is True
    twin = await server.client("alice", expire_at=expire_at)
    assert (await twin.closed())[0] == 3005
    still_open = await refreshed.call("presence_stats", {"channel": "plain:x"})
    assert still_open["error"]["code"] == 108


async def test_refresh_to_a_token_without_expiry_stops_expiry(server: Server) -> None:
    """Refreshing with a token that has no exp answers expires false (field omitted)."""
    client = await server.client("alice", ttl=60)
    reply = await client.call("refresh", {"token": server.token("alice", ttl=None)})
    assert "expires" not in reply["refresh"]


async def test_refresh_with_another_users_token_closes_3500(server: Server) -> None:
    """A refresh token for a different user closes with 3500."""
    client = await server.client("alice")
    await client.send({"id": 2, "refresh": {"token": server.token("mallory")}})
    assert await client.closed() == (3500, "invalid token")


async def test_refresh_with_an_expired_token_closes_3005(server: Server) -> None:
    """A refresh with an expired token closes with 3005."""
    client = await server.client("alice")
    await client.send({"id": 2, "refresh": {"token": server.token("alice", ttl=-5)}})
    assert await client.closed() == (3005, "connection expired")


async def test_refresh_with_an_invalid_token_closes_3500(server: Server) -> None:
    """A refresh with a token that does not verify closes with 3500."""
    client = await server.client("alice")
    await client.send({"id": 2, "refresh": {"token": "garbage"}})
    assert (await client.closed())[0] == 3500


async def test_refresh_with_expire_at_in_the_past_closes_3005(server: Server) -> None:
    """A valid refresh token whose expire_at has passed closes with 3005."""
    client = await server.client("alice")
    token = server.token("alice", expire_at=int(time.time()) - 5)
    await client.send({"id": 2, "refresh": {"token": token}})
    assert (await client.closed())[0] == 3005


async def test_refresh_updates_conn_info(server: Server) -> None:
    """The refresh token's info becomes the connection's conn_info."""
    client = await server.client("alice", info={"v": 1})
    await client.call("refresh", {"token": server.token("alice", info={"v": 2})})
    await client.call("subscribe", {"channel": "chat:info"})
    presence = (await client.call("presence", {"channel": "chat:info"}))["presence"]
    (entry,) = presence["presence"].values()
    assert entry["conn_info"] == {"v": 2}


async def test_server_shutdown_closes_clients_with_3001(make_server: ServerFactory) -> None:
    """Stopping the server closes every client with 3001 shutdown."""
    server = await make_server()
    client = await server.client()
    await server.parsec.aclose()
    assert await client.closed() == (3001, "shutdown")
