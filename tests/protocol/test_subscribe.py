"""subscribe / unsubscribe: channel rules, tokens, limits and join/leave pushes."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import pytest

from parsec.options import ClientOptions

from .conftest import ServerFactory
from .harness import RawClient, Server


async def _error_code(client: RawClient, method: str, body: Mapping[str, object]) -> int:
    reply = await client.call(method, body)
    assert "error" in reply, reply
    code: int = reply["error"]["code"]
    return code


async def test_subscribe_plain_channel_result_is_empty(server: Server) -> None:
    """A channel without history answers an empty subscribe result."""
    client = await server.client()
    assert await client.call("subscribe", {"channel": "plain:room"}) == {
        "id": 2,
        "subscribe": {},
    }


async def test_unknown_namespace_is_102(server: Server) -> None:
    """A channel in a namespace that is not configured is refused with 102; the message
    (Centrifugo's text, extended) names the namespace."""
    client = await server.client()
    reply = await client.call("subscribe", {"channel": "nope:room"})
    message = "unknown channel: namespace 'nope' is not configured"
    assert reply["error"] == {"code": 102, "message": message}


async def test_invalid_channel_names_are_107(server: Server) -> None:
    """Empty, non-ASCII, too long and Parsec-grammar-breaking names are refused with 107."""
    client = await server.client()
    bad = [
        "",
        "chat:caf\u00e9",
        "chat:" + "x" * 251,
        "public:App.events",
        "public:app",
        "public:app.events.1.topic.extra",
        "public:app..events",
        "public:app.events:x",
        "public:app.ev ents",
        "private:app.events",
        "private:",
    ]
    for channel in bad:
        assert await _error_code(client, "subscribe", {"channel": channel}) == 107, channel


async def test_valid_public_channel_names_subscribe(server: Server) -> None:
    """Names following the public grammar subscribe without a token."""
    names = ["public:app.events", "public:app.events.42", "public:a-b.c_d.1.topic"]
    await server.managed(*names)
    client = await server.client()
    for channel in names:
        reply = await client.call("subscribe", {"channel": channel})
        assert reply["subscribe"]["recoverable"] is True, channel


async def test_channel_at_max_length_subscribes(server: Server) -> None:
    """A 255-character channel name is accepted."""
    client = await server.client()
    channel = "plain:" + "x" * 249
    assert len(channel) == 255
    assert "subscribe" in await client.call("subscribe", {"channel": channel})


async def test_no_permission_is_103(server: Server) -> None:
    """A namespace that does not open subscribe to clients refuses with 103; the
    message (Centrifugo's text, extended) names the channel."""
    client = await server.client()
    reply = await client.call("subscribe", {"channel": "locked:room"})
    message = "permission denied: subscribe to 'locked:room'"
    assert reply["error"] == {"code": 103, "message": message}


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        ("nope:room", ["unknown channel: namespace 'nope' is not configured"]),
        (
            "locked:room",
            [
                "permission denied: subscribe to 'locked:room'",
                "namespace 'locked' has allow_subscribe_for_client=false",
            ],
        ),
    ],
)
async def test_refusals_are_logged_at_info_with_the_channel_and_why(
    server: Server, caplog: pytest.LogCaptureFixture, channel: str, words: list[str]
) -> None:
    """A 102 or 103 is logged at INFO (not as an error) with the user, what was asked
    and, for 103, the namespace options that refused it."""
    caplog.set_level(logging.INFO, logger="parsec.clients")
    client = await server.client(user="alice")
    await client.call("subscribe", {"channel": channel})
    (record,) = [r for r in caplog.records if "refused for client" in r.getMessage()]
    assert (record.name, record.levelno) == ("parsec.clients", logging.INFO)
    message = record.getMessage()
    assert message.startswith("subscribe refused for client ")
    assert "(user 'alice')" in message
    for word in words:
        assert word in message


async def test_private_channel_without_token_is_103(server: Server) -> None:
    """private: channels always need a subscription token."""
    await server.managed("private:app.room.1")
    client = await server.client()
    assert await _error_code(client, "subscribe", {"channel": "private:app.room.1"}) == 103


