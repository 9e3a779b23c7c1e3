"""ASGI assembly: the routes one Parsec instance serves."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute

from parsec.engine.node import Node
from parsec.options import Options
from parsec.rpc.centrifugo_api import CentrifugoApi
from parsec.transports.websocket import WebSocketEndpoint

__all__ = ["build_app"]


def build_app(node: Node, options: Options, *, ready: bool = True) -> Starlette:
    """Routes: ``/connection/websocket``, ``/api`` and ``/api/<method>``, ``/healthz``.

    ``/healthz`` answers 200 ``ok`` while the node runs and 503 otherwise.
    """

    async def healthz(request: Request) -> PlainTextResponse:
        if node.running:
            return PlainTextResponse("ok")
        return PlainTextResponse("not ready", status_code=503)

    routes: list[BaseRoute] = [
        WebSocketRoute("/connection/websocket", WebSocketEndpoint(node)),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *CentrifugoApi(node, options.api).routes(),
    ]
    return Starlette(routes=routes)
