"""parsec.client.Client against a scripted Centrifugo-protocol WebSocket server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from parsec.client import (
    Client,
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientUnsubscribed,
)
from parsec.engine.types import StreamPosition

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a free loopback port; yield the endpoint URL."""
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/connection/websocket"


async def recv_json(ws: ServerConnection) -> dict[str, Any]:
    message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def accept_connect(ws: ServerConnection) -> dict[str, Any]:
    """Answer the connect command like a server would; return the command."""
    command = await recv_json(ws)
    reply = {"id": command["id"], "connect": {"client": "c-1", "version": "1", "ping": 25}}
    await ws.send(json.dumps(reply))
    return command


async def reply_to_subscribe(ws: ServerConnection, result: dict[str, Any]) -> dict[str, Any]:
    command = await recv_json(ws)
    await ws.send(json.dumps({"id": command["id"], "subscribe": result}))
    return command


async def drain(client: Client, into: list[tuple[str, dict[str, Any]]]) -> None:
    """Collect publications into ``into`` until the iterator ends or raises."""
    async for item in client.publications():
        into.append(item)


async def test_connect_sends_token_and_name_and_returns_the_result() -> None:
    """connect() sends the token and name, and returns the server's connect result."""
    seen: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(await accept_connect(ws))
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        assert client is not None
    assert seen == [{"id": 1, "connect": {"name": "parsec-cli", "token": "tok"}}]


async def test_connect_result_fields_are_typed() -> None:
    """The connect result is decoded into ConnectResult with server-side subs."""

    async def handler(ws: ServerConnection) -> None:
        command = await recv_json(ws)
        result = {"client": "c-9", "ping": 25, "pong": True, "subs": {"news": {"epoch": "e"}}}
        await ws.send(json.dumps({"id": command["id"], "connect": result}))
        await ws.wait_closed()

    async with fake_server(handler) as url:
        client = Client(url, name="tester")
        result = await client.connect()
        await client.aclose()
    assert (result.client, result.ping, result.pong) == ("c-9", 25, True)
    assert result.subs["news"].epoch == "e"


async def test_anonymous_connect_sends_no_token() -> None:
    """Without a token the connect command carries none."""
    seen: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(await accept_connect(ws))
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url):
        pass
    assert "token" not in seen[0]["connect"]


async def test_server_pings_are_answered_with_pongs() -> None:
    """A {} ping from the server gets a {} pong back."""
    pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await ws.send("{}")
        pong.set_result(str(await ws.recv()))
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok"):
        assert await pong == "{}"


async def test_several_messages_in_one_frame_are_all_handled() -> None:
    """A frame with a reply and pushes joined by newlines delivers each of them in order."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        command = await recv_json(ws)
        frame = [
            {"id": command["id"], "subscribe": {"epoch": "ep", "offset": 2, "recoverable": True}},
            {"push": {"channel": "chat:a", "pub": {"data": {"n": 3}, "offset": 3}}},
            {},
            {"push": {"channel": "chat:a", "pub": {"data": "four", "offset": 4}}},
        ]
        await ws.send("\n".join(json.dumps(m) for m in frame) + "\n")
        assert await ws.recv() == "{}"
        await ws.close(3001, "shutdown")

    async with fake_server(handler) as url, Client(url, "tok") as client:
        result = await client.subscribe("chat:a")
        received: list[tuple[str, dict[str, Any]]] = []
        with pytest.raises(ClientDisconnected) as caught:
            await drain(client, received)
    assert (result.epoch, result.offset, result.recoverable) == ("ep", 2, True)
    assert received == [
        ("chat:a", {"data": {"n": 3}, "offset": 3}),
        ("chat:a", {"data": "four", "offset": 4}),
    ]
    assert (caught.value.code, caught.value.reason) == (3001, "shutdown")


async def test_subscribe_with_recovery_sends_the_position() -> None:
    """recover_since sends recover, offset and epoch and returns replayed publications."""
    seen: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        result = {
            "recovered": True,
            "was_recovering": True,
            "epoch": "ep",
            "offset": 7,
            "publications": [{"data": 1, "offset": 6}, {"data": 2, "offset": 7}],
        }
        seen.append(await reply_to_subscribe(ws, result))
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        result = await client.subscribe("c", token="st", recover_since=StreamPosition(5, "ep"))
    assert seen[0]["subscribe"] == {
        "channel": "c",
        "token": "st",
        "recover": True,
        "offset": 5,
        "epoch": "ep",
    }
    assert result.recovered
    assert [p["offset"] for p in result.publications] == [6, 7]


async def test_error_reply_raises_client_protocol_error() -> None:
    """An error reply raises ClientProtocolError with its code; the connection stays."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        command = await recv_json(ws)
        error = {"code": 103, "message": "permission denied"}
        await ws.send(json.dumps({"id": command["id"], "error": error}))
        await reply_to_subscribe(ws, {})
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        with pytest.raises(ClientProtocolError) as caught:
            await client.subscribe("secret")
        assert (caught.value.code, caught.value.message) == (103, "permission denied")
        assert caught.value.temporary is False
        await client.subscribe("open")


