"""The python-socketio peer: an ``AsyncServer`` mounted as ASGI on uvicorn (uvloop,
httptools, the same WebSocket implementation as Parsec), with the in-memory manager,
or with ``socketio.AsyncRedisManager`` when given ``--redis URL``.

Events: ``subscribe`` (a channel name; the sid enters that room; acknowledged) and
``publish`` (``{"channel", "data"}``; ``data`` is emitted as event ``pub`` to the room).
``POST /publish`` with the same JSON body publishes from HTTP. The namespace connect
carries ``{"token": …}`` as auth when the client has one; a bad token is refused.
Engine.IO pings every 25 s. WebSocket transport only (no long-polling upgrade).

``--workers N --redis URL`` serves the port with N processes (SO_REUSEPORT, see
``_workers``), sharing rooms through the Redis manager on the pub/sub channel
``--redis-channel``: the setup python-socketio documents for scaling out.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import socketio  # type: ignore[import-untyped]
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers._common import PING_INTERVAL_S, PING_TIMEOUT_S, peer_parser, token_ok
from bench.peers._workers import reuse_port_socket, supervise

__all__ = ["build_app", "main"]

STARTUP_FAILURE = 3
"""uvicorn's exit status when the server could not start."""


def build_app(secret: str, redis_url: str | None = None, channel: str = "socketio") -> Any:
    """The ASGI app: Socket.IO at ``/socket.io/``, ``POST /publish`` beside it; rooms
    shared through Redis when ``redis_url`` is given."""
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=(
            None if redis_url is None else socketio.AsyncRedisManager(redis_url, channel=channel)
        ),
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


def _parser() -> argparse.ArgumentParser:
    parser = peer_parser("socketio_server")
    parser.add_argument("--redis", metavar="URL", help="share rooms through this Redis")
    parser.add_argument("--redis-channel", metavar="NAME", default="socketio")
    parser.add_argument("--workers", type=int, default=1, help="processes on the port")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers > 1:
        if args.redis is None:
            parser.error("--workers needs --redis: separate processes share rooms through it")
        worker = [sys.executable, "-m", "bench.peers.socketio_server", "--reuse-port"]
        worker += ["--host", args.host, "--port", str(args.port), "--secret", args.secret]
        worker += ["--redis", args.redis, "--redis-channel", args.redis_channel]
        sys.exit(supervise(worker, args.workers))
    config = uvicorn.Config(
        build_app(args.secret, args.redis, args.redis_channel),
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
    server = uvicorn.Server(config)
    server.run(sockets=[reuse_port_socket(args.host, args.port)] if args.reuse_port else None)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    main(sys.argv[1:])
