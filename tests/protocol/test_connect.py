"""connect: tokens, result fields, server-side subscriptions and the 3501 rules."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from parsec import __version__

from .conftest import ServerFactory
from .harness import Server


async def test_connect_result_fields(server: Server) -> None:
    """A valid token gets client id, version, ping, pong and the token's expiry."""
    client = await server.open()
    reply = await client.connect(server.token("alice", ttl=600))
    assert reply["id"] == 1
    result = reply["connect"]
    assert uuid.UUID(result["client"])
    assert result["version"] == __version__
    assert result["ping"] == 25
    assert result["pong"] is True
    assert result["expires"] is True
    assert 590 <= result["ttl"] <= 600
    assert "subs" not in result


async def test_connect_token_without_exp_never_expires(server: Server) -> None:
    """A token with no exp gives a result without expires/ttl."""
    client = await server.open()
    result = (await client.connect(server.token("alice", ttl=None)))["connect"]
    assert "expires" not in result
    assert "ttl" not in result


async def test_each_connection_gets_its_own_client_id(server: Server) -> None:
    """Two connections of one user get distinct client ids."""
    first = await server.open()
    second = await server.open()
    one = (await first.connect(server.token("alice")))["connect"]["client"]
    two = (await second.connect(server.token("alice")))["connect"]["client"]
    assert one != two


async def test_expired_token_gets_error_109(server: Server) -> None:
    """An expired connection token is answered with error 109, not a close."""
    client = await server.open()
    reply = await client.connect(server.token("alice", ttl=-10))
    assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}


async def test_not_yet_valid_token_gets_error_109(server: Server) -> None:
    """A token whose nbf is ahead is answered with error 109."""
    client = await server.open()
    token = server.token("alice", extra={"nbf": int(time.time()) + 600})
    reply = await client.connect(token)
    assert reply["error"]["code"] == 109


async def test_expire_at_in_the_past_gets_error_110(server: Server) -> None:
    """A valid token whose expire_at has passed is answered with error 110."""
    client = await server.open()
    reply = await client.connect(server.token("alice", expire_at=int(time.time()) - 10))
    assert reply["error"]["code"] == 110


async def test_command_after_failed_connect_closes_3501(server: Server) -> None:
    """After a connect error, the next command closes the connection with 3501."""
    client = await server.open()
    await client.connect(server.token("alice", ttl=-10))
    await client.send({"id": 2, "subscribe": {"channel": "chat:room"}})
    assert await client.closed() == (3501, "bad request")


async def test_retrying_connect_after_failure_closes_3501(server: Server) -> None:
    """A second connect on a connection whose connect failed closes with 3501."""
    client = await server.open()
    await client.connect(server.token("alice", ttl=-10))
    await client.send({"id": 2, "connect": {"token": server.token("alice")}})
    assert (await client.closed())[0] == 3501


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{flipped}{signature[1:]}"


async def test_bad_signature_closes_3500(server: Server) -> None:
    """A token whose signature does not verify closes with 3500 and no reply."""
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": _tampered(server.token("alice"))}})
    assert await client.closed() == (3500, "invalid token")
    assert not client.inbox


async def test_token_signed_with_another_key_closes_3500(server: Server) -> None:
    """A token signed with a key the server does not know closes with 3500."""
    kid = server.parsec.keyring.active.id
    token = jwt.encode({"sub": "alice"}, "x" * 32, algorithm="HS256", headers={"kid": kid})
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": token}})
    assert (await client.closed())[0] == 3500


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "", " "])
async def test_malformed_token_closes_3500_or_3501(server: Server, token: str) -> None:
    """A token that is not a JWT closes with 3500 (an empty one counts as no token)."""
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": token}})
    code, _ = await client.closed()
    assert code == (3501 if token == "" else 3500)


async def test_subscription_token_as_connection_token_closes_3500(server: Server) -> None:
    """A subscription token (it has a channel claim) is not a connection token."""
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": server.sub_token("alice", "chat:x")}})
    assert (await client.closed())[0] == 3500