async def test_dollar_channel_without_token_is_103(make_server: ServerFactory) -> None:
    """$-prefixed channels need a token even where clients may subscribe."""
    from parsec import ChannelOptions

    server = await make_server(without_namespace=ChannelOptions(allow_subscribe_for_client=True))
    client = await server.client()
    assert "subscribe" in await client.call("subscribe", {"channel": "open"})
    assert await _error_code(client, "subscribe", {"channel": "$secret"}) == 103
    token = server.sub_token("alice", "$secret")
    assert "subscribe" in await client.call("subscribe", {"channel": "$secret", "token": token})


async def test_subscription_token_opens_private_channel(server: Server) -> None:
    """A subscription token for the channel and user subscribes, with expires/ttl."""
    await server.managed("private:app.room.1", "private:app.room.2")
    client = await server.client("alice")
    channel = "private:app.room.1"
    token = server.sub_token("alice", channel, ttl=300)
    result = (await client.call("subscribe", {"channel": channel, "token": token}))["subscribe"]
    assert result["expires"] is True
    assert 290 <= result["ttl"] <= 300
    assert result["recoverable"] is True
    await server.parsec.publish(channel, {"secret": True})
    assert (await client.push(channel, "pub"))["data"] == {"secret": True}


async def test_subscription_token_opens_locked_namespace(server: Server) -> None:
    """A subscription token works where the namespace gives no permission."""
    client = await server.client("alice")
    token = server.sub_token("alice", "locked:room", ttl=None)
    result = await client.call("subscribe", {"channel": "locked:room", "token": token})
    assert "expires" not in result["subscribe"]


async def test_subscription_token_info_is_chan_info(server: Server) -> None:
    """The subscription token's info claim shows as chan_info in presence."""
    client = await server.client("alice")
    token = server.sub_token("alice", "locked:room", info={"role": "admin"})
    await client.call("subscribe", {"channel": "locked:room", "token": token})
    presence = await server.api_result("presence", {"channel": "locked:room"})
    (entry,) = presence["presence"].values()
    assert entry["chan_info"] == {"role": "admin"}


async def test_expired_subscription_token_is_109(server: Server) -> None:
    """An expired subscription token is refused with 109 (the SDK fetches a new one)."""
    await server.managed("private:app.room.1", "private:app.room.2")
    client = await server.client("alice")
    token = server.sub_token("alice", "private:app.room.1", ttl=-5)
    reply = await client.call("subscribe", {"channel": "private:app.room.1", "token": token})
    assert reply["error"] == {"code": 109, "message": "token expired"}
    assert "subscribe" in await client.call("subscribe", {"channel": "plain:still-open"})


async def test_subscription_token_with_past_expire_at_is_109(server: Server) -> None:
    """A subscription token whose expire_at has passed is refused with 109."""
    client = await server.client("alice")
    token = server.sub_token("alice", "locked:a", expire_at=int(time.time()) - 5)
    assert await _error_code(client, "subscribe", {"channel": "locked:a", "token": token}) == 109


async def test_invalid_subscription_token_is_103(server: Server) -> None:
    """A subscription token that does not verify is refused with 103."""
    await server.managed("private:app.room.1", "private:app.room.2")
    client = await server.client("alice")
    body = {"channel": "private:app.room.1", "token": "not-a-token"}
    assert await _error_code(client, "subscribe", body) == 103


async def test_connection_token_as_subscription_token_is_103(server: Server) -> None:
    """A connection token (no channel claim) is not a subscription token."""
    client = await server.client("alice")
    body = {"channel": "locked:room", "token": server.token("alice")}
    assert await _error_code(client, "subscribe", body) == 103


async def test_subscription_token_for_another_channel_closes_3500(server: Server) -> None:
    """A subscription token naming another channel closes with 3500."""
    await server.managed("private:app.room.1", "private:app.room.2")
    client = await server.client("alice")
    token = server.sub_token("alice", "private:app.room.2")
    await client.send({"id": 2, "subscribe": {"channel": "private:app.room.1", "token": token}})
    assert await client.closed() == (3500, "invalid token")


async def test_subscription_token_for_another_user_closes_3500(server: Server) -> None:
    """A subscription token minted for another user closes with 3500."""
    await server.managed("private:app.room.1", "private:app.room.2")
    client = await server.client("alice")
    token = server.sub_token("mallory", "private:app.room.1")
    await client.send({"id": 2, "subscribe": {"channel": "private:app.room.1", "token": token}})
    assert (await client.closed())[0] == 3500


