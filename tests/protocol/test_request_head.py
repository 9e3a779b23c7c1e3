"""Request head limits on a real server, over raw sockets, on both ways of serving:
the native ``parsec serve`` path and the one without the native WebSocket transport.

A head over 64 KiB or with more than 100 header lines is answered ``431`` however its
bytes arrive (one packet, many, the first request of a connection or a later one), the
client reads that answer (no reset while it is still sending), the connection ends,
and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import pytest

from parsec.server import handoff as dispatch

from .harness import WAIT, Server

MAX_HEAD = dispatch.MAX_HEAD
MAX_HEADERS = dispatch.MAX_HEADERS


def _ws_head(extra: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


def _headers(count: int) -> bytes:
    return b"".join(b"X-H-%05d: v\r\n" % n for n in range(count))


OVERSIZED = {
    "100-kB-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * 100_000 + b"\r\n\r\n",
    "200-kB-request-line": b"GET /healthz?" + b"q" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "2000-headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + _headers(2000) + b"\r\n",
    "websocket-100-kB-header": _ws_head(b"X-Fill: " + b"a" * 100_000 + b"\r\n"),
    "websocket-2000-headers": _ws_head(_headers(2000)),
}


pytestmark = pytest.mark.usefixtures("no_errors_logged")


async def _send(writer: asyncio.StreamWriter, data: bytes, piece: int | None) -> None:
    """Send ``data`` in one write, or in pieces of ``piece`` bytes (each drained)."""
    step = piece or len(data)
    for start in range(0, len(data), step):
        writer.write(data[start : start + step])
        await writer.drain()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it ends the connection."""
    async with asyncio.timeout(WAIT):
        return await reader.read()


async def _healthy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        assert (await http.get("/healthz", timeout=WAIT)).status_code == 200


@pytest.mark.parametrize("piece", [None, 4096], ids=["one-packet", "in-pieces"])
@pytest.mark.parametrize("request_bytes", OVERSIZED.values(), ids=OVERSIZED.keys())
async def test_an_oversized_first_head_is_431(
    server: Server, request_bytes: bytes, piece: int | None
) -> None:
    """Sent whole or in pieces, an oversized head gets 431 and the connection ends;
    the client could send all of it and reads the answer."""
    reader, writer = await server.open_socket()
    await _send(writer, request_bytes, piece)
    answer = await _answer(reader)
    writer.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"\r\nContent-Length: %d\r\n" % len(body) in head
    assert body == b"request head is too large"
    await _healthy(server)


@pytest.mark.parametrize("request_bytes", OVERSIZED.values(), ids=OVERSIZED.keys())
async def test_an_oversized_later_head_on_a_kept_alive_connection_is_431(
    server: Server, request_bytes: bytes
) -> None:
    """The limits hold for every request of a connection, not only its first."""
    if b"Upgrade: websocket" in request_bytes:
        request_bytes = request_bytes.replace(b"/connection/websocket", b"/healthz")
    reader, writer = await server.open_socket()
    await _send(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", None)
    async with asyncio.timeout(WAIT):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        assert await reader.readexactly(2) == b"ok"

    await _send(writer, request_bytes, 4096)
    answer = await _answer(reader)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 431 ")
    await _healthy(server)


async def test_a_pipelined_oversized_head_is_431_after_the_answers_before_it(
    server: Server,
) -> None:
    """Requests sent back to back in one packet: the good one is answered first, then
    the oversized one gets its 431."""
    reader, writer = await server.open_socket()
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    await _send(writer, first + OVERSIZED["200-kB-request-line"], None)
    answer = await _answer(reader)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 200 ")
    ok_end = answer.index(b"\r\n\r\nok") + 6
    assert answer[ok_end:].startswith(b"HTTP/1.1 431 ")


async def test_one_header_growing_in_pieces_on_a_later_request_is_431(server: Server) -> None:
    """A single header value that never ends is refused once over the limit: the server
    does not keep reading it into memory."""
    reader, writer = await server.open_socket()
    await _send(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", None)
    async with asyncio.timeout(WAIT):
        await reader.readuntil(b"ok")
    await _send(writer, b"GET /healthz HTTP/1.1\r\nX-Fill: " + b"a" * 3 * MAX_HEAD, 1024)
    answer = await _answer(reader)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_head_at_the_limits_is_served(server: Server) -> None:
    """A head of exactly 64 KiB, and one with exactly 100 header lines, are served."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: "
    at_size = start + b"a" * (MAX_HEAD - len(start) - 4) + b"\r\n\r\n"
    at_count = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + _headers(MAX_HEADERS - 1) + b"\r\n"
    assert len(at_size) == MAX_HEAD
    for request_bytes in (at_size, at_count):
        reader, writer = await server.open_socket()
        await _send(writer, request_bytes, None)
        async with asyncio.timeout(WAIT):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.close()


async def test_one_header_too_many_is_431(server: Server) -> None:
    """101 header lines are one too many."""
    reader, writer = await server.open_socket()
    await _send(
        writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + _headers(MAX_HEADERS) + b"\r\n", None
    )
    assert (await _answer(reader)).startswith(b"HTTP/1.1 431 ")
    writer.close()


def test_the_old_module_name_still_works_with_a_deprecation_warning() -> None:
    """``parsec.server.protocol`` (documented before the rename) forwards to the handoff."""
    from parsec.server import protocol

    with pytest.warns(DeprecationWarning, match=r"parsec\.server\.handoff\.http_protocol"):
        assert protocol.http_protocol is dispatch.http_protocol
