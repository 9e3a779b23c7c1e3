"""Serving a Parsec over HTTP and WebSocket: what :meth:`parsec.Parsec.run` does.

::

    serve(parsec)
      ├─ listen()                 bind options.server.addr (parsec.server.listen)
      ├─ http_protocol()          the handoff (parsec.server.handoff): HTTP to uvicorn,
      │                           client WebSocket upgrades to the native transport
      ├─ reload_on_sighup()       SIGHUP reloads the keyring (parsec.services.keys)
      └─ ReadyServer.serve()      uvicorn, until SIGINT / SIGTERM or Parsec.aclose

Imported only when serving, so ``import parsec`` loads no uvicorn.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from parsec.facade import ParsecState
from parsec.server.listen import BACKLOG, listen
from parsec.server.runner import ReadyServer
from parsec.transports.websocket import WEBSOCKET_PATH

if TYPE_CHECKING:
    from parsec.facade import Parsec

__all__ = ["http_protocol_of", "serve"]


def http_protocol_of(parsec: Parsec) -> type[asyncio.Protocol]:
    """uvicorn's per-connection protocol for ``parsec``, enforcing the request head
    limits (:mod:`parsec.server.handoff`): with ``native_websocket`` it also hands
    WebSocket upgrades of the client path to the native transport."""
    from parsec.server.handoff import http_protocol
    from parsec.transports import native

    if not parsec.options.server.native_websocket:
        return http_protocol()
    path = WEBSOCKET_PATH
    proxies = parsec.options.observability.trusted_proxies
    return http_protocol(path, native.protocol_factory(parsec.node, path, proxies))


async def serve(
    parsec: Parsec, ready: Callable[[], None] | None = None, *, reuse_port: bool = False
) -> None:
    """Serve ``parsec`` (started) on ``options.server.addr`` until SIGINT / SIGTERM or
    until ``parsec`` closes (see :meth:`parsec.Parsec.run`).

    Raises :class:`parsec.server.listen.ListenError` when the address cannot be
    listened on; nothing stays bound after it returns or raises."""
    server_opts = parsec.options.server
    sockets = listen(server_opts.host, server_opts.port, reuse_port=reuse_port)
    try:
        config = uvicorn.Config(
            parsec.asgi_app(),
            host=server_opts.host,
            port=server_opts.port,
            http=http_protocol_of(parsec),
            ws_max_size=server_opts.max_frame_size,
            ws_ping_interval=None,
            lifespan="off",
            log_level="warning",
            log_config=None,  # uvicorn's loggers propagate to the root's handler
            access_log=False,  # parsec.observability.access_log writes one
            # X-Forwarded-For is believed by the access log, from trusted proxies only
            proxy_headers=False,
            backlog=BACKLOG,
        )
        server = ReadyServer(config, ready, stop=lambda: parsec.state is ParsecState.CLOSED)
        uninstall = parsec.keys.reload_on_sighup()
        try:
            await server.serve(sockets=sockets)
        finally:
            uninstall()
    finally:
        _close(sockets)


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
