"""Subscription expiry and sub_refresh."""

from __future__ import annotations

import pytest

from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import Server, soon

CHANNEL = "private:app.room.1"
TWIN = "private:app.room.2"


@pytest.fixture(autouse=True)
async def _channels(server: Server) -> None:
    """The private channels these tests subscribe to exist."""
    await server.managed(CHANNEL, TWIN)


async def test_sub_refresh_extends_the_subscription(server: Server) -> None:
    """sub_refresh with a fresh token answers expires and the new ttl."""
    client = await server.client("alice")
    token = server.sub_token("alice", CHANNEL, ttl=60)
    await client.call("subscribe", {"channel": CHANNEL, "token": token})
    fresh = server.sub_token("alice", CHANNEL, ttl=900)
    reply = await client.call("sub_refresh", {"channel": CHANNEL, "token": fresh})
    result = reply["sub_refresh"]
    assert result["expires"] is True
    assert 890 <= result["ttl"] <= 900


async def test_sub_refresh_updates_chan_info(server: Server) -> None:
    """The refreshed token's info becomes the subscription's chan_info."""
    client = await server.client("alice")
    token = server.sub_token("alice", CHANNEL, info={"v": 1})
    await client.call("subscribe", {"channel": CHANNEL, "token": token})
    fresh = server.sub_token("alice", CHANNEL, info={"v": 2})
    await client.call("sub_refresh", {"channel": CHANNEL, "token": fresh})
    presence = await server.api_result("presence", {"channel": CHANNEL})
    (entry,) = presence["presence"].values()
    assert entry["chan_info"] == {"v": 2}


async def test_sub_refresh_with_expired_token_closes_3006(server: Server) -> None:
    """sub_refresh with an expired token closes with 3006."""
    client = await server.client("alice")
    await client.call(
        "subscribe", {"channel": CHANNEL, "token": server.sub_token("alice", CHANNEL)}
    )
    expired = server.sub_token("alice", CHANNEL, ttl=-5)
    await client.send({"id": 3, "sub_refresh": {"channel": CHANNEL, "token": expired}})
    assert await client.closed() == (3006, "subscription expired")


async def test_sub_refresh_for_another_channel_closes_3500(server: Server) -> None:
    """A sub_refresh token naming another channel closes with 3500."""
    client = await server.client("alice")
    await client.call(
        "subscribe", {"channel": CHANNEL, "token": server.sub_token("alice", CHANNEL)}
    )
    other = server.sub_token("alice", TWIN)
    await client.send({"id": 3, "sub_refresh": {"channel": CHANNEL, "token": other}})
    assert await client.closed() == (3500, "invalid token")


async def test_sub_refresh_for_another_user_closes_3500(server: Server) -> None:
    """A sub_refresh token minted for another user closes with 3500."""
    client = await server.client("alice")
    await client.call(
        "subscribe", {"channel": CHANNEL, "token": server.sub_token("alice", CHANNEL)}
    )
    other = server.sub_token("mallory", CHANNEL)
    await client.send({"id": 3, "sub_refresh": {"channel": CHANNEL, "token": other}})
    assert (await client.closed())[0] == 3500


async def test_sub_refresh_with_a_token_bound_to_another_client_closes_3500(
    server: Server,
) -> None:
    """A sub_refresh token bound (client claim) to another client closes with 3500, as at
    subscribe; one bound to this client refreshes."""
    import jwt

    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    await client.call(
        "subscribe", {"channel": CHANNEL, "token": server.sub_token("alice", CHANNEL)}
    )
    key = server.parsec.keyring.active

    def bound_to(client: str) -> str:
        claims = {"sub": "alice", "channel": CHANNEL, "client": client, "exp": 4102444800}
        return jwt.encode(claims, key.secret, algorithm=key.alg, headers={"kid": key.id})

    own = await client.call("sub_refresh", {"channel": CHANNEL, "token": bound_to(client_id)})
    assert own["sub_refresh"]["expires"] is True
    stolen = bound_to(client_id + "x")
    await client.send({"id": 9, "sub_refresh": {"channel": CHANNEL, "token": stolen}})
    assert await client.closed() == (3500, "invalid token")


