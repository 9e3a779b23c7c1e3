"""python-socketio: Engine.IO 4 / Socket.IO 5 over a WebSocket-only transport.

The server opens with ``0{…}``; the client joins namespace ``/`` with ``40`` (with
``{"token": …}`` as auth when it has one) and the server answers ``40{"sid": …}`` or
``44{…}``. Events are ``42["name", data]``, with an ack id after ``42`` when an answer
is wanted (``43<id>[…]``). Engine.IO pings are ``2``, answered with ``3``.
"""

from __future__ import annotations

import asyncio
import json

from bench.loadgen.adapters.base import Conn
from bench.loadgen.latency import STAMP

__all__ = ["SocketIOConn"]

OPEN = ord("0")
PING = b"2"
PONG = b"3"
EVENT = b"42"
ACK = b"43"
NAMESPACE_CONNECT = b"40"
NAMESPACE_ERROR = b"44"


class SocketIOConn(Conn):
    path = "/socket.io/?EIO=4&transport=websocket"

    def on_open(self) -> None:
        """The server speaks first (``0{…}``): nothing to send yet."""

    def on_message(self, data: bytes, now: int) -> None:
        if data.startswith(EVENT):
            self.sink.record(STAMP.findall(data), now)
        elif data == PING:
            self.sink.pings += 1
            self.send(PONG)
        elif data.startswith(ACK):
            self.resolve(int(data[2 : data.index(b"[")]))
        elif data[0] == OPEN:
            auth = b"" if self.token is None else json.dumps({"token": self.token}).encode()
            self.send(NAMESPACE_CONNECT + auth)
        elif data.startswith(NAMESPACE_CONNECT):
            self.handshake_done()
        elif data.startswith(NAMESPACE_ERROR):
            self.handshake_done(f"refused: {data[2:].decode(errors='replace')}")
        else:
            self.sink.error("unexpected packet")

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        key = self.new_key()
        self.send(b"42%d%s" % (key, json.dumps(["subscribe", channel]).encode()))
        return self.expect(key)

    def publish(self, channel: str, data: bytes) -> None:
        self.send(b'42["publish",{"channel":%s,"data":%s}]' % (json.dumps(channel).encode(), data))
