"""`parsec serve --log-level debug` logs every connect, subscribe, unsubscribe and
disconnect as one line (connect and disconnect at INFO), with the client id, the user,
the transport and (where it applies) the channel, code and reason: read from the JSON
output of a real server process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ParsecServe]:
    """A parsec serve at log level debug."""
    running = ParsecServe(tmp_path / "node", FEED, "--log-level", "debug", "--log-format", "json")
    await running.start()
    yield running
    await running.stop()


def client_for(server: ParsecServe, user: str) -> Client:
    token = TokenIssuer(KeyRing.open(server.state_dir)).connection_token(user)
    return Client(server.url.replace("http://", "ws://") + "/connection/websocket", token)


def session_lines(server: ParsecServe, client_id: str) -> list[tuple[Any, ...]]:
    """The session log lines of one client: (level, msg, user, channel, code, reason)."""
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    return [
        (
            line["level"],
            line["msg"],
            line["user"],
            line.get("channel"),
            line.get("code"),
            line.get("reason"),
        )
        for line in lines
        if line["logger"] == "parsec.session" and line.get("client") == client_id
    ]


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
    assert session_lines(server, cid) == [
        ("debug", "connect", "alice", None, None, None),
        ("debug", "subscribe", "alice", "feed:a", None, None),
        ("debug", "unsubscribe", "alice", "feed:a", 0, "client unsubscribe"),
        ("debug", "subscribe", "alice", "feed:b", None, None),
        ("debug", "unsubscribe", "alice", "feed:b", 2000, "server unsubscribe"),
        ("debug", "subscribe", "alice", "feed:c", None, None),
        ("debug", "disconnect", "alice", None, 3000, "connection closed"),
        ("debug", "unsubscribe", "alice", "feed:c", 1, "disconnect"),
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
    expected = ("debug", "disconnect", "bob", None, 4001, "maintenance")
    await until(lambda: expected in session_lines(server, cid))
    connect = ("debug", "connect", "bob", None, None, None)
    assert session_lines(server, cid) == [connect, expected]
