"""centrifuge-python (PyPI) against a real ``parsec serve``: connect, subscribe, receive
publications sent through ``cent``, history, presence, client publish, recovery, token
refresh through ``get_token``, and the terminal or reconnect outcome of bad input."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

import cent
import centrifuge
import pytest
import requests

from .parsec_process import (
    EXPIRED_CLOSE_DELAY,
    ParsecServer,
    ServerFactory,
    mint_connection_token,
)
from .sdk_events import EventLog, sdk_client

pytestmark = pytest.mark.compat

UNAUTHORIZED = 1  # centrifuge-python's "unauthorized" disconnect code (client side)

OPEN_NAMESPACE = """
[[namespaces]]
name = "open"
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 10
history_ttl = "60s"
"""


@pytest.fixture(scope="module")
def open_server(server_factory: ServerFactory) -> ParsecServer:
    """A second server: namespace ``open`` (publish without subscribing) and at most
    two channels per connection."""
    return server_factory.start(OPEN_NAMESPACE, client={"channel_limit": 2})


def private_channel(server: ParsecServer, subject: str = "owner") -> str:
    """A fresh channel in Parsec's built-in ``private`` namespace, created through the
    management API (a private channel must exist to be subscribed to)."""
    name = f"private:compat.room.{uuid.uuid4().hex[:10]}"
    server.create_private(name, subject)
    return name


async def connected(client: Any, events: EventLog) -> Any:
    """Connect ``client`` and return its ``connected`` context."""
    await client.connect()
    return await events.next("connected")


async def subscribed(client: Any, channel: str, **options: Any) -> tuple[Any, EventLog, Any]:
    """Subscribe ``client`` to ``channel``; returns the subscription, its event log and
    the ``subscribed`` context."""
    log = EventLog()
    sub = client.new_subscription(channel, events=log, **options)
    await sub.subscribe()
    return sub, log, await log.next("subscribed")


async def publish(api: cent.AsyncClient, channel: str, data: object) -> cent.PublishResult:
    """Publish through the server API with ``cent``."""
    return await api.publish(cent.PublishRequest(channel=channel, data=data))


async def test_connect_with_token_reports_client_id(server: ParsecServer, user: str) -> None:
    """A valid connection token connects; the SDK gets a client ID from the server."""
    async with sdk_client(server, user) as (client, events):
        ctx = await connected(client, events)

        assert ctx.client
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_subscription_receives_publications_sent_through_cent(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """Publications sent with cent arrive in order, with contiguous offsets in one epoch."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        _, log, sub_ctx = await subscribed(client, channel)
        assert sub_ctx.recoverable is True
        assert sub_ctx.positioned is True
        assert sub_ctx.stream_position.offset == 0
        assert sub_ctx.stream_position.epoch

        results = [await publish(async_api, channel, {"n": n}) for n in (1, 2, 3)]
        pubs = [(await log.next("publication")).pub for _ in results]

        assert [p.data for p in pubs] == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert [p.offset for p in pubs] == [1, 2, 3]
        assert [r.offset for r in results] == [1, 2, 3]
        assert {r.epoch for r in results} == {sub_ctx.stream_position.epoch}