async def test_subscription_token_bound_to_another_client_closes_3500(server: Server) -> None:
    """A subscription token bound (client claim) to another client id closes with 3500."""
    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    own = server.parsec.issuer.subscription_token("alice", "locked:a")
    assert "subscribe" in await client.call("subscribe", {"channel": "locked:a", "token": own})
    import jwt

    key = server.parsec.keyring.active
    claims = {"sub": "alice", "channel": "locked:b", "client": client_id + "x"}
    other = jwt.encode(claims, key.secret, algorithm=key.alg, headers={"kid": key.id})
    await client.send({"id": 3, "subscribe": {"channel": "locked:b", "token": other}})
    assert (await client.closed())[0] == 3500


async def test_duplicate_subscribe_is_105(server: Server) -> None:
    """Subscribing twice to one channel is refused with 105; the first stays."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:room"})
    reply = await client.call("subscribe", {"channel": "plain:room"})
    assert reply["error"] == {"code": 105, "message": "already subscribed"}
    await server.parsec.publish("plain:room", "still here")
    assert (await client.push("plain:room", "pub"))["data"] == "still here"


async def test_duplicate_of_server_side_subscription_is_105(server: Server) -> None:
    """A client cannot subscribe again to a channel its token subscribed it to."""
    client = await server.client("alice", channels=["plain:mine"])
    assert await _error_code(client, "subscribe", {"channel": "plain:mine"}) == 105


async def test_channel_limit_is_106(make_server: ServerFactory) -> None:
    """Subscribing past client.channel_limit is refused with 106."""
    server = await make_server(client=ClientOptions(channel_limit=2))
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:a"})
    await client.call("subscribe", {"channel": "plain:b"})
    reply = await client.call("subscribe", {"channel": "plain:c"})
    assert reply["error"] == {"code": 106, "message": "limit exceeded"}
    await client.call("unsubscribe", {"channel": "plain:a"})
    assert "subscribe" in await client.call("subscribe", {"channel": "plain:c"})


async def test_unsubscribe_stops_publications(server: Server) -> None:
    """After unsubscribe, the channel's publications no longer arrive."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:gone"})
    await client.call("subscribe", {"channel": "plain:kept"})
    assert await client.call("unsubscribe", {"channel": "plain:gone"}) == {
        "id": 4,
        "unsubscribe": {},
    }
    await server.parsec.publish("plain:gone", "lost")
    await server.parsec.publish("plain:kept", "marker")
    assert (await client.push("plain:kept", "pub"))["data"] == "marker"
    assert not client.inbox


async def test_unsubscribe_from_unknown_channel_is_ok(server: Server) -> None:
    """Unsubscribing from a channel the client is not in answers an empty result."""
    client = await server.client()
    assert await client.call("unsubscribe", {"channel": "plain:never"}) == {
        "id": 2,
        "unsubscribe": {},
    }


async def test_resubscribe_after_unsubscribe(server: Server) -> None:
    """A channel can be subscribed again after unsubscribing."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:again"})
    await client.call("unsubscribe", {"channel": "chat:again"})
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:again"})


async def test_anonymous_user_needs_anonymous_permission(make_server: ServerFactory) -> None:
    """Anonymous clients subscribe only where allow_subscribe_for_anonymous is set."""
    server = await make_server(allow_anonymous=True)
    await server.managed("public:app.events")
    client = await server.open()
    await client.connect()
    assert await _error_code(client, "subscribe", {"channel": "chat:a"}) == 103
    assert "subscribe" in await client.call("subscribe", {"channel": "public:app.events"})


async def test_user_limited_channel(make_server: ServerFactory) -> None:
    """A user listed after # may subscribe without a token; others may not."""
    from parsec import Namespace

    server = await make_server(namespaces=[Namespace(name="dm", allow_user_limited_channels=True)])
    alice = await server.client("alice")
    assert "subscribe" in await alice.call("subscribe", {"channel": "dm:talk#alice,bob"})
    mallory = await server.client("mallory")
    assert await _error_code(mallory, "subscribe", {"channel": "dm:talk#alice,bob"}) == 103


