"""Many cheap WebSocket clients of a Parsec server, for tests of mass connects and
disconnects.

A ``Member`` is a bare TCP stream speaking just enough WebSocket (RFC 6455: the
upgrade, masked text frames out, unmasked frames in) and Centrifugo client protocol v2
JSON to connect and subscribe in one frame. It keeps every push it receives in
``pushes``. ``hang_up`` drops the TCP connection without a close frame, as a client
that vanished (a closed laptop, a killed tab) does. A thousand of them open in about a
second on a small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
from typing import Any

__all__ = ["Member", "crowd"]

_WAIT = 10.0
_OPENING = 64
"""Members that open at the same time: the server's accept backlog stays small."""


class Member:
    """One connected, subscribed client (``await Member.join(...)``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.client_id = ""
        self.pushes: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = 0
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, host: str, port: int, channel: str, **subscribe: Any) -> Member:
        """Open a connection to ``host:port``, connect anonymously and subscribe to
        ``channel`` (with the ``subscribe`` request fields, such as ``join_leave``);
        returns once the subscription is confirmed."""
        reader, writer = await asyncio.open_connection(host, port)
        member = cls(reader, writer)
        try:
            async with asyncio.timeout(_WAIT):
                await member._upgrade(host, port)
                member._reading = asyncio.create_task(member._read())
                connected, subscribed = await member._call(
                    ("connect", {}), ("subscribe", {"channel": channel, **subscribe})
                )
        except BaseException:
            await member.aclose()
            raise
        assert "connect" in connected, connected
        assert "subscribe" in subscribed, subscribed
        member.client_id = connected["connect"]["client"]
        return member

    def pushes_of(self, kind: str) -> list[dict[str, Any]]:
        """The bodies of the ``kind`` pushes (``join``, ``leave``, ``pub``…) so far."""
        return [push[kind] for push in self.pushes if kind in push]

    def hang_up(self) -> None:
        """Drop the connection at once, without a close frame."""
        self._writer.transport.abort()

    async def aclose(self) -> None:
        """Drop the connection and stop reading. Idempotent."""
        self.hang_up()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def _upgrade(self, host: str, port: int) -> None:
        self._writer.write(
            (
                "GET /connection/websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    async def _call(self, *commands: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` as one frame; their replies, in order."""
        loop = asyncio.get_running_loop()
        lines, waiting = [], []
        for method, body in commands:
            self._ids += 1
            lines.append(json.dumps({"id": self._ids, method: body}))
            waiting.append(self._replies.setdefault(self._ids, loop.create_future()))
        self._send("\n".join(lines).encode())
        return list(await asyncio.gather(*waiting))

    def _send(self, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x81, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(head + mask + masked)

    async def _read(self) -> None:
        try:
            while True:
                first, second = await self._reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self._reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self._reader.readexactly(8))
                payload = await self._reader.readexactly(size)
                if first & 0x0F == 0x8:  # close
                    return
                for line in payload.decode().split("\n"):
                    if line.strip():
                        self._receive(json.loads(line))
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.closed.set()

    def _receive(self, message: dict[str, Any]) -> None:
        if "push" in message:
            self.pushes.append(message["push"])
            return
        waiter = self._replies.pop(message.get("id", 0), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)


async def crowd(host: str, port: int, channel: str, count: int) -> list[Member]:
    """``count`` members subscribed to ``channel``, at most _OPENING opening at once.
    Every member opened is closed again if any fails to open."""
    members: list[Member] = []
    slots = asyncio.Semaphore(_OPENING)

    async def one() -> None:
        async with slots:
            members.append(await Member.join(host, port, channel))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(count):
                group.create_task(one())
    except BaseException:
        for member in members:
            await member.aclose()
        raise
    return members