async def test_history_returns_publications_and_stream_position(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """History reads the stream in order, position-only with limit 0, and since a position."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        sub, log, _ = await subscribed(client, channel)
        for n in (1, 2, 3):
            await publish(async_api, channel, {"n": n})
        for _ in range(3):
            await log.next("publication")

        full = await sub.history(limit=10)
        top = await sub.history(limit=0)
        tail = await sub.history(
            limit=10, since=centrifuge.StreamPosition(offset=1, epoch=full.epoch)
        )
        newest = await sub.history(limit=1, reverse=True)

        assert [p.data for p in full.publications] == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert [p.offset for p in full.publications] == [1, 2, 3]
        assert (full.offset, bool(full.epoch)) == (3, True)
        assert (top.publications, top.offset, top.epoch) == ([], 3, full.epoch)
        assert [p.offset for p in tail.publications] == [2, 3]
        assert [p.data for p in newest.publications] == [{"n": 3}]


async def test_presence_lists_subscribers_with_their_info(
    server: ParsecServer, user: str, channel: str
) -> None:
    """Presence lists every subscribed connection with user and token info; stats count them."""
    async with (
        sdk_client(server, user, info={"name": "Alice"}) as (alice, alice_events),
        sdk_client(server, f"{user}-bob", info={"name": "Bob"}) as (bob, bob_events),
    ):
        alice_id = (await connected(alice, alice_events)).client
        bob_id = (await connected(bob, bob_events)).client
        sub, _, _ = await subscribed(alice, channel)
        await subscribed(bob, channel)

        presence = await sub.presence()
        stats = await sub.presence_stats()

        assert set(presence.clients) == {alice_id, bob_id}
        assert presence.clients[alice_id].user == user
        assert presence.clients[alice_id].conn_info == {"name": "Alice"}
        assert presence.clients[bob_id].user == f"{user}-bob"
        assert presence.clients[bob_id].conn_info == {"name": "Bob"}
        assert (stats.num_clients, stats.num_users) == (2, 2)


async def test_client_publish_reaches_subscribers_with_publisher_info(
    server: ParsecServer, user: str, channel: str
) -> None:
    """A subscriber's publish reaches every subscriber, carrying the publisher's ClientInfo."""
    async with (
        sdk_client(server, user) as (reader, reader_events),
        sdk_client(server, f"{user}-writer", info={"role": "writer"}) as (writer, writer_events),
    ):
        await connected(reader, reader_events)
        writer_id = (await connected(writer, writer_events)).client
        _, reader_log, _ = await subscribed(reader, channel)
        writer_sub, writer_log, _ = await subscribed(writer, channel)

        await writer_sub.publish({"text": "hello"})
        received = (await reader_log.next("publication")).pub
        echoed = (await writer_log.next("publication")).pub

        assert received.data == {"text": "hello"}
        assert received.offset == 1
        assert received.info.user == f"{user}-writer"
        assert received.info.client == writer_id
        assert received.info.conn_info == {"role": "writer"}
        assert echoed.offset == received.offset


async def test_client_publish_without_subscription_is_denied(
    server: ParsecServer, user: str, channel: str
) -> None:
    """Publishing into a channel the client is not subscribed to answers 103."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)

        with pytest.raises(centrifuge.ReplyError) as denied:
            await client.publish(channel, {"text": "nope"})

        assert denied.value.code == 103
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_history_and_presence_where_disabled_answer_108(
    server: ParsecServer, user: str
) -> None:
    """In a namespace without history and presence, both calls answer 108."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        sub, _, ctx = await subscribed(client, f"plain:{uuid.uuid4().hex[:8]}")
        assert ctx.recoverable is False

        with pytest.raises(centrifuge.ReplyError) as history:
            await sub.history(limit=10)
        with pytest.raises(centrifuge.ReplyError) as presence:
            await sub.presence()

        assert (history.value.code, presence.value.code) == (108, 108)


async def test_join_and_leave_are_reported(server: ParsecServer, user: str, channel: str) -> None:
    """A join_leave subscriber sees another client join and leave, with its ClientInfo."""
    async with sdk_client(server, user) as (watcher, watcher_events):
        await connected(watcher, watcher_events)
        _, log, _ = await subscribed(watcher, channel, join_leave=True)
        async with sdk_client(server, f"{user}-guest") as (guest, guest_events):
            guest_id = (await connected(guest, guest_events)).client
            await subscribed(guest, channel)

            join = await log.until("join", lambda ctx: ctx.info.client == guest_id)
            assert join.info.user == f"{user}-guest"

        leave = await log.until("leave", lambda ctx: ctx.info.client == guest_id)
        assert leave.info.user == f"{user}-guest"


async def test_recovers_publications_missed_while_disconnected(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """After disconnect() + connect(), the subscription recovers what was published meanwhile."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        _, log, first = await subscribed(client, channel)
        await publish(async_api, channel, {"n": 1})
        assert (await log.next("publication")).pub.offset == 1

        await client.disconnect()
        await publish(async_api, channel, {"n": 2})
        await publish(async_api, channel, {"n": 3})
        await client.connect()
        again = await log.next("subscribed")
        missed = [(await log.next("publication")).pub for _ in range(2)]

        assert (again.was_recovering, again.recovered) == (True, True)
        assert again.stream_position.epoch == first.stream_position.epoch
        assert [(p.offset, p.data) for p in missed] == [(2, {"n": 2}), (3, {"n": 3})]


async def test_recovers_after_server_forced_reconnect(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """A cent disconnect with a reconnect code (4000) makes the SDK reconnect and recover."""
    async with sdk_client(server, user) as (client, events):

        async def publish_while_offline(ctx: Any) -> None:
            if ctx.code == 4000:
                await publish(async_api, channel, {"n": 2})

        events.hooks["connecting"] = publish_while_offline
        await connected(client, events)
        _, log, _ = await subscribed(client, channel)
        await publish(async_api, channel, {"n": 1})
        assert (await log.next("publication")).pub.offset == 1

        await async_api.disconnect(
            cent.DisconnectRequest(
                user=user, disconnect=cent.Disconnect(code=4000, reason="compat reconnect")
            )
        )
        reconnecting = await events.until("connecting", lambda ctx: ctx.code == 4000)
        await events.next("connected")
        again = await log.next("subscribed")
        missed = (await log.next("publication")).pub

        assert reconnecting.reason == "compat reconnect"
        assert (again.was_recovering, again.recovered) == (True, True)
        assert (missed.offset, missed.data) == (2, {"n": 2})


SMALL_QUEUE = 128 * 1024
"""A client queue that two of the default 64 KiB publications fill."""


@pytest.fixture(scope="module")
def small_queue_server(server_factory: ServerFactory) -> ParsecServer:
    """A server whose clients have a 128 KiB queue (the default publication limit, 64
    KiB, is half of it)."""
    return server_factory.start(client={"queue_max_size": SMALL_QUEUE})


async def test_missed_publications_over_the_queue_size_do_not_loop_the_sdk(
    small_queue_server: ParsecServer, user: str, channel: str
) -> None:
    """Missed while offline: ten publications of 60 KB, far more than the client's queue
    takes in one go. The SDK reconnects once and is told ``recovered: false`` at the
    stream's top (no 3008, no reconnect loop); live publications follow from there."""
    session = requests.Session()
    session.trust_env = False
    server = small_queue_server
    with cent.Client(server.api_url, server.api_key, session=session) as api:
        async with sdk_client(server, user) as (client, events):
            await connected(client, events)
            _, log, first = await subscribed(client, channel)

            await client.disconnect()
            for n in range(10):
                api.publish(
                    cent.PublishRequest(channel=channel, data={"n": n, "pad": "x" * 60_000})
                )
            await client.connect()
            again = await log.next("subscribed")
            api.publish(cent.PublishRequest(channel=channel, data={"live": True}))
            live = (await log.next("publication")).pub

            assert (again.was_recovering, again.recovered) == (True, False)
            assert again.stream_position.epoch == first.stream_position.epoch
            assert again.stream_position.offset == 10
            assert (live.offset, live.data) == (11, {"live": True})
            # the two connect() calls, and no reconnect after a 3008
            assert [ctx.code for ctx in events.of("connecting")] == [0, 0]
            assert client.state == centrifuge.ClientState.CONNECTED


async def test_expired_token_at_connect_is_replaced_through_get_token(
    server: ParsecServer, user: str
) -> None:
    """An expired connection token gets 109; the SDK calls get_token and connects."""
    calls: list[str] = []

    async def get_token() -> str:
        calls.append("get_token")
        return server.connection_token(user)

    expired = server.connection_token(user, ttl=-60)
    async with sdk_client(server, user, token=expired, get_token=get_token) as (client, events):
        await client.connect()
        error = await events.next("error")
        await events.next("connected")

        assert error.error.code == 109
        assert calls == ["get_token"]
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_get_token_refreshes_connection_before_it_expires(
    server: ParsecServer, user: str, channel: str
) -> None:
    """With get_token, an expiring connection is refreshed and outlives its first token."""
    refreshed = asyncio.Event()

    async def get_token() -> str:
        refreshed.set()
        return server.connection_token(user)

    short = server.connection_token(user, ttl=2)
    expires_at = time.time() + 2
    async with sdk_client(server, user, token=short, get_token=get_token) as (client, events):
        await connected(client, events)
        sub, _, _ = await subscribed(client, channel)
        await asyncio.wait_for(refreshed.wait(), 10)

        # Nothing announces "not closed": wait past the moment an unrefreshed
        # connection is closed (exp + expired_close_delay), then look.
        await asyncio.sleep(max(0.0, expires_at + EXPIRED_CLOSE_DELAY + 1.5 - time.time()))
        stats = await sub.presence_stats()

        assert events.of("connecting")[1:] == []
        assert events.of("disconnected") == []
        assert stats.num_clients == 1


async def test_unrefreshed_expired_connection_is_closed_with_3005(
    server: ParsecServer, user: str
) -> None:
    """Without get_token, an expired connection is closed with 3005; reconnecting gets 109."""
    short = server.connection_token(user, ttl=2)
    async with sdk_client(server, user, token=short) as (client, events):
        await connected(client, events)

        closed = await events.until("connecting", lambda ctx: ctx.code != 0)
        gone = await events.next("disconnected")

        assert closed.code == 3005
        assert any(getattr(e.error, "code", None) == 109 for e in events.of("error"))
        assert gone.code == UNAUTHORIZED
        assert client.state == centrifuge.ClientState.DISCONNECTED


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint_connection_token(secrets.token_hex(32), "mallory"), id="bad-signature"),
        pytest.param("not.a.jwt", id="malformed"),
    ],
)
async def test_invalid_token_is_terminal_3500(server: ParsecServer, token: str) -> None:
    """A token with a bad signature or no JWT shape is closed with 3500 and not retried."""
    async with sdk_client(server, token=token) as (client, events):
        await client.connect()
        gone = await events.next("disconnected")

        assert gone.code == 3500
        assert [ctx.code for ctx in events.of("connecting")] == [0]
        assert events.of("connected") == []
        assert client.state == centrifuge.ClientState.DISCONNECTED