async def test_connect_error_reply_raises_and_closes() -> None:
    """A connect error reply (109 token expired) raises ClientProtocolError."""

    async def handler(ws: ServerConnection) -> None:
        command = await recv_json(ws)
        error = {"code": 109, "message": "token expired"}
        await ws.send(json.dumps({"id": command["id"], "error": error}))
        await ws.wait_closed()

    async with fake_server(handler) as url:
        with pytest.raises(ClientProtocolError) as caught:
            await Client(url, "old").connect()
    assert caught.value.code == 109


async def test_close_during_connect_raises_client_disconnected() -> None:
    """A server that closes with 3500 instead of replying makes connect() raise it."""

    async def handler(ws: ServerConnection) -> None:
        await recv_json(ws)
        await ws.close(3500, "invalid token")

    async with fake_server(handler) as url:
        with pytest.raises(ClientDisconnected) as caught:
            await Client(url, "bad").connect()
    assert (caught.value.code, caught.value.reason) == (3500, "invalid token")
    assert str(caught.value) == "3500: invalid token"


async def test_unsubscribe_push_raises_client_unsubscribed() -> None:
    """A server unsubscribe push ends publications() with ClientUnsubscribed."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await reply_to_subscribe(ws, {})
        push = {"channel": "c", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
        await ws.send(json.dumps({"push": push}))
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        await client.subscribe("c")
        with pytest.raises(ClientUnsubscribed) as caught:
            await drain(client, [])
    assert (caught.value.channel, caught.value.code) == ("c", 2000)


async def test_other_pushes_are_ignored() -> None:
    """Join, leave and message pushes are not publications."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await reply_to_subscribe(ws, {})
        info = {"user": "u", "client": "x"}
        pushes = [
            {"push": {"channel": "c", "join": {"info": info}}},
            {"push": {"message": {"data": 1}}},
            {"push": {"channel": "c", "pub": {"data": "only"}}},
        ]
        await ws.send("\n".join(json.dumps(p) for p in pushes))
        await ws.close(3001, "shutdown")

    async with fake_server(handler) as url, Client(url, "tok") as client:
        await client.subscribe("c")
        received: list[tuple[str, dict[str, Any]]] = []
        with pytest.raises(ClientDisconnected):
            await drain(client, received)
    assert received == [("c", {"data": "only"})]


async def test_aclose_ends_publications_quietly() -> None:
    """After aclose(), publications() ends without an error, every time it is called."""
    connected = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        connected.set()
        await ws.wait_closed()

    async with fake_server(handler) as url:
        client = Client(url, "tok")
        await client.connect()
        await connected.wait()
        await client.aclose()
        await client.aclose()
        assert [item async for item in client.publications()] == []
        assert [item async for item in client.publications()] == []
        with pytest.raises(ClientDisconnected):
            await client.subscribe("c")


async def test_malformed_server_message_disconnects() -> None:
    """A frame that is not JSON closes the connection and fails pending commands."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await recv_json(ws)
        await ws.send("this is not json")
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        with pytest.raises(ClientDisconnected) as caught:
            await client.subscribe("c")
    assert caught.value.code == 1002


async def test_non_object_message_disconnects() -> None:
    """A JSON message that is not an object is a protocol violation."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await recv_json(ws)
        await ws.send("[1, 2]")
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        with pytest.raises(ClientDisconnected) as caught:
            await client.subscribe("c")
    assert "expected a JSON object" in caught.value.reason


async def test_malformed_result_raises_client_exception() -> None:
    """A subscribe result with wrongly typed fields raises ClientException."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await reply_to_subscribe(ws, {"offset": "not a number"})
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        with pytest.raises(ClientException, match="malformed subscribe reply"):
            await client.subscribe("c")


async def test_no_reply_in_time_raises_timeout() -> None:
    """A command without a reply within the timeout raises TimeoutError."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok", timeout=0.05) as client:
        with pytest.raises(TimeoutError):
            await client.subscribe("c")


async def test_refused_connection_raises_connect_error() -> None:
    """Nothing listening on the port raises ClientConnectError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClientConnectError, match="cannot connect"):
        await Client(f"ws://127.0.0.1:{port}/connection/websocket").connect()


async def test_rejected_handshake_raises_connect_error() -> None:
    """An HTTP 403 instead of a WebSocket upgrade raises ClientConnectError."""

    def forbid(_: ServerConnection, __: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"origin not allowed")

    async def handler(ws: ServerConnection) -> None:
        raise AssertionError("never upgraded")

    async with serve(handler, "127.0.0.1", 0, process_request=forbid) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(ClientConnectError, match="403"):
            await Client(f"ws://127.0.0.1:{port}/connection/websocket").connect()


async def test_bad_url_raises_connect_error() -> None:
    """A URL that is not ws:// or wss:// raises ClientConnectError."""
    with pytest.raises(ClientConnectError):
        await Client("http://127.0.0.1:1/connection/websocket").connect()


async def test_connect_twice_is_a_usage_error() -> None:
    """A second connect() on one client raises RuntimeError."""

    async def handler(ws: ServerConnection) -> None:
        await accept_connect(ws)
        await ws.wait_closed()

    async with fake_server(handler) as url, Client(url, "tok") as client:
        with pytest.raises(RuntimeError, match="already"):
            await client.connect()


async def test_commands_before_connect_are_a_usage_error() -> None:
    """subscribe() before connect() raises RuntimeError."""
    with pytest.raises(RuntimeError, match="not called"):
        await Client("ws://127.0.0.1:1/").subscribe("c")
