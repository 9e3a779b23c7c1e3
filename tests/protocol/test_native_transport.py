"""The native transport's socket sharing: one port serves HTTP and WebSocket.

These tests speak raw TCP to see what a client on a slow or odd network sends: a
request head in pieces, a head and a first frame in one packet, a silent socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import struct

import pytest

from parsec.server import handoff as dispatch

from .conftest import ServerFactory
from .harness import WAIT, Server


@pytest.fixture
def websocket_transport() -> str:
    """Only the native transport shares the socket this way."""
    return "native"


def _upgrade_head(path: str = "/connection/websocket") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _client_frame(text: str, *, opcode: int = 0x1, fin: bool = True) -> bytes:
    """One masked frame (RFC 6455 §5.2) of under 64 KiB; a final text frame by default."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        header = struct.pack("!BB", first, 0x80 | len(payload))
    else:
        header = struct.pack("!BBH", first, 0x80 | 126, len(payload))
    return header + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next (unmasked, short) server frame."""
    header = await reader.readexactly(2)
    length = header[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    return await reader.readexactly(length)


async def _switch(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readuntil(b"\r\n\r\n")


async def test_head_in_pieces_still_upgrades(server: Server) -> None:
    """A request head that arrives a few bytes at a time is still a WebSocket upgrade."""
    reader, writer = await server.open_socket()
    head = _upgrade_head()
    for i in range(0, len(head), 7):
        writer.write(head[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    assert (await _switch(reader)).startswith(b"HTTP/1.1 101")
    writer.write(_client_frame(json.dumps({"id": 1, "connect": {"token": server.token()}})))
    async with asyncio.timeout(WAIT):
        reply = json.loads(await _read_frame(reader))
    assert reply["id"] == 1
    assert "connect" in reply
    writer.close()


async def test_head_and_first_frame_in_one_packet(server: Server) -> None:
    """A client that sends its first command with the handshake is answered."""
    reader, writer = await server.open_socket()
    command = json.dumps({"id": 1, "connect": {"token": server.token()}})
    writer.write(_upgrade_head() + _client_frame(command))
    assert (await _switch(reader)).startswith(b"HTTP/1.1 101")
    async with asyncio.timeout(WAIT):
        reply = json.loads(await _read_frame(reader))
    assert "connect" in reply
    writer.close()


async def test_http_on_the_same_port_in_pieces(server: Server) -> None:
    """Plain HTTP still works on the port, head in pieces and keep-alive included."""
    reader, writer = await server.open_socket()
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for byte in range(len(request)):
        writer.write(request[byte : byte + 1])
    await writer.drain()
    async with asyncio.timeout(WAIT):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(2) == b"ok"
        writer.write(request)  # the same connection, a second request
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_upgrade_of_another_path_is_plain_http(server: Server) -> None:
    """Only the client path is served natively; an upgrade elsewhere goes to the ASGI
    app, which has no WebSocket route there and refuses it."""
    reader, writer = await server.open_socket()
    writer.write(_upgrade_head("/elsewhere"))
    async with asyncio.timeout(WAIT):
        status = await reader.readuntil(b"\r\n")
    assert status.startswith(b"HTTP/1.1 4")
    writer.close()


async def test_silent_connection_is_closed(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that never completes its request head is closed after the head
    timeout; it does not stay open forever."""
    monkeypatch.setattr(dispatch, "HEAD_TIMEOUT", 0.2)
    server = await make_server()
    reader, writer = await server.open_socket()
    writer.write(b"GET /conn")
    async with asyncio.timeout(WAIT):
        rest = await reader.read()
    assert rest == b""
    writer.close()


async def test_oversized_head_is_refused(server: Server) -> None:
    """A head over 64 KiB is answered 431 and closed, not buffered on."""
    reader, writer = await server.open_socket()
    writer.write(b"GET /connection/websocket HTTP/1.1\r\nX-Fill: " + b"a" * (70 * 1024))
    async with asyncio.timeout(WAIT):
        answer = await reader.read()
    assert answer.startswith(b"HTTP/1.1 431 ")
    writer.close()