async def test_unknown_namespace_subscription_fails_with_102(
    server: ParsecServer, user: str
) -> None:
    """Subscribing in an unknown namespace ends the subscription with 102; the client stays."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        log = EventLog()
        sub = client.new_subscription(f"nope:{uuid.uuid4().hex[:8]}", events=log)
        await sub.subscribe()
        gone = await log.next("unsubscribed")

        assert gone.code == 102
        assert sub.state == centrifuge.SubscriptionState.UNSUBSCRIBED
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_private_channel_without_token_fails_with_103(
    server: ParsecServer, user: str
) -> None:
    """A private channel subscription without a subscription token ends with 103."""
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        log = EventLog()
        sub = client.new_subscription(private_channel(server), events=log)
        await sub.subscribe()
        gone = await log.next("unsubscribed")

        assert gone.code == 103
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_private_channel_with_token_receives_publications(
    server: ParsecServer, async_api: cent.AsyncClient, user: str
) -> None:
    """A subscription token opens a private channel; its info claim becomes chan_info."""
    channel = private_channel(server)
    token = server.subscription_token(user, channel, info={"seat": 7})
    async with sdk_client(server, user) as (client, events):
        client_id = (await connected(client, events)).client
        _, log, _ = await subscribed(client, channel, token=token)
        await publish(async_api, channel, {"secret": True})
        pub = (await log.next("publication")).pub
        presence = await async_api.presence(cent.PresenceRequest(channel=channel))

        assert (pub.data, pub.offset) == ({"secret": True}, 1)
        assert presence.presence[client_id].chan_info == {"seat": 7}


async def test_expired_subscription_token_is_replaced_through_get_token(
    server: ParsecServer, user: str
) -> None:
    """An expired subscription token gets 109; the SDK calls the subscription's get_token."""
    channel = private_channel(server)
    asked: list[str] = []

    async def get_token(for_channel: str) -> str:
        asked.append(for_channel)
        return server.subscription_token(user, for_channel)

    expired = server.subscription_token(user, channel, ttl=-60)
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        _, log, ctx = await subscribed(client, channel, token=expired, get_token=get_token)

        assert asked == [channel]
        assert [e.error.code for e in log.of("error")] == [109]
        assert ctx.channel == channel


