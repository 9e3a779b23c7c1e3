"""The Starlette + broadcaster peer (``bench/peers/broadcaster_server.py``).

Connect to ``/ws`` (``?token=…`` is verified before the WebSocket is accepted); the
server greets with ``{"op":"welcome"}``. Commands are JSON objects:
``{"op":"subscribe","channel":…}`` (answered ``{"op":"subscribed",…}`` once the
broadcaster subscription exists) and ``{"op":"publish","channel":…,"data":…}``.
A delivered publication is its data, one message per frame.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from bench.loadgen.adapters.base import Conn
from bench.loadgen.latency import STAMP

__all__ = ["BroadcasterConn"]

WELCOME = b'{"op":"welcome"}'
SUBSCRIBED = b'{"op":"subscribed"'


class BroadcasterConn(Conn):
    path = "/ws"

    @classmethod
    def query(cls, token: str | None) -> str:
        return "" if token is None else f"?token={quote(token)}"

    def on_open(self) -> None:
        """The server greets first (``{"op":"welcome"}``)."""

    def on_message(self, data: bytes, now: int) -> None:
        if data.startswith(SUBSCRIBED):
            self.resolve_oldest()
        elif data == WELCOME:
            self.handshake_done()
        else:
            self.sink.record(STAMP.findall(data), now)

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        future = self.expect()
        self.send(json.dumps({"op": "subscribe", "channel": channel}).encode())
        return future

    def publish(self, channel: str, data: bytes) -> None:
        self.send(b'{"op":"publish","channel":%s,"data":%s}' % (json.dumps(channel).encode(), data))