async def test_no_token_without_anonymous_closes_3501(server: Server) -> None:
    """connect without a token closes with 3501 unless anonymous connections are on."""
    client = await server.open()
    await client.send({"id": 1, "connect": {}})
    assert await client.closed() == (3501, "bad request")


async def test_anonymous_connect_when_allowed(make_server: ServerFactory) -> None:
    """With allow_anonymous a tokenless connect succeeds, limited to anonymous-open channels."""
    server = await make_server(allow_anonymous=True)
    client = await server.open()
    result = (await client.connect())["connect"]
    assert uuid.UUID(result["client"])
    assert "expires" not in result
    assert "subscribe" in await client.call("subscribe", {"channel": "anon:room"})
    denied = await client.call("subscribe", {"channel": "plain:room"})
    assert denied["error"]["code"] == 103


async def test_connect_with_info_shows_in_presence(server: Server) -> None:
    """The token's info claim is the connection's conn_info in presence."""
    client = await server.client("alice", info={"name": "Alice"})
    await client.call("subscribe", {"channel": "chat:room"})
    presence = (await client.call("presence", {"channel": "chat:room"}))["presence"]
    (entry,) = presence["presence"].values()
    assert entry["user"] == "alice"
    assert entry["conn_info"] == {"name": "Alice"}


async def test_server_side_subscriptions_from_token(server: Server) -> None:
    """The token's channels are subscribed at connect: listed in subs, then pubs flow."""
    client = await server.open()
    token = server.token("alice", channels=["chat:news", "plain:feed"])
    result = (await client.connect(token))["connect"]
    assert set(result["subs"]) == {"chat:news", "plain:feed"}
    news = result["subs"]["chat:news"]
    assert news["recoverable"] is True
    assert news["positioned"] is True
    assert len(news["epoch"]) == 8
    assert result["subs"]["plain:feed"] == {}
    await server.parsec.publish("chat:news", {"n": 1})
    await server.parsec.publish("plain:feed", {"n": 2})
    assert await client.push("chat:news", "pub") == {"data": {"n": 1}, "offset": 1}
    assert await client.push("plain:feed", "pub") == {"data": {"n": 2}}


async def test_server_side_subscription_ignores_permissions(server: Server) -> None:
    """A channel in the token is subscribed even where clients may not subscribe."""
    client = await server.open()
    result = (await client.connect(server.token("alice", channels=["locked:x"])))["connect"]
    assert "locked:x" in result["subs"]


async def test_refused_server_side_subscription_is_left_out(server: Server) -> None:
    """A token channel that cannot exist is skipped; the connect still succeeds."""
    client = await server.open()
    token = server.token("alice", channels=["nope:x", "chat:ok"])
    result = (await client.connect(token))["connect"]
    assert set(result["subs"]) == {"chat:ok"}


async def test_command_before_connect_closes_3501(server: Server) -> None:
    """Any command before connect closes the connection with 3501."""
    client = await server.open()
    await client.send({"id": 1, "subscribe": {"channel": "chat:room"}})
    assert await client.closed() == (3501, "bad request")


async def test_pong_before_connect_closes_3501(server: Server) -> None:
    """An empty command (a pong) before connect closes with 3501."""
    client = await server.open()
    await client.send({})
    assert (await client.closed())[0] == 3501


async def test_second_connect_closes_3501(server: Server) -> None:
    """A second connect on a connected connection closes with 3501."""
    client = await server.client()
    await client.send({"id": 2, "connect": {"token": server.token("alice")}})
    assert (await client.closed())[0] == 3501


BAD_COMMANDS = [
    '{"id":2,"frobnicate":{}}',
    '{"id":2}',
    '{"id":2,',
    "not json",
    "[1,2]",
    '"connect"',
    '{"id":"2","presence":{"channel":"chat:a"}}',
    '{"id":2,"subscribe":{"channel":5}}',
    '{"id":2,"subscribe":[]}',
    '{"id":2,"history":{"channel":"chat:a","limit":"10"}}',
    '{"id":2,"publish":{"channel":"chat:a","data":}}',
    '{"id":-2,"presence":{"channel":"chat:a"}}',
    '{"id":4294967296,"presence":{"channel":"chat:a"}}',
    '{"subscribe":{"channel":"chat:a"}}',
    '{"id":0,"presence":{"channel":"chat:a"}}',
]


