"""Parsec-managed channels (public: / private:) over the client protocol: lifecycle
gates, access tokens as subscription tokens, and what clients see when a channel
closes or is deleted."""

from __future__ import annotations

import asyncio

import pytest

from parsec.auth.scopes import Scope
from parsec.errors import ParsecError

from .harness import Server

PUBLIC = "public:app.news"
PRIVATE = "private:app.room.7"


async def _code(server: Server, channel: str, token: str = "", user: str = "alice") -> int:
    client = await server.client(user)
    body = {"channel": channel, **({"token": token} if token else {})}
    reply = await client.call("subscribe", body)
    assert "error" in reply, reply
    code: int = reply["error"]["code"]
    return code


async def test_public_channel_must_be_open_to_subscribe(server: Server) -> None:
    """A public channel nobody opened is refused with 404 PARSEC_CHANNEL_NOT_FOUND."""
    client = await server.client("alice")
    reply = await client.call("subscribe", {"channel": PUBLIC})
    assert reply["error"]["code"] == 404
    assert reply["error"]["message"].startswith("PARSEC_CHANNEL_NOT_FOUND")
    await server.parsec.open_public(PUBLIC)
    assert "subscribe" in await client.call("subscribe", {"channel": PUBLIC})


async def test_closed_public_channel_keeps_subscribers_and_refuses_new_ones(
    server: Server,
) -> None:
    """Idle past its TTL, a public channel closes: subscribers stay, new subscribes
    get 412 PARSEC_CHANNEL_CLOSED, publishing is an error until it is reopened."""
    await server.parsec.open_public(PUBLIC, ttl=0.01)
    member = await server.client("alice")
    await member.call("subscribe", {"channel": PUBLIC})
    await asyncio.sleep(0.02)
    events = await server.parsec.manager.sweep()
    assert [(e.kind, e.name) for e in events] == [("closed", PUBLIC)]
    assert await _code(server, PUBLIC) == 412
    with pytest.raises(ParsecError) as info:
        await server.parsec.publish(PUBLIC, {"n": 1})
    assert info.value.code == "PARSEC_CHANNEL_CLOSED"
    await server.parsec.open_public(PUBLIC)
    await server.parsec.publish(PUBLIC, {"n": 2})
    assert (await member.push(PUBLIC, "pub"))["data"] == {"n": 2}


async def test_access_token_subscribes_its_private_channel_only(server: Server) -> None:
    """The access token CreatePrivate returns is the subscription token of its channel;
    nobody subscribes without it, and it opens no other channel."""
    creds = await server.parsec.create_private("alice", PRIVATE)
    await server.managed("private:app.room.8")
    assert await _code(server, PRIVATE) == 103
    assert await _code(server, "private:app.room.8", creds.access_token) == 103
    client = await server.client("bob")
    result = await client.call("subscribe", {"channel": PRIVATE, "token": creds.access_token})
    assert result["subscribe"]["expires"] is True
    await server.parsec.publish(PRIVATE, {"secret": 1})
    assert (await client.push(PRIVATE, "pub"))["data"] == {"secret": 1}


async def test_client_publish_follows_the_access_token(server: Server) -> None:
    """The channel's own access token may publish (its ``chs`` allows every verb);
    a token whose scopes deny publish subscribes but cannot publish (103)."""
    deny = [Scope(PRIVATE, ("publish",), deny=True)]
    reader = await server.parsec.create_private("alice", PRIVATE, scopes=deny)
    client = await server.client("alice")
    await client.call("subscribe", {"channel": PRIVATE, "token": reader.access_token})
    denied = await client.call("publish", {"channel": PRIVATE, "data": {"x": 1}})
    assert denied["error"]["code"] == 103

    other_channel = "private:app.room.9"
    writer = await server.parsec.create_private("bob", other_channel)
    other = await server.client("bob")
    await other.call("subscribe", {"channel": other_channel, "token": writer.access_token})
    assert "publish" in await other.call("publish", {"channel": other_channel, "data": {"x": 2}})
    assert (await other.push(other_channel, "pub"))["data"] == {"x": 2}


async def test_deleted_private_channel_unsubscribes_and_frees_its_name(server: Server) -> None:
    """Deleting a private channel unsubscribes its subscribers (2000); the name can be
    created again."""
    creds = await server.parsec.create_private("alice", PRIVATE)
    client = await server.client("alice")
    await client.call("subscribe", {"channel": PRIVATE, "token": creds.access_token})
    await server.parsec.delete_channel(PRIVATE)
    assert (await client.push(PRIVATE, "unsubscribe"))["code"] == 2000
    again = await server.parsec.create_private("alice", PRIVATE)
    assert again.access_token != creds.access_token


async def test_revoked_access_token_is_refused(server: Server) -> None:
    """A revoked user's access tokens no longer subscribe (103), whoever presents them
    (alice's own connection tokens of that second are revoked too)."""
    creds = await server.parsec.create_private("alice", PRIVATE)
    await server.parsec.revoke_user("alice")
    assert await _code(server, PRIVATE, creds.access_token, user="bob") == 103


async def test_sub_refresh_with_a_rotated_access_token(server: Server) -> None:
    """The SDK's sub getToken can hand over the access token that RefreshToken
    returns: sub_refresh accepts it and extends the subscription."""
    creds = await server.parsec.create_private("alice", PRIVATE)
    client = await server.client("alice")
    await client.call("subscribe", {"channel": PRIVATE, "token": creds.access_token})
    rotated = await server.parsec.refresh_access(creds.refresh_token)
    assert rotated.rotated is True
    reply = await client.call("sub_refresh", {"channel": PRIVATE, "token": rotated.access_token})
    assert reply["sub_refresh"]["expires"] is True


async def test_key_rotation_keeps_live_connections(server: Server) -> None:
    """Promoting a new key and retiring the old one drops no live connection; tokens of
    the old key verify while it is verify-only and are refused (3500) once retired."""
    old_token = server.token("alice")
    client = await server.client("bob")
    await client.call("subscribe", {"channel": "chat:rotation"})

    parsec = server.parsec
    old_kid = parsec.keyring.active.id
    await parsec.promote_key((await parsec.generate_key("ES256")).id)
    assert "connect" in await (await server.open()).connect(old_token)

    await parsec.retire_key(old_kid)
    refused = await server.open()
    await refused.send({"id": 1, "connect": {"token": old_token}})
    assert (await refused.closed())[0] == 3500
    await parsec.publish("chat:rotation", {"still": "here"})
    assert (await client.push("chat:rotation", "pub"))["data"] == {"still": "here"}
    assert "connect" in await (await server.open()).connect(server.token("carol"))