async def _close_code(reader: asyncio.StreamReader) -> int:
    """The code of the close frame the server sends next (other frames skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            opcode = (await reader.readexactly(1))[0] & 0x0F
            length = (await reader.readexactly(1))[0] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            body = await reader.readexactly(length)
            if opcode == 0x8:
                code: int = struct.unpack("!H", body[:2])[0]
                return code


@pytest.mark.parametrize(
    "frames",
    [
        [_client_frame("x", opcode=0x0)],
        [_client_frame('{"id":1,', fin=False), _client_frame('{"id":2}')],
    ],
    ids=["continuation-without-start", "new-message-inside-fragmented"],
)
async def test_broken_fragmentation_closes_1002(
    server: Server, frames: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """Fragments out of order are a protocol error (1002), not a message; a client
    fault, counted and logged at INFO."""
    caplog.set_level(logging.INFO)
    reader, writer = await server.open_socket()
    writer.write(_upgrade_head())
    assert (await _switch(reader)).startswith(b"HTTP/1.1 101")
    writer.write(b"".join(frames))
    assert await _close_code(reader) == 1002
    writer.close()
    assert server.parsec.node.client_faults.counts["websocket_protocol_error"] == 1
    assert [r.levelname for r in caplog.records if r.name == "parsec.clients"] == ["INFO"]


@pytest.mark.parametrize(
    "frame",
    [
        _client_frame("x", opcode=0x3),  # a reserved opcode
        _client_frame("x")[:1] + bytes([0x01]) + b"x",  # not masked
    ],
    ids=["reserved-opcode", "unmasked"],
)
async def test_framing_errors_are_client_faults_not_errors(
    server: Server, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames picows cannot parse close the connection with its protocol error code;
    they are counted and logged at INFO, never as ERROR lines."""
    caplog.set_level(logging.INFO)
    reader, writer = await server.open_socket()
    writer.write(_upgrade_head())
    assert (await _switch(reader)).startswith(b"HTTP/1.1 101")
    writer.write(frame)
    assert await _close_code(reader) == 1002
    writer.close()
    assert server.parsec.node.client_faults.counts["websocket_protocol_error"] == 1
    logged = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "parsec.access"]
    assert [r.levelname for r in logged] == ["INFO"]


async def test_many_tiny_fragments_over_the_limit_close_1009(server: Server) -> None:
    """A message sent as thousands of one-byte fragments is counted as it grows and
    refused once over 64 KiB."""
    reader, writer = await server.open_socket()
    writer.write(_upgrade_head())
    assert (await _switch(reader)).startswith(b"HTTP/1.1 101")
    writer.write(_client_frame("[", fin=False))
    one = _client_frame("1", opcode=0x0, fin=False)
    for batch in range(16):  # 1 + 65,535 bytes: exactly at the limit
        writer.write(one * (4095 if batch == 0 else 4096))
        await writer.drain()
    writer.write(one)  # the byte over it, and nothing after it the server leaves unread
    assert await _close_code(reader) == 1009
    writer.close()
    assert server.parsec.node.client_faults.counts["frame_too_big"] == 1


async def test_a_command_still_handled_when_the_node_closes_is_cancelled(server: Server) -> None:
    """Messages are handled in tasks the node owns: closing the node closes the
    connection (3001) and cancels an rpc still being handled, and waits for it."""
    entered, cancelled = asyncio.Event(), asyncio.Event()

    @server.parsec.rpc("hang")
    async def hang(call: object) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = await server.client()
    await client.send({"id": client.next_id(), "rpc": {"method": "hang"}})
    async with asyncio.timeout(WAIT):
        await entered.wait()
    await server.parsec.node.aclose()
    assert cancelled.is_set()
    assert await client.closed() == (3001, "shutdown")
