"""The python-socketio peer: an ``AsyncServer`` (in-memory manager) mounted as ASGI
on uvicorn (uvloop, httptools, the same WebSocket implementation as Parsec).

Events: ``subscribe`` (a channel name; the sid enters that room; acknowledged) and
``publish`` (``{"channel", "data"}``; ``data`` is emitted as event ``pub`` to the room).
``POST /publish`` with the same JSON body publishes from HTTP. The namespace connect
carries ``{"token": …}`` as auth when the client has one; a bad token is refused.
Engine.IO pings every 25 s. WebSocket transport only (no long-polling upgrade).
"""

from __future__ import annotations

import sys
from typing import Any

import socketio  # type: ignore[import-untyped]
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers._common import PING_INTERVAL_S, PING_TIMEOUT_S, parse_args, token_ok

__all__ = ["build_app", "main"]


def build_app(secret: str) -> Any:
    """The ASGI app: Socket.IO at ``/socket.io/``, ``POST /publish`` beside it."""
    sio = socketio.AsyncServer(
        async_mode="asgi",
        transports=["websocket"],
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_TIMEOUT_S,
        logger=False,
        engineio_logger=False,
    )

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: object) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is not None and not token_ok(str(token), secret):
            raise socketio.exceptions.ConnectionRefusedError("invalid token")

    @sio.on("subscribe")  # type: ignore[untyped-decorator]
    async def subscribe(sid: str, channel: str) -> str:
        await sio.enter_room(sid, channel)
        return "ok"

    @sio.on("publish")  # type: ignore[untyped-decorator]
    async def publish(sid: str, message: dict[str, Any]) -> None:
        await sio.emit("pub", message["data"], room=message["channel"])

    async def http_publish(request: Request) -> JSONResponse:
        message = await request.json()
        await sio.emit("pub", message["data"], room=message["channel"])
        return JSONResponse({})

    http = Starlette(routes=[Route("/publish", http_publish, methods=["POST"])])
    return socketio.ASGIApp(sio, other_asgi_app=http)


def main(argv: list[str] | None = None) -> None:
    args = parse_args("socketio_server", argv)
    uvicorn.run(
        build_app(args.secret),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws_ping_interval=None,  # Engine.IO pings at the application level
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