async def _event(client: RawClient, channel: str, kind: str, client_id: str) -> object:
    """The next ``kind`` (join/leave) push for ``channel`` about ``client_id``."""
    message = await client.next(
        lambda m: (
            kind in m.get("push", {})
            and m["push"]["channel"] == channel
            and m["push"][kind]["info"]["client"] == client_id
        )
    )
    return message["push"][kind]


async def test_join_and_leave_pushes_when_asked(server: Server) -> None:
    """A subscriber that asks join_leave sees other clients join and leave."""
    watcher = await server.client("alice")
    await watcher.call("subscribe", {"channel": "opt:room", "join_leave": True})
    other = await server.open()
    other_id = (await other.connect(server.token("bob", info={"n": "Bob"})))["connect"]["client"]
    await other.call("subscribe", {"channel": "opt:room"})
    join = await _event(watcher, "opt:room", "join", other_id)
    assert join == {"info": {"user": "bob", "client": other_id, "conn_info": {"n": "Bob"}}}
    await other.call("unsubscribe", {"channel": "opt:room"})
    leave = await _event(watcher, "opt:room", "leave", other_id)
    assert leave == join


async def test_no_join_leave_pushes_unless_asked(server: Server) -> None:
    """A subscriber that does not ask join_leave gets no join/leave pushes."""
    quiet = await server.client("alice")
    await quiet.call("subscribe", {"channel": "opt:room"})
    other = await server.client("bob")
    await other.call("subscribe", {"channel": "opt:room"})
    await server.parsec.publish("opt:room", "marker")
    assert (await quiet.push("opt:room", "pub"))["data"] == "marker"
    assert not quiet.inbox


async def test_join_leave_needs_presence_permission(make_server: ServerFactory) -> None:
    """Asking join_leave where presence is not permitted gets no join/leave pushes."""
    from parsec import Namespace

    server = await make_server(
        namespaces=[
            Namespace(name="room", join_leave=True, presence=True, allow_subscribe_for_client=True)
        ]
    )
    alice = await server.client("alice")
    await alice.call("subscribe", {"channel": "room:a", "join_leave": True})
    bob = await server.client("bob")
    await bob.call("subscribe", {"channel": "room:a"})
    await server.parsec.publish("room:a", "marker")
    assert (await alice.push("room:a", "pub"))["data"] == "marker"
    assert not alice.inbox


async def test_force_push_join_leave_reaches_everyone(make_server: ServerFactory) -> None:
    """With force_push_join_leave every subscriber gets join pushes without asking."""
    from parsec import Namespace

    server = await make_server(
        namespaces=[
            Namespace(
                name="room",
                join_leave=True,
                force_push_join_leave=True,
                allow_subscribe_for_client=True,
            )
        ]
    )
    alice = await server.client("alice")
    await alice.call("subscribe", {"channel": "room:a"})
    bob = await server.open()
    bob_id = (await bob.connect(server.token("bob")))["connect"]["client"]
    await bob.call("subscribe", {"channel": "room:a"})
    assert (await _event(alice, "room:a", "join", bob_id)) == {
        "info": {"user": "bob", "client": bob_id}
    }


async def test_join_leave_is_off_without_namespace_option(server: Server) -> None:
    """join_leave: true has no effect in a namespace without join_leave."""
    alice = await server.client("alice")
    await alice.call("subscribe", {"channel": "plain:room", "join_leave": True})
    bob = await server.client("bob")
    await bob.call("subscribe", {"channel": "plain:room"})
    await server.parsec.publish("plain:room", "marker")
    assert (await alice.push("plain:room", "pub"))["data"] == "marker"
    assert not alice.inbox


async def test_leave_is_pushed_when_a_subscriber_disconnects(server: Server) -> None:
    """A subscriber's connection closing pushes leave to join_leave watchers."""
    watcher = await server.client("alice")
    await watcher.call("subscribe", {"channel": "opt:room", "join_leave": True})
    other = await server.open()
    other_id = (await other.connect(server.token("bob")))["connect"]["client"]
    await other.call("subscribe", {"channel": "opt:room"})
    await other.aclose()
    leave = await _event(watcher, "opt:room", "leave", other_id)
    assert leave == {"info": {"user": "bob", "client": other_id}}