async def test_token_channels_claim_subscribes_server_side(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """Channels in the connection token become server-side subscriptions with publications."""
    token = server.connection_token(user, channels=[channel])
    async with sdk_client(server, user, token=token) as (client, events):
        await connected(client, events)
        sub_ctx = await events.next("subscribed")
        await publish(async_api, channel, {"n": 1})
        pub_ctx = await events.next("publication")

        assert sub_ctx.channel == channel
        assert (pub_ctx.channel, pub_ctx.pub.data, pub_ctx.pub.offset) == (channel, {"n": 1}, 1)


async def test_channel_limit_refuses_one_subscription_too_many(
    open_server: ParsecServer, user: str
) -> None:
    """With [client] channel_limit = 2, a third subscription ends with 106."""
    async with sdk_client(open_server, user) as (client, events):
        await connected(client, events)
        for name in ("open:a", "open:b"):
            await subscribed(client, name)
        log = EventLog()
        await client.new_subscription("open:c", events=log).subscribe()
        gone = await log.next("unsubscribed")

        assert gone.code == 106
        assert client.state == centrifuge.ClientState.CONNECTED


async def test_publish_for_client_allows_publishing_without_subscribing(
    open_server: ParsecServer, user: str
) -> None:
    """Where allow_publish_for_client is on, a client publishes into a channel it is not in."""
    channel = f"open:{uuid.uuid4().hex[:8]}"
    async with (
        sdk_client(open_server, user) as (client, events),
        cent.AsyncClient(open_server.api_url, open_server.api_key) as api,
    ):
        client_id = (await connected(client, events)).client
        await client.publish(channel, {"text": "hi"})
        history = await api.history(cent.HistoryRequest(channel=channel, limit=10))

    [pub] = history.publications
    assert (pub.data, pub.offset) == ({"text": "hi"}, 1)
    assert pub.info is not None
    assert (pub.info.user, pub.info.client) == (user, client_id)


async def test_created_private_channel_admits_only_its_access_token(
    server: ParsecServer, async_api: cent.AsyncClient, user: str
) -> None:
    """CreatePrivate's access token subscribes centrifuge-python to the private channel
    and receives its publications; no token, or the token of another private channel,
    is refused with 103 while the client stays connected."""
    channel = f"private:compat.vault.{uuid.uuid4().hex[:10]}"
    other = f"private:compat.vault.{uuid.uuid4().hex[:10]}"
    creds = server.create_private(channel, user)
    other_creds = server.create_private(other, user)
    async with sdk_client(server, user) as (client, events):
        await connected(client, events)
        _, log, ctx = await subscribed(client, channel, token=creds["access_token"])
        await publish(async_api, channel, {"vault": "open"})

        assert ctx.recoverable is True
        assert (await log.next("publication")).pub.data == {"vault": "open"}

    async with sdk_client(server, f"{user}-intruder") as (client, events):
        await connected(client, events)
        for token in ("", other_creds["access_token"]):
            refused = EventLog()
            sub = client.new_subscription(channel, events=refused, token=token)
            await sub.subscribe()
            assert (await refused.next("unsubscribed")).code == 103
            client.remove_subscription(sub)
        assert client.state == centrifuge.ClientState.CONNECTED
