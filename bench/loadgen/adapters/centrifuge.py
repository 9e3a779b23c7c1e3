"""Parsec: the Centrifugo client protocol v2 over JSON at ``/connection/websocket``.

connect: ``{"id":1,"connect":{"token":…}}`` (no token: anonymous); subscribe and
publish are commands with increasing ids. A frame may carry several ``\\n``-joined
messages: replies (``{"id":…}``), pushes (``{"push":…}``) and pings (``{}``), which
are answered with ``{}`` at once.
"""

from __future__ import annotations

import asyncio
import json

import msgspec

from bench.loadgen.adapters.base import Conn
from bench.loadgen.latency import STAMP, Sink

__all__ = ["CentrifugeConn"]

PING = b"{}"
CONNECT_ID = 1


class _Reply(msgspec.Struct):
    id: int = 0
    error: dict[str, object] | None = None


_decode_reply = msgspec.json.Decoder(_Reply).decode


class CentrifugeConn(Conn):
    path = "/connection/websocket"

    def __init__(self, sink: Sink, token: str | None) -> None:
        super().__init__(sink, token)
        self._next_id = CONNECT_ID

    def on_open(self) -> None:
        connect = {"token": self.token} if self.token else {}
        self.send(json.dumps({"id": CONNECT_ID, "connect": connect}).encode())

    def on_message(self, data: bytes, now: int) -> None:
        if b'{"id"' not in data and PING not in data:  # pushes only: the hot path
            self.sink.record(STAMP.findall(data), now)
            return
        for line in data.split(b"\n"):
            if line == PING:
                self.sink.pings += 1
                self.send(PING)
            elif line.startswith(b'{"push"'):
                self.sink.record(STAMP.findall(line), now)
            elif line:
                self._reply(line)

    def _reply(self, line: bytes) -> None:
        try:
            reply = _decode_reply(line)
        except msgspec.DecodeError:
            self.sink.error("undecodable reply")
            return
        error = None if reply.error is None else f"error {reply.error.get('code')}"
        if reply.id == CONNECT_ID:
            self.handshake_done(error)
            return
        if not self.resolve(reply.id, error) and error is not None:
            self.sink.error(error)  # a publish failed

    def _command(self, method: str, body: bytes) -> int:
        self._next_id += 1
        self.send(b'{"id":%d,"%s":%s}' % (self._next_id, method.encode(), body))
        return self._next_id

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        command = self._command("subscribe", json.dumps({"channel": channel}).encode())
        return self.expect(command)

    def publish(self, channel: str, data: bytes) -> None:
        self._command("publish", b'{"channel":%s,"data":%s}' % (json.dumps(channel).encode(), data))
