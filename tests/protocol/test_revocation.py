"""Revocation over the client protocol: a revoked connection or subscription token is
refused at connect / subscribe, and a live connection or subscription holding one is
ended within a second; tokens of other issuers with a ``typ`` of their own still work."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from parsec.auth import jws
from parsec.errors import ParsecError

from .harness import RawClient, Server


def signed(server: Server, claims: dict[str, Any]) -> str:
    """A token with exactly ``claims``, signed by the server's active key."""
    return jws.sign(claims, server.parsec.keyring.active)


async def test_a_keycloak_style_subscription_token_is_a_centrifugo_token(server: Server) -> None:
    """A subscription token carrying Keycloak's ``"typ": "Bearer"`` claim is read as a
    Centrifugo subscription token, not refused as a malformed Parsec token."""
    now = int(time.time())
    token = signed(
        server,
        {"sub": "alice", "channel": "locked:room", "typ": "Bearer", "iat": now, "exp": now + 60},
    )
    client = await server.client("alice")

    reply = await client.call("subscribe", {"channel": "locked:room", "token": token})

    assert "subscribe" in reply, reply


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token (read without verifying)."""
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def at(server: Server, user: str, iat: int, **claims: Any) -> str:
    """A connection token of ``user`` issued at ``iat`` (a second after a cutoff, say)."""
    return signed(server, {"sub": user, "iat": iat, "exp": iat + 3600, **claims})


async def connected(server: Server, token: str) -> RawClient:
    client = await server.open()
    reply = await client.connect(token)
    assert "connect" in reply, reply
    return client


async def refused(server: Server, token: str) -> dict[str, Any]:
    """The error a connect with ``token`` is answered with."""
    client = await server.open()
    reply = await client.connect(token)
    assert "error" in reply, reply
    error: dict[str, Any] = reply["error"]
    return error


async def subscribed(client: RawClient, channel: str, token: str) -> None:
    reply = await client.call("subscribe", {"channel": channel, "token": token})
    assert "subscribe" in reply, reply


REVOKED = {"code": 109, "message": "token revoked"}


async def test_revoke_token_ends_the_connection_and_refuses_the_token(server: Server) -> None:
    """Server API revoke_token with a connection token's jti: the live connection holding
    it is closed with 3005 "token revoked" and a connect with it is answered 109; another
    token of the same user keeps working. The answer is an empty result."""
    token = server.token("alice")
    client = await connected(server, token)
    other = await server.client("alice")

    assert await server.api_result("revoke_token", {"uid": claims_of(token)["jti"]}) == {}

    assert await client.closed() == (3005, "token revoked")
    assert await refused(server, token) == REVOKED
    assert "subscribe" in await other.call("subscribe", {"channel": "chat:still"})


async def test_invalidate_user_tokens_ends_the_connections_issued_before(server: Server) -> None:
    """invalidate_user_tokens without channel: the user's connections whose token was
    issued before ``issued_before`` are closed (3005) and their tokens refused (109);
    tokens issued from then on, other users' connections and the user's subscription
    tokens keep working."""
    now = int(time.time())
    old = at(server, "alice", now - 10)
    alice = await connected(server, old)
    bob = await connected(server, at(server, "bob", now - 10))

    await server.api_result("invalidate_user_tokens", {"user": "alice", "issued_before": now})

    assert await alice.closed() == (3005, "token revoked")
    assert await refused(server, old) == REVOKED
    fresh = await connected(server, at(server, "alice", now))
    sub_token = server.sub_token("alice", "locked:room")
    await subscribed(fresh, "locked:room", sub_token)
    assert "subscribe" in await bob.call("subscribe", {"channel": "chat:bob"})


async def test_invalidate_user_tokens_of_a_channel_ends_only_its_subscriptions(
    server: Server,
) -> None:
    """invalidate_user_tokens with channel: the user's subscriptions to that channel
    made with a token issued before are ended (unsubscribe 2501 "token revoked") and
    the token is refused (109); the connection and other channels stay, and a
    subscription token issued afterwards subscribes again."""
    now = int(time.time())
    client = await server.client("alice")
    old = signed(server, {"sub": "alice", "channel": "locked:a", "iat": now - 5})
    await subscribed(client, "locked:a", old)
    await subscribed(client, "locked:b", server.sub_token("alice", "locked:b"))

    body = {"user": "alice", "channel": "locked:a", "issued_before": now}
    await server.api_result("invalidate_user_tokens", body)

    push = await client.push("locked:a", "unsubscribe")
    assert (push["code"], push["reason"]) == (2501, "token revoked")
    again = await client.call("subscribe", {"channel": "locked:a", "token": old})
    assert again["error"] == REVOKED
    new = signed(server, {"sub": "alice", "channel": "locked:a", "iat": now})
    await subscribed(client, "locked:a", new)
    await server.parsec.publish("locked:b", {"still": True})
    assert (await client.push("locked:b", "pub"))["data"] == {"still": True}


async def test_revocation_methods_need_their_required_fields(server: Server) -> None:
    """revoke_token without uid and invalidate_user_tokens without user are 107."""
    for method in ("revoke_token", "invalidate_user_tokens"):
        response = await server.api(method, {})
        assert response.json() == {"error": {"code": 107, "message": "bad request"}}


async def test_parsec_revoke_token_covers_centrifugo_tokens(server: Server) -> None:
    """ParsecService RevokeToken with the jti of a Centrifugo subscription token ends the
    subscription holding it (2501) and refuses the token (109)."""
    client = await server.client("alice")
    token = server.sub_token("alice", "locked:room")
    await subscribed(client, "locked:room", token)

    await server.parsec.revoke_token(claims_of(token)["jti"])

    assert (await client.push("locked:room", "unsubscribe"))["code"] == 2501
    reply = await client.call("subscribe", {"channel": "locked:room", "token": token})
    assert reply["error"] == REVOKED


async def test_parsec_revoke_user_covers_centrifugo_tokens(server: Server) -> None:
    """ParsecService RevokeUser closes the user's connections (3005) and refuses the
    user's connection and subscription tokens issued until then; tokens issued later
    (from the next second) work."""
    old_sub = server.sub_token("alice", "locked:room")
    old = server.token("alice")
    client = await connected(server, old)

    await server.parsec.revoke_user("alice", reason="password changed")
    cutoff = int(time.time())

    assert await client.closed() == (3005, "token revoked")
    assert await refused(server, old) == REVOKED
    fresh = await connected(server, at(server, "alice", cutoff + 1))
    reply = await fresh.call("subscribe", {"channel": "locked:room", "token": old_sub})
    assert reply["error"] == REVOKED


async def test_refresh_with_a_revoked_token_closes_the_connection(server: Server) -> None:
    """A client refreshing its connection with a revoked token is closed with 3005."""
    client = await server.client("alice")
    token = server.token("alice")
    await server.parsec.revoke_token(claims_of(token)["jti"])

    await client.send({"id": 9, "refresh": {"token": token}})

    assert await client.closed() == (3005, "token revoked")


async def test_reuse_detection_ends_the_familys_access_token_subscriptions(
    server: Server,
) -> None:
    """A refresh token redeemed twice revokes its family: the subscription made with the
    family's access token ends (2501) and the access token — and the one the rotation
    gave — subscribe no more (103)."""
    channel = "private:app.room.11"
    creds = await server.parsec.create_private("alice", channel)
    client = await server.client("bob")
    await subscribed(client, channel, creds.access_token)
    rotated = await server.parsec.refresh_access(creds.refresh_token)

    with pytest.raises(ParsecError):
        await server.parsec.refresh_access(creds.refresh_token)

    assert (await client.push(channel, "unsubscribe"))["code"] == 2501
    for token in (creds.access_token, rotated.access_token):
        reply = await client.call("subscribe", {"channel": channel, "token": token})
        assert reply["error"]["code"] == 103
        assert "family is revoked" in reply["error"]["message"]


async def test_revoke_user_refuses_the_users_refresh_tokens(server: Server) -> None:
    """RevokeUser covers the user's refresh tokens: none mints a fresh access token
    (which, issued after the cutoff, would pass it)."""
    creds = await server.parsec.create_private("alice", "private:app.room.12")

    await server.parsec.revoke_user("alice")

    with pytest.raises(ParsecError) as caught:
        await server.parsec.refresh_access(creds.refresh_token)
    assert caught.value.code == "PARSEC_AUTH_DENIED"
