"""Parsec: the facade an embedder uses.

::

    async with Parsec(Options()) as parsec:
        await parsec.publish("chat:lobby", {"text": "hi"})
        await parsec.run()            # serve HTTP + WebSocket on options.server.addr

or mount ``parsec.asgi_app()`` into a FastAPI / Starlette application and enter
``async with parsec`` in that application's lifespan.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette

from parsec.auth.keyring import KeyRing
from parsec.auth.tokens import TokenIssuer, TokenVerifier
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller
from parsec.engine.node import Node, RPCHandler
from parsec.engine.presence import PresenceManager
from parsec.engine.protocol import MalformedCommand, compact_json
from parsec.engine.types import StreamPosition
from parsec.options import Options
from parsec.server.app import build_app

__all__ = ["Parsec"]

log = logging.getLogger("parsec")


class Parsec:
    """One Parsec instance: keyring, engine node and HTTP surfaces.

    States: new → running (``async with`` or ``start``) → closed (``aclose``). It
    cannot be restarted; ``aclose`` is idempotent. Backends passed in are used and
    not closed; the ones Parsec creates itself it closes.
    """

    def __init__(
        self,
        options: Options | None = None,
        *,
        broker: Broker | None = None,
        presence: PresenceManager | None = None,
        controller: Controller | None = None,
        keyring: KeyRing | None = None,
    ) -> None:
        self.options = options or Options()
        self.keyring = keyring or KeyRing.open(self.options.auth.state_dir)
        auth = self.options.auth
        self.verifier = TokenVerifier(
            self.keyring,
            hmac_secret=auth.token_hmac_secret,
            audience=auth.token_audience,
            issuer=auth.token_issuer,
        )
        self.issuer = TokenIssuer(self.keyring)
        self.node = Node(
            self.options, self.verifier, broker=broker, presence=presence, controller=controller
        )
        self._app: Starlette | None = None
        self._server: _Server | None = None

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        await self.node.start()

    async def aclose(self) -> None:
        """Stop serving, disconnect every client (3001) and release backends."""
        if self._server is not None:
            self._server.should_exit = True
        await self.node.aclose()

    async def __aenter__(self) -> Parsec:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- surfaces ---------------------------------------------------------------

    def asgi_app(self) -> Starlette:
        """The ASGI application: WebSocket, server API and health routes."""
        if self._app is None:
            self._app = build_app(self.node, self.options)
        return self._app

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve on ``options.server.addr`` until SIGINT / SIGTERM or ``aclose``.

        ``ready`` is called once the server accepts connections."""
        server_opts = self.options.server
        config = uvicorn.Config(
            self.asgi_app(),
            host=server_opts.host,
            port=server_opts.port,
            ws_max_size=server_opts.max_frame_size,
            ws_ping_interval=None,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        server = _Server(config, ready)
        self._server = server
        try:
            await server.serve()
        finally:
            self._server = None

    # --- publishing -------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> StreamPosition:
        """Publish ``data`` (any JSON-encodable value, or bytes holding JSON) to every
        subscriber of ``channel``. Returns the stream position when the channel keeps
        history. Raises ClientError 102 / 107 for unknown or invalid channels and
        ValueError for bytes that are not JSON."""
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                raw = bytes(compact_json(bytes(data)))
            except MalformedCommand as exc:
                raise ValueError(str(exc)) from None
        else:
            raw = msgspec.json.encode(data)
        return await self.node.publish(channel, raw)

    def rpc(self, method: str) -> Callable[[RPCHandler], RPCHandler]:
        """Register the handler of a client ``rpc`` method (decorator)."""

        def register(handler: RPCHandler) -> RPCHandler:
            self.node.rpc_handlers[method] = handler
            return handler

        return register


class _Server(uvicorn.Server):
    """uvicorn's server, telling its caller once it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready is not None and self.started:
            self._ready()
