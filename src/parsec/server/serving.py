"""Serving a Parsec over HTTP and WebSocket: what :meth:`parsec.Parsec.run` does.

::

    serve(parsec)
      ├─ listen()                 bind options.server.addr (parsec.server.listen)
      ├─ http_protocol()          the handoff (parsec.server.handoff): HTTP to uvicorn,
      │                           client WebSocket upgrades to the native transport
      ├─ reload_on_sighup()       SIGHUP reloads the keyring (parsec.services.keys)
      └─ ReadyServer.serve()      uvicorn, until SIGINT / SIGTERM or Parsec.aclose:
                                  the first signal drains (Parsec.drain), a second one
                                  during the drain exits at once

Imported only when serving, so ``import parsec`` loads no uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
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

log = logging.getLogger("parsec.drain")


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
            # a safety net: the drain cuts what is left at shutdown_timeout already
            timeout_graceful_shutdown=math.ceil(server_opts.shutdown_timeout),
        )
        signals = _Signals(parsec, asyncio.get_running_loop())
        server = ReadyServer(
            config,
            ready,
            stop=lambda: parsec.state is ParsecState.CLOSED,
            on_signal=signals.received,
        )
        uninstall = parsec.keys.reload_on_sighup()
        parsec.drainer.add_listener(server)
        try:
            await server.serve(sockets=sockets)
            if parsec.draining:  # a signal began it: ends once it is done
                await parsec.drain()
        finally:
            parsec.drainer.remove_listener(server)
            uninstall()
    finally:
        _close(sockets)


class _Signals:
    """SIGINT / SIGTERM while serving: the first drains ``parsec`` (``Parsec.drain``, its
    ``shutdown_timeout``), after which :func:`serve` returns; another one during the
    drain ends the process at once, exit code 1, nothing more drained."""

    def __init__(self, parsec: Parsec, loop: asyncio.AbstractEventLoop) -> None:
        self._parsec = parsec
        self._loop = loop
        self._count = 0

    def received(self, signum: int) -> None:
        """A signal handler's body: runs between two bytecodes of the loop's thread."""
        self._count += 1
        name = signal.Signals(signum).name
        if self._count > 1:
            log.warning("%s while draining: exiting now, without draining", name)
            logging.shutdown()
            sys.stderr.flush()
            os._exit(1)
        timeout = self._parsec.options.server.shutdown_timeout
        log.info("%s: draining (at most %gs; again to exit now)", name, timeout)
        self._loop.call_soon_threadsafe(self._parsec.drainer.begin, timeout)


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