async def test_bad_command_after_connect_closes_3501(server: Server) -> None:
    """Unknown, empty, malformed, wrongly typed or id-less commands close with 3501."""
    for message in BAD_COMMANDS:
        client = await server.client()
        await client.send(message)
        assert await client.closed() == (3501, "bad request"), message


async def test_bad_first_command_closes_3501(server: Server) -> None:
    """A malformed connect closes with 3501 before anything is answered."""
    for message in ['{"id":1,"connect":{"token":7}}', "{{", "\x00", '{"id":1,"connect":5}']:
        client = await server.open()
        await client.send(message)
        assert (await client.closed())[0] == 3501, message
        assert not client.inbox


async def test_binary_frame_that_is_not_utf8_closes_3501(server: Server) -> None:
    """A binary frame that is not UTF-8 JSON closes with 3501."""
    client = await server.client()
    await client.ws.send(b"\xff\xfe\x00")
    assert (await client.closed())[0] == 3501


async def test_frame_commands_answered_in_order_in_one_frame(server: Server) -> None:
    """connect and the commands after it in one frame are answered in order, together."""
    client = await server.open()
    await client.send(
        {"id": 1, "connect": {"token": server.token("alice")}},
        {"id": 2, "subscribe": {"channel": "chat:a"}},
        {"id": 3, "subscribe": {"channel": "locked:b"}},
        {"id": 4, "subscribe": {"channel": "plain:c"}},
        {"id": 5, "presence_stats": {"channel": "chat:a"}},
    )
    replies = await client.frame()
    assert [r["id"] for r in replies] == [1, 2, 3, 4, 5]
    assert "connect" in replies[0]
    assert "subscribe" in replies[1]
    assert replies[2]["error"]["code"] == 103
    assert replies[3] == {"id": 4, "subscribe": {}}
    assert replies[4] == {"id": 5, "presence_stats": {"num_clients": 1, "num_users": 1}}


async def test_frame_with_bad_command_answers_earlier_ones_first(server: Server) -> None:
    """Commands before a malformed one in the same frame are answered, then 3501."""
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": server.token("alice")}}, "garbage")
    assert (await client.closed())[0] == 3501
    assert [m["id"] for m in client.inbox] == [1]
    assert "connect" in client.inbox[0]


async def test_blank_lines_and_trailing_newline_are_tolerated(server: Server) -> None:
    """Empty lines inside a frame and a trailing newline are skipped."""
    client = await server.open()
    await client.send(
        {"id": 1, "connect": {"token": server.token("alice")}},
        "",
        {"id": 2, "subscribe": {"channel": "plain:a"}},
        "",
    )
    replies = await client.frame()
    assert [r["id"] for r in replies] == [1, 2]


async def test_unknown_fields_are_ignored(server: Server) -> None:
    """Fields this server does not know (newer SDKs) do not break a command."""
    client = await server.open()
    reply = await client.connect(server.token("alice"), name="js", version="5.0", flag=9)
    assert "connect" in reply
    sub = await client.call("subscribe", {"channel": "plain:a", "flag": 1, "tf": {"x": 1}})
    assert sub == {"id": 2, "subscribe": {}}


async def test_legacy_ping_command_gets_empty_reply(server: Server) -> None:
    """The legacy ping command (field 11) is answered with an empty result."""
    client = await server.client()
    assert await client.call("ping") == {"id": 2, "ping": {}}


async def test_connect_data_and_headers_are_accepted(server: Server) -> None:
    """connect with data, headers and subs hints for unknown channels still succeeds."""
    client = await server.open()
    body: dict[str, Any] = {
        "data": {"hello": "world"},
        "headers": {"x": "y"},
        "subs": {"chat:none": {"recover": True, "offset": 3, "epoch": "abc"}},
    }
    result = (await client.connect(server.token("alice"), **body))["connect"]
    assert "subs" not in result
