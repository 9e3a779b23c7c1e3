"""The WebSocket transport: frame size limit, Origin check, slow consumers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from parsec.options import ClientOptions
from parsec.transports.websocket import WebSocketEndpoint

from .conftest import ServerFactory
from .harness import WAIT, Server


async def test_frame_over_64_kib_closes_1009(server: Server) -> None:
    """An inbound frame larger than 64 KiB closes the connection with 1009."""
    client = await server.client()
    await client.send({"id": 2, "publish": {"channel": "plain:a", "data": "x" * 65536}})
    code, _ = await client.closed()
    assert code == 1009


async def test_frame_under_the_limit_is_accepted(server: Server) -> None:
    """A frame just under 64 KiB is handled normally."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:big"})
    envelope = '{"id":3,"publish":{"channel":"plain:big","data":""}}'
    room = 65536 - len(envelope) - 100
    await client.send(envelope.replace('""', json.dumps("y" * room)))
    assert await client.reply(3) == {"id": 3, "publish": {}}
    assert len((await client.push("plain:big", "pub"))["data"]) == room


async def test_many_commands_in_one_big_frame_over_limit_close_1009(server: Server) -> None:
    """The limit applies to the whole frame, however many commands it joins."""
    client = await server.client()
    commands = [
        {"id": n, "presence_stats": {"channel": "chat:" + "c" * 200}} for n in range(2, 400)
    ]
    await client.send(*commands)
    assert (await client.closed())[0] == 1009


async def test_no_origin_is_allowed(make_server: ServerFactory) -> None:
    """A client that sends no Origin header (a backend, an SDK) may connect."""
    server = await make_server(allowed_origins=["https://app.example.com"])
    client = await server.open()
    assert "connect" in await client.connect(server.token())


async def test_allowed_origin_connects(make_server: ServerFactory) -> None:
    """An Origin in the allowed list (exact or glob) may connect."""
    server = await make_server(allowed_origins=["https://app.example.com", "https://*.example.org"])
    for origin in ["https://app.example.com", "https://APP.example.com", "https://x.example.org"]:
        client = await server.open(origin=origin)
        assert "connect" in await client.connect(server.token()), origin


async def test_disallowed_origin_is_refused(make_server: ServerFactory) -> None:
    """An Origin not in the allowed list is refused before the WebSocket opens."""
    server = await make_server(allowed_origins=["https://app.example.com"])
    for origin in ["https://evil.example.com", "http://app.example.com", "null"]:
        with pytest.raises(InvalidStatus) as refused:
            await server.open(origin=origin)
        assert refused.value.response.status_code == 403, origin


