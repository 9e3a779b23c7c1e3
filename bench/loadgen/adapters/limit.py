"""The limit server (``bench/peers/limit_server.py``): a picows broadcaster that does
no protocol work.

``?token=…`` is verified before the upgrade (a bad token gets 401). ``s <channel>``
subscribes (answered ``ok``); ``p <channel> <data>`` sends ``data`` to every
subscriber of ``channel`` as its own frame.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from bench.loadgen.adapters.base import Conn
from bench.loadgen.latency import STAMP

__all__ = ["LimitConn"]

OK = b"ok"


class LimitConn(Conn):
    path = "/"

    @classmethod
    def query(cls, token: str | None) -> str:
        return "" if token is None else f"?token={quote(token)}"

    def on_message(self, data: bytes, now: int) -> None:
        if data == OK:
            self.resolve_oldest()
        else:
            self.sink.record(STAMP.findall(data), now)

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        future = self.expect()
        self.send(b"s " + channel.encode())
        return future

    def publish(self, channel: str, data: bytes) -> None:
        self.send(b"p %s %s" % (channel.encode(), data))
