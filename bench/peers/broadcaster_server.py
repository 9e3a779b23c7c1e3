"""The Starlette + broadcaster peer: Starlette WebSockets on uvicorn (uvloop, httptools,
the same WebSocket implementation as Parsec), fan-out through ``Broadcast("memory://")``
the way broadcaster's README chat example does it: one subscriber task per
subscription, forwarding each event with ``send_text``.

``/ws`` (``?token=…`` is verified before the accept; a bad token is closed with 1008)
greets with ``{"op":"welcome"}``, then takes JSON commands:
``{"op":"subscribe","channel":…}`` (answered ``{"op":"subscribed","channel":…}`` once
subscribed) and ``{"op":"publish","channel":…,"data":…}``. ``POST /publish`` with
``{"channel", "data"}`` publishes from HTTP. uvicorn pings every WebSocket every 25 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.peers._common import PING_INTERVAL_S, PING_TIMEOUT_S, parse_args, token_ok

__all__ = ["build_app", "main"]

WELCOME = '{"op":"welcome"}'
SUBSCRIBED = '{"op":"subscribed","channel":%s}'
POLICY_VIOLATION = 1008


def build_app(secret: str) -> Starlette:
    broadcast = Broadcast("memory://")

    async def forward(websocket: WebSocket, channel: str, subscribed: asyncio.Event) -> None:
        async with broadcast.subscribe(channel=channel) as subscriber:
            subscribed.set()
            async for event in subscriber:  # type: ignore[union-attr]
                assert event is not None  # None ends the iteration inside broadcaster
                await websocket.send_text(event.message)

    async def subscribe(websocket: WebSocket, group: asyncio.TaskGroup, channel: str) -> None:
        subscribed = asyncio.Event()
        group.create_task(forward(websocket, channel, subscribed))
        await subscribed.wait()
        await websocket.send_text(SUBSCRIBED % json.dumps(channel))

    async def endpoint(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token")
        if token is not None and not token_ok(token, secret):
            await websocket.close(POLICY_VIOLATION)
            return
        await websocket.accept()
        await websocket.send_text(WELCOME)
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    command: dict[str, Any] = json.loads(await websocket.receive_text())
                    if command["op"] == "subscribe":
                        await subscribe(websocket, group, command["channel"])
                    elif command["op"] == "publish":
                        await broadcast.publish(
                            channel=command["channel"], message=json.dumps(command["data"])
                        )
        except* (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away (RuntimeError: a send after the close)

    async def http_publish(request: Request) -> JSONResponse:
        message = await request.json()
        await broadcast.publish(channel=message["channel"], message=json.dumps(message["data"]))
        return JSONResponse({})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with broadcast:
            yield

    return Starlette(
        routes=[
            WebSocketRoute("/ws", endpoint),
            Route("/publish", http_publish, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args("broadcaster_server", argv)
    uvicorn.run(
        build_app(args.secret),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws_ping_interval=PING_INTERVAL_S,
        ws_ping_timeout=PING_TIMEOUT_S,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