@pytest.mark.parametrize(
    ("allowed", "admits"),
    [
        (["https://app.example.com"], "admits only https://app.example.com"),
        ([], "admits only the server's own host '127.0.0.1:"),
    ],
)
async def test_a_refused_origin_is_logged_with_the_settings_that_admit_it(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture, allowed: list[str], admits: str
) -> None:
    """A refused Origin is logged at INFO with the origin, what the allow-list admits,
    and the config key, environment variable and flag that would admit it."""
    caplog.set_level(logging.INFO, logger="parsec.websocket")
    server = await make_server(allowed_origins=allowed)
    with pytest.raises(InvalidStatus):
        await server.open(origin="https://evil.example.com")
    (record,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert (record.name, record.levelno) == ("parsec.websocket", logging.INFO)
    message = record.getMessage()
    assert message.startswith("websocket from origin 'https://evil.example.com' refused")
    for words in (admits, "allowed_origins", "[server]", "PARSEC_ALLOWED_ORIGINS"):
        assert words in message
    assert "parsec serve --allowed-origin 'https://evil.example.com'" in message


async def test_empty_allow_list_admits_only_same_host(make_server: ServerFactory) -> None:
    """With no allowed origins, only the server's own host may connect from a browser."""
    server = await make_server()
    own = await server.open(origin=server.base_url)
    assert "connect" in await own.connect(server.token())
    with pytest.raises(InvalidStatus):
        await server.open(origin="https://elsewhere.example.com")


async def test_wildcard_origin_admits_any(make_server: ServerFactory) -> None:
    """allowed_origins ["*"] admits any Origin."""
    server = await make_server(allowed_origins=["*"])
    client = await server.open(origin="https://anything.example.net")
    assert "connect" in await client.connect(server.token())


async def test_non_websocket_request_is_refused(server: Server) -> None:
    """A plain HTTP GET on the WebSocket endpoint does not open a session."""
    import httpx

    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(server.base_url + "/connection/websocket")
    assert response.status_code >= 400


async def test_slow_consumer_is_disconnected_3008(make_server: ServerFactory) -> None:
    """A client that never reads is disconnected with 3008 instead of being buffered."""
    server = await make_server(client=ClientOptions(queue_max_size=64 * 1024))
    reader = await server.client("fast")
    slow = await server.client("slow")
    await slow.call("subscribe", {"channel": "plain:flood"})
    await reader.call("subscribe", {"channel": "plain:marker"})
    payload = "z" * 1024
    node = server.parsec.node
    sent_kib = 0
    while node.hub.num_clients == 2 and sent_kib < 200 * 1024:
        # 10 KiB at a time, well under the queue limit, then let the writers run: the
        # queue only overflows once the socket stops draining (the client never reads).
        for _ in range(10):
            await server.parsec.publish("plain:flood", payload)
        sent_kib += 10
        await asyncio.sleep(0)
    assert sent_kib > 64, "the queue overflowed before the socket pushed back"
    assert await slow.closed() == (3008, "slow")
    await server.parsec.publish("plain:marker", "still serving")
    assert (await reader.push("plain:marker", "pub"))["data"] == "still serving"


async def test_frame_limit_counts_utf8_bytes_when_embedded(server: Server) -> None:
    """Served by any ASGI server, a text frame over 64 KiB of UTF-8 closes with 1009."""
    endpoint = WebSocketEndpoint(server.parsec.node)
    inbound: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "\u00e9" * 40_000},
    ]
    sent: list[dict[str, Any]] = []
    closed = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if inbound:
            return inbound.pop(0)
        await closed.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))
        if message["type"] == "websocket.close":
            closed.set()

    async with asyncio.timeout(WAIT):
        await endpoint({"type": "websocket", "headers": []}, receive, send)
    assert sent[0] == {"type": "websocket.accept"}
    assert sent[-1]["type"] == "websocket.close"
    assert sent[-1]["code"] == 1009


async def test_fragmented_message_is_reassembled(server: Server) -> None:
    """A message sent in several WebSocket fragments is handled as one."""
    client = await server.open()
    connect = json.dumps({"id": 1, "connect": {"token": server.token()}})
    await client.ws.send([connect[:10], connect[10:25], connect[25:]])
    assert "connect" in await client.reply(1)


async def test_fragmented_message_over_limit_closes_1009(server: Server) -> None:
    """The 64 KiB limit counts a fragmented message whole, not fragment by fragment."""
    client = await server.client()
    body = json.dumps({"id": 2, "publish": {"channel": "plain:a", "data": "x" * 70_000}})
    await client.ws.send([body[i : i + 20_000] for i in range(0, len(body), 20_000)])
    code, _ = await client.closed()
    assert code == 1009


async def test_client_close_ends_the_session(server: Server) -> None:
    """A client closing with 1000 gets its close answered and its session removed."""
    client = await server.client()
    node = server.parsec.node
    assert node.hub.num_clients == 1
    await client.ws.close(1000, "bye")
    assert client.ws.close_code == 1000
    async with asyncio.timeout(WAIT):
        while node.hub.num_clients:  # noqa: ASYNC110 - polls the node's own state
            await asyncio.sleep(0.01)
