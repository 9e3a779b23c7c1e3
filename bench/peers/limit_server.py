"""The limit server: a minimal picows broadcaster on uvloop that does no protocol work.

It shows what one Python process can push through WebSockets when nothing but frames
is done: no JSON, no per-message bookkeeping, each publication sent as its own frame.

Wire format (text frames): ``s <channel>`` subscribes the sender (answered ``ok``);
``p <channel> <data>`` sends ``data`` verbatim to every subscriber of ``channel``.
A ``?token=`` in the upgrade URL is verified (HS256) before the upgrade; a bad one
gets 401. The server pings every connection every 25 s (WebSocket ping frames).
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qs, urlsplit

import uvloop
from picows import (
    WSAutoPingStrategy,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from bench.peers._common import PING_INTERVAL_S, PING_TIMEOUT_S, parse_args, token_ok

__all__ = ["Channels", "main"]


class Channels:
    """channel -> the transports subscribed to it."""

    def __init__(self) -> None:
        self.subscribers: dict[bytes, set[WSTransport]] = {}

    def listener(self) -> WSListener:
        return _Listener(self)


class _Listener(WSListener):
    def __init__(self, channels: Channels) -> None:
        super().__init__()
        self.channels = channels
        self.joined: list[bytes] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        data = frame.get_payload_as_bytes()
        op, _, rest = data.partition(b" ")
        if op == b"p":
            channel, _, payload = rest.partition(b" ")
            for subscriber in self.channels.subscribers.get(channel, ()):
                subscriber.send(WSMsgType.TEXT, payload)
        elif op == b"s":
            self.channels.subscribers.setdefault(rest, set()).add(transport)
            self.joined.append(rest)
            transport.send(WSMsgType.TEXT, b"ok")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for channel in self.joined:
            members = self.channels.subscribers.get(channel)
            if members is not None:
                members.discard(transport)
                if not members:
                    del self.channels.subscribers[channel]


async def serve(host: str, port: int, secret: str) -> None:
    channels = Channels()

    def route(request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
        token = parse_qs(urlsplit(request.path.decode()).query).get("token")
        if token is not None and not token_ok(token[0], secret):
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(401, b"invalid token"), None
            )
        return channels.listener()

    server = await ws_create_server(
        route,
        host,
        port,
        enable_auto_ping=True,
        auto_ping_idle_timeout=PING_INTERVAL_S,
        auto_ping_reply_timeout=PING_TIMEOUT_S,
        auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
        backlog=4096,
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    args = parse_args("limit_server", argv)
    uvloop.run(serve(args.host, args.port, args.secret))


if __name__ == "__main__":
    main(sys.argv[1:])
