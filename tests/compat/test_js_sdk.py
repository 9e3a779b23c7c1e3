"""centrifuge-js (npm, run with node and ``ws``) against a real ``parsec serve``.

Each test runs one script of ``tests/compat/js`` and asserts on the events it printed.
Missing node or npm dependencies fail the test with the command to install them.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import cent
import pytest

from .node_runner import Event, run_node
from .parsec_process import EXPIRED_CLOSE_DELAY, ParsecServer, mint_connection_token

pytestmark = pytest.mark.compat


def ctxs(events: list[Event], name: str) -> list[Any]:
    """The SDK contexts of every ``name`` event (e.g. ``sub.publication``)."""
    return [event["ctx"] for event in events if event["event"] == name]


def one(events: list[Event], name: str) -> Event:
    """The only event named ``name``."""
    found = [event for event in events if event["event"] == name]
    assert len(found) == 1, f"expected one {name!r} event, got {found}"
    return found[0]


PRIVATE = "<a private channel that exists>"


def private_channel(server: ParsecServer, subject: str = "owner") -> str:
    """A fresh channel in Parsec's built-in ``private`` namespace, created through the
    management API (a private channel must exist to be subscribed to)."""
    name = f"private:compat.room.{uuid.uuid4().hex[:10]}"
    server.create_private(name, subject)
    return name


async def publish(api: cent.AsyncClient, channel: str, data: object) -> cent.PublishResult:
    """Publish through the server API with ``cent``."""
    return await api.publish(cent.PublishRequest(channel=channel, data=data))


async def test_js_receives_publications_reads_history_presence_and_publishes(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """centrifuge-js gets cent publications, history, presence, and its own publish back."""
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user, info={"name": "JS"}),
        "PARSEC_CHANNEL": channel,
        "PARSEC_EXPECT": "2",
    }
    async with run_node("pubsub.mjs", env) as script:
        subscribed = (await script.expect("sub.subscribed"))["ctx"]
        sent = [await publish(async_api, channel, {"n": n}) for n in (1, 2)]
        events = await script.finish()

    connected = one(events, "client.connected")["ctx"]
    pubs = ctxs(events, "sub.publication")
    history = one(events, "history")
    clients = list(one(events, "presence")["clients"].values())
    assert (subscribed["recoverable"], subscribed["positioned"]) == (True, True)
    assert subscribed["streamPosition"]["offset"] == 0
    assert [p["data"] for p in pubs] == [{"n": 1}, {"n": 2}, {"from": "js"}]
    assert [p["offset"] for p in pubs] == [1, 2, 3]
    assert pubs[2]["info"]["user"] == user
    assert pubs[2]["info"]["client"] == connected["client"]
    assert [p["data"] for p in history["publications"]] == [{"n": 1}, {"n": 2}]
    assert (history["offset"], history["epoch"]) == (2, sent[0].epoch)
    assert (one(events, "history_top")["publications"], one(events, "history_top")["offset"]) == (
        [],
        2,
    )
    assert [(c["client"], c["user"], c["connInfo"]) for c in clients] == [
        (connected["client"], user, {"name": "JS"})
    ]
    stats = one(events, "presence_stats")
    assert (stats["numClients"], stats["numUsers"]) == (1, 1)


async def test_js_recovers_publications_missed_while_disconnected(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """After disconnect() + connect(), centrifuge-js recovers what cent published meanwhile."""
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user),
        "PARSEC_CHANNEL": channel,
        "PARSEC_MODE": "client",
        "PARSEC_MISSED": "2",
    }
    async with run_node("recover.mjs", env) as script:
        await script.expect("sub.subscribed")
        await publish(async_api, channel, {"n": 1})
        await script.expect("offline")
        await publish(async_api, channel, {"n": 2})
        await publish(async_api, channel, {"n": 3})
        await script.send("go")
        events = await script.finish()

    first, again = ctxs(events, "sub.subscribed")
    pubs = ctxs(events, "sub.publication")
    assert (again["wasRecovering"], again["recovered"]) == (True, True)
    assert again["streamPosition"]["epoch"] == first["streamPosition"]["epoch"]
    assert [(p["offset"], p["data"]) for p in pubs] == [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3})]


async def test_js_reconnects_and_recovers_after_server_forced_reconnect(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """A cent disconnect with code 4000 makes centrifuge-js reconnect and resubscribe recovered."""
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user),
        "PARSEC_CHANNEL": channel,
        "PARSEC_MODE": "server",
    }
    async with run_node("recover.mjs", env) as script:
        await script.expect("sub.subscribed")
        await publish(async_api, channel, {"n": 1})
        await script.expect("waiting")
        await async_api.disconnect(
            cent.DisconnectRequest(
                user=user, disconnect=cent.Disconnect(code=4000, reason="compat reconnect")
            )
        )
        await script.expect("resubscribed")
        await publish(async_api, channel, {"n": 2})
        events = await script.finish()

    reconnect = [c for c in ctxs(events, "client.connecting") if c["code"] != 0]
    again = ctxs(events, "sub.subscribed")[1]
    assert [(c["code"], c["reason"]) for c in reconnect] == [(4000, "compat reconnect")]
    assert len(ctxs(events, "client.connected")) == 2
    assert (again["wasRecovering"], again["recovered"]) == (True, True)
    assert [p["offset"] for p in ctxs(events, "sub.publication")] == [1, 2]


async def test_js_expired_token_at_connect_is_replaced_through_get_token(
    server: ParsecServer, user: str
) -> None:
    """An expired connection token gets 109; centrifuge-js calls getToken and connects."""
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user, ttl=-60),
        "PARSEC_FRESH_TOKEN": server.connection_token(user),
        "PARSEC_SCENARIO": "connect",
    }
    async with run_node("tokens.mjs", env) as script:
        events = await script.finish()

    assert [e["error"]["code"] for e in ctxs(events, "client.error")] == [109]
    assert len(script.named("get_token")) == 1
    assert len(ctxs(events, "client.connected")) == 1


async def test_js_get_token_refreshes_connection_before_it_expires(
    server: ParsecServer, user: str, channel: str
) -> None:
    """With getToken, an expiring connection is refreshed and outlives its first token."""
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user, ttl=2),
        "PARSEC_FRESH_TOKEN": server.connection_token(user),
        "PARSEC_SCENARIO": "refresh",
        "PARSEC_CHANNEL": channel,
        # Held past the moment an unrefreshed connection is closed (exp + delay).
        "PARSEC_HOLD_MS": str(int((EXPIRED_CLOSE_DELAY + 1.5) * 1000)),
    }
    async with run_node("tokens.mjs", env) as script:
        events = await script.finish()

    state = one(events, "state")
    assert len(script.named("get_token")) == 1
    assert (state["client"], state["sub"], state["numClients"]) == ("connected", "subscribed", 1)
    assert [c["code"] for c in ctxs(events, "client.connecting")] == [0]
    assert [c for c in ctxs(events, "client.disconnected") if c["code"] != 0] == []


async def test_js_expired_subscription_token_is_replaced_through_get_token(
    server: ParsecServer, user: str
) -> None:
    """An expired subscription token gets 109; the subscription's getToken is called."""
    channel = private_channel(server)
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user),
        "PARSEC_FRESH_TOKEN": server.connection_token(user),
        "PARSEC_SCENARIO": "sub",
        "PARSEC_CHANNEL": channel,
        "PARSEC_SUB_TOKEN": server.subscription_token(user, channel, ttl=-60),
        "PARSEC_FRESH_SUB_TOKEN": server.subscription_token(user, channel),
    }
    async with run_node("tokens.mjs", env) as script:
        events = await script.finish()

    assert [e["channel"] for e in script.named("get_sub_token")] == [channel]
    assert [e["error"]["code"] for e in ctxs(events, "sub.error")] == [109]
    assert [c["channel"] for c in ctxs(events, "sub.subscribed")] == [channel]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint_connection_token(secrets.token_hex(32), "mallory"), id="bad-signature"),
        pytest.param("not.a.jwt", id="malformed"),
    ],
)
async def test_js_invalid_token_is_terminal_3500(server: ParsecServer, token: str) -> None:
    """centrifuge-js is disconnected with 3500 for an invalid token and does not reconnect."""
    env = {"PARSEC_WS_URL": server.ws_url, "PARSEC_TOKEN": token}
    async with run_node("errors.mjs", env) as script:
        events = await script.finish()

    assert ctxs(events, "client.disconnected")[0]["code"] == 3500
    assert one(events, "state")["client"] == "disconnected"
    assert [c["code"] for c in ctxs(events, "client.connecting")] == [0]
    assert ctxs(events, "client.connected") == []


@pytest.mark.parametrize(
    ("target", "code"),
    [
        pytest.param(f"nope:{uuid.uuid4().hex[:8]}", 102, id="unknown-namespace"),
        pytest.param(PRIVATE, 103, id="private-without-token"),
    ],
)
async def test_js_refused_subscription_is_unsubscribed(
    server: ParsecServer, user: str, target: str, code: int
) -> None:
    """A refused subscribe ends the subscription with the server's code; the client stays."""
    if target is PRIVATE:
        target = private_channel(server)
    env = {
        "PARSEC_WS_URL": server.ws_url,
        "PARSEC_TOKEN": server.connection_token(user),
        "PARSEC_CHANNEL": target,
    }
    async with run_node("errors.mjs", env) as script:
        events = await script.finish()

    assert [c["code"] for c in ctxs(events, "sub.unsubscribed")] == [code]
    assert one(events, "state") == {"event": "state", "client": "connected", "sub": "unsubscribed"}
