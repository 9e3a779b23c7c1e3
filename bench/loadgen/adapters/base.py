"""The picows listener every adapter builds on.

A ``Conn`` is one WebSocket connection of the load generator. picows calls
``on_ws_frame`` for every frame on the event loop; the base class timestamps text
frames, reassembles fragmented ones, answers WebSocket pings itself (so they can be
counted) and records close codes. A subclass speaks its wire format in ``on_open``,
``on_message``, ``subscribe`` and ``publish``.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from bench.loadgen.latency import Sink

__all__ = ["Conn", "ConnectRefused"]


class ConnectRefused(Exception):
    """The server refused the protocol handshake (bad token, error reply)."""


class Conn(WSListener):
    """One load-generator connection. ``ready`` resolves once the protocol handshake
    is done (or fails with ``ConnectRefused``); ``gone`` once the TCP connection closed."""

    path: ClassVar[str] = "/"
    """The WebSocket path on the server."""

    def __init__(self, sink: Sink, token: str | None) -> None:
        super().__init__()
        self.sink = sink
        self.token = token
        self.transport: WSTransport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.closing = False
        """Set by the workload before it closes the connection itself."""
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._last_key = 0
        self._fragments: list[bytes] = []

    @classmethod
    def query(cls, token: str | None) -> str:
        """The URL query the handshake carries (``?token=…`` for servers that read the
        token there); empty by default."""
        return ""

    # --- picows callbacks --------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.on_open()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY or kind is WSMsgType.CONTINUATION:
            self._data(frame)
        elif kind is WSMsgType.PING:
            self.sink.pings += 1
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind is WSMsgType.CLOSE:
            self._closed_by_server(frame.get_close_code().value)
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectRefused("connection closed during the handshake"))
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(ConnectRefused("connection closed before the reply"))
        if not self.gone.done():
            self.gone.set_result(None)

    def _data(self, frame: WSFrame) -> None:
        if not frame.fin:
            self._fragments.append(frame.get_payload_as_bytes())
            return
        now = time.perf_counter_ns()
        payload = frame.get_payload_as_bytes()
        if self._fragments:
            payload = b"".join([*self._fragments, payload])
            self._fragments.clear()
        self.on_message(payload, now)

    def _closed_by_server(self, code: int) -> None:
        if not self.closing:
            self.sink.closed(code)
        if not self.ready.done():
            self.ready.set_exception(ConnectRefused(f"closed with {code} during the handshake"))

    # --- helpers for subclasses --------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send one text frame (dropped once the connection is gone)."""
        transport = self.transport
        if transport is not None and not self.gone.done():
            transport.send(WSMsgType.TEXT, data)

    def expect(self, key: int | None = None) -> asyncio.Future[None]:
        """A future that ``resolve(key)`` settles; ``key`` defaults to the next number
        (for protocols that acknowledge in order, see ``resolve_oldest``)."""
        if key is None:
            key = self.new_key()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def new_key(self) -> int:
        """A fresh acknowledgement key (1, 2, 3, … per connection)."""
        self._last_key += 1
        return self._last_key

    def resolve(self, key: int, error: str | None = None) -> bool:
        """Settle the future ``expect(key)`` returned (failed when ``error`` is given);
        False when nothing waits for ``key``."""
        future = self._waiting.pop(key, None)
        if future is None:
            return False
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(ConnectRefused(error))
        return True

    def resolve_oldest(self, error: str | None = None) -> None:
        """Settle the oldest pending future; an acknowledgement nobody waits for is
        counted as an error."""
        oldest = next(iter(self._waiting), None)
        if oldest is None:
            self.sink.error("unexpected acknowledgement")
        else:
            self.resolve(oldest, error)

    def handshake_done(self, error: str | None = None) -> None:
        """Resolve ``ready`` (failed with ``error`` when given)."""
        if self.ready.done():
            return
        if error is None:
            self.ready.set_result(None)
        else:
            self.ready.set_exception(ConnectRefused(error))

    def close(self) -> None:
        """Close from our side, without counting it as a server disconnect."""
        self.closing = True
        if self.transport is not None and not self.gone.done():
            self.transport.disconnect(graceful=False)

    # --- the wire format -----------------------------------------------------------

    def on_open(self) -> None:
        """Start the protocol handshake; resolve ``ready`` via ``handshake_done``."""
        self.handshake_done()

    def on_message(self, data: bytes, now: int) -> None:
        """Handle one text message received at ``now`` (perf_counter ns)."""
        raise NotImplementedError

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        """Subscribe to ``channel``; the future resolves once the server confirmed."""
        raise NotImplementedError

    def publish(self, channel: str, data: bytes) -> None:
        """Publish JSON ``data`` to ``channel`` (fire and forget; errors are counted)."""
        raise NotImplementedError