async def test_sub_refresh_with_invalid_token_closes_3500(server: Server) -> None:
    """A sub_refresh token that does not verify closes with 3500."""
    client = await server.client("alice")
    await client.call(
        "subscribe", {"channel": CHANNEL, "token": server.sub_token("alice", CHANNEL)}
    )
    await client.send({"id": 3, "sub_refresh": {"channel": CHANNEL, "token": "bad"}})
    assert (await client.closed())[0] == 3500


async def test_sub_refresh_when_not_subscribed_is_103(server: Server) -> None:
    """sub_refresh for a channel the client is not subscribed to is refused with 103."""
    client = await server.client("alice")
    token = server.sub_token("alice", CHANNEL)
    reply = await client.call("sub_refresh", {"channel": CHANNEL, "token": token})
    assert reply["error"]["code"] == 103


async def test_client_subscription_expires_with_unsubscribe_2501(
    make_server: ServerFactory,
) -> None:
    """An unrefreshed client-side subscription gets an unsubscribe push 2501."""
    server = await make_server(client=ClientOptions(expired_sub_close_delay=0.05))
    await server.managed(CHANNEL)
    client = await server.client("alice")
    token = server.sub_token("alice", CHANNEL, expire_at=soon())
    result = (await client.call("subscribe", {"channel": CHANNEL, "token": token}))["subscribe"]
    assert result["expires"] is True
    assert result["ttl"] == 1
    assert await client.push(CHANNEL, "unsubscribe") == {
        "code": 2501,
        "reason": "subscription expired",
    }
    await server.parsec.publish(CHANNEL, "after")
    await client.call("subscribe", {"channel": "plain:marker"})
    await server.parsec.publish("plain:marker", "marker")
    assert (await client.push("plain:marker", "pub"))["data"] == "marker"
    assert not client.inbox


async def test_refreshed_subscription_does_not_expire(make_server: ServerFactory) -> None:
    """A refreshed subscription outlives its first token; an unrefreshed twin expires."""
    server = await make_server(client=ClientOptions(expired_sub_close_delay=0.05))
    await server.managed(CHANNEL, TWIN)
    client = await server.client("alice")
    expire_at = soon()
    twin = TWIN
    for channel in (CHANNEL, twin):
        token = server.sub_token("alice", channel, expire_at=expire_at)
        await client.call("subscribe", {"channel": channel, "token": token})
    fresh = server.sub_token("alice", CHANNEL, ttl=600)
    await client.call("sub_refresh", {"channel": CHANNEL, "token": fresh})
    assert (await client.push(twin, "unsubscribe"))["code"] == 2501
    await server.parsec.publish(CHANNEL, "alive")
    assert (await client.push(CHANNEL, "pub"))["data"] == "alive"


async def test_server_side_subscription_expiry_closes_3006(make_server: ServerFactory) -> None:
    """A server-side subscription with expire_at that passes closes with 3006."""
    server = await make_server(client=ClientOptions(expired_sub_close_delay=0.05))
    client = await server.client("alice")
    await server.api_result(
        "subscribe", {"user": "alice", "channel": "plain:srv", "expire_at": soon()}
    )
    push = await client.push("plain:srv", "subscribe")
    assert push["expires"] is True
    assert await client.closed() == (3006, "subscription expired")


async def test_sub_refresh_of_server_side_subscription_is_103(server: Server) -> None:
    """Server-side subscriptions are not refreshed by the client (103)."""
    client = await server.client("alice", channels=[CHANNEL])
    token = server.sub_token("alice", CHANNEL)
    reply = await client.call("sub_refresh", {"channel": CHANNEL, "token": token})
    assert reply["error"]["code"] == 103
