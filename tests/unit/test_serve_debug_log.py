"""`parsec serve --log-level debug` logs every connect, subscribe, unsubscribe and
disconnect as one line, with the client id, the user and (where it applies) the code
and reason: read from the output of a real server process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from parsec_cli import ParsecServe
from waiting import until

from parsec.auth.keyring import KeyRing
from parsec.auth.tokens import TokenIssuer
from parsec.client import Client, ClientDisconnected

FEED = """
[[namespaces]]
name = "feed"
allow_subscribe_for_client = true
"""
PREFIX = "DEBUG parsec.session: "


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ParsecServe]:
    """A parsec serve at log level debug."""
    running = ParsecServe(tmp_path / "node", FEED, "--log-level", "debug")
    await running.start()
    yield running
    await running.stop()


def client_for(server: ParsecServe, user: str) -> Client:
    token = TokenIssuer(KeyRing.open(server.state_dir)).connection_token(user)
    return Client(server.url.replace("http://", "ws://") + "/connection/websocket", token)


def session_lines(server: ParsecServe, client_id: str) -> list[str]:
    """The session log lines of one client, without timestamp and logger name."""
    lines = server.log().splitlines()
    return [line.split(PREFIX, 1)[1] for line in lines if PREFIX in line and client_id in line]


async def test_a_session_s_life_is_logged_line_by_line(server: ParsecServe) -> None:
    """Connect, client unsubscribe (code 0), server unsubscribe (2000), and a close by
    the client (3000) that ends its last subscription (code 1), each on one line."""
    client = client_for(server, "alice")
    cid = (await client.connect()).client
    try:
        await client.subscribe("feed:a")
        await client.unsubscribe("feed:a")
        await client.subscribe("feed:b")
        await server.api("unsubscribe", {"user": "alice", "channel": "feed:b"})
        await client.subscribe("feed:c")
    finally:
        await client.aclose()
    await until(lambda: len(session_lines(server, cid)) >= 8)
    who = f"client {cid}, user 'alice'"
    assert session_lines(server, cid) == [
        f"connect: {who}",
        f"subscribe: {who}, channel 'feed:a'",
        f"unsubscribe: {who}, channel 'feed:a', code 0, reason 'client unsubscribe'",
        f"subscribe: {who}, channel 'feed:b'",
        f"unsubscribe: {who}, channel 'feed:b', code 2000, reason 'server unsubscribe'",
        f"subscribe: {who}, channel 'feed:c'",
        f"disconnect: {who}, code 3000, reason 'connection closed'",
        f"unsubscribe: {who}, channel 'feed:c', code 1, reason 'disconnect'",
    ]


async def test_a_disconnect_by_the_server_logs_its_code_and_reason(server: ParsecServe) -> None:
    """A server API disconnect is logged with the code and reason the client got."""
    client = client_for(server, "bob")
    cid = (await client.connect()).client
    try:
        body = {"code": 4001, "reason": "maintenance"}
        await server.api("disconnect", {"user": "bob", "disconnect": body})
        with pytest.raises(ClientDisconnected):
            async for _ in client.publications():
                pass
    finally:
        await client.aclose()
    expected = f"disconnect: client {cid}, user 'bob', code 4001, reason 'maintenance'"
    await until(lambda: expected in session_lines(server, cid))
    assert session_lines(server, cid) == [f"connect: client {cid}, user 'bob'", expected]
