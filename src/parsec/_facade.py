"""Parsec: the facade an embedder uses.

::

    async with Parsec(Options()) as parsec:
        await parsec.publish("chat:lobby", {"text": "hi"})
        await parsec.run()            # serve HTTP + WebSocket on options.server.addr

or mount ``parsec.asgi_app()`` into a FastAPI / Starlette application and enter
``async with parsec`` in that application's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from parsec._authority import ParsecAuthority
from parsec._backends import backends_for
from parsec._management import Credentials, ManagementMixin
from parsec._sinking import DeliverySettings, SinkingMixin
from parsec._version import __version__
from parsec.auth.keyring import KeyRing
from parsec.auth.keyring_store import KeyRingStore
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.refresh import MemoryRefreshStore, RefreshStore
from parsec.auth.revocation import FILE_NAME as REVOCATIONS_FILE
from parsec.auth.revocation import PEERS_WAIT, SETTLE, Revocations
from parsec.auth.revocation_store import MemoryRevocationStore, RevocationStore
from parsec.auth.shared_keyring import SharedKeyRing
from parsec.auth.tokens import TokenIssuer, TokenVerifier
from parsec.auth.watcher import KeyRingWatcher, install_sighup, on_sighup
from parsec.backends.memory import MemoryBroker, MemoryController, MemoryPresenceManager
from parsec.channels.events import ChannelEventBus, EventSubscription
from parsec.channels.manager import ChannelManager
from parsec.channels.namespaces import ChannelRules
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.codes import ClientError, errors
from parsec.engine.controller import Controller
from parsec.engine.node import Node, RPCHandler
from parsec.engine.presence import PresenceManager
from parsec.engine.protocol import MalformedCommand, compact_json
from parsec.engine.types import StreamPosition
from parsec.errors import ParsecClientError, ParsecError
from parsec.options import Options
from parsec.server.listen import BACKLOG, listen
from parsec.sinks.dlq import DLQ
from parsec.sinks.metrics import SinkMetrics
from parsec.transports.websocket import WEBSOCKET_PATH

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from parsec.server.runner import ReadyServer

__all__ = ["Credentials", "Parsec"]

log = logging.getLogger("parsec")
_B = TypeVar("_B", MemoryBroker, MemoryPresenceManager, MemoryController)


class Parsec(ManagementMixin, SinkingMixin):
    """One Parsec instance: keyring, channel manager, engine node and HTTP surfaces.

    States: new → running (``async with`` or ``start``) → closed (``aclose``). It
    cannot be restarted; ``aclose`` is idempotent. Backends passed in are used and
    not closed; the ones Parsec creates itself it closes.

    The keyring: ``keyring`` if given, else ``<state_dir>/keyring.json``. It is shared
    through ``keyring_store`` if given, else, when no ``keyring`` is given, through the
    broker's store (Redis): see ``parsec.auth.shared_keyring``.

    Revocations (``self.revocations``) live in ``revocations`` (a RevocationStore) if
    given, else in the broker's store (Redis), else in this process; each node also
    keeps them in ``<state_dir>/revocations.json``: see ``parsec.auth.revocation``.
    """

    def __init__(
        self,
        options: Options | None = None,
        *,
        broker: Broker | None = None,
        presence: PresenceManager | None = None,
        controller: Controller | None = None,
        keyring: KeyRing | None = None,
        keyring_store: KeyRingStore | None = None,
        channel_store: ChannelStore | None = None,
        channel_event_bus: ChannelEventBus | None = None,
        refresh_store: RefreshStore | None = None,
        revocations: RevocationStore | None = None,
        dlq: DLQ | None = None,
        sink_metrics: SinkMetrics | None = None,
        delivery: DeliverySettings | None = None,
    ) -> None:
        self.options = options or Options()
        node_id = str(uuid.uuid4())
        shared = self.options.broker
        self._backends = backends_for(
            shared.url,
            key_prefix=shared.key_prefix,
            node_id=node_id,
            pool_size=shared.pool_size,
            pool_timeout=shared.pool_timeout,
        )
        built = self._backends
        # -- keyring: local, or kept in step with a shared store --
        store = keyring_store or (None if keyring else built.keyring_store)
        state_dir = self.options.auth.state_dir
        if keyring is None:
            shared_only = store is not None and state_dir is None
            keyring = KeyRing.in_memory() if shared_only else KeyRing.open(state_dir)
        self.keyring = keyring
        self._shared_keyring = None if store is None else SharedKeyRing(keyring, store)
        auth = self.options.auth
        self.verifier = TokenVerifier(
            self.keyring,
            hmac_secret=auth.token_hmac_secret,
            audience=auth.token_audience,
            issuer=auth.token_issuer,
        )
        self.issuer = TokenIssuer(
            self.keyring, audience=auth.token_audience, issuer=auth.token_issuer
        )
        self.tokens = ParsecTokens(self.keyring)
        self.manager = ChannelManager(
            channel_store or built.channel_store, bus=channel_event_bus or built.channel_event_bus
        )
        self.refresh_store: RefreshStore = (
            refresh_store or built.refresh_store or MemoryRefreshStore()
        )
        revocation_store: RevocationStore = (
            revocations or built.revocations or MemoryRevocationStore()
        )
        cache = None if state_dir is None else Path(state_dir) / REVOCATIONS_FILE
        self.revocations = Revocations(revocation_store, cache=cache)
        # on NATS each node keeps revocations in its memory: a starting node waits to
        # hear of the others, and asks them for theirs; on Redis, a node starting on a
        # store that lost its data waits for the others to write theirs back
        built_store = revocations is None
        self._peers_wait = PEERS_WAIT if built_store and built.persistence == "nats" else 0.0
        self._settle = SETTLE if built_store and built.persistence == "redis" else 0.0
        authority = ParsecAuthority(self.manager, self.tokens, self.revocations)
        self._defaults: list[Broker | PresenceManager | Controller] = []
        """The in-memory backends made here for contracts nothing else fills."""
        self.node = Node(
            self.options,
            self.verifier,
            rules=ChannelRules.from_options(self.options),
            broker=broker or built.broker or self._default(MemoryBroker()),
            presence=presence or built.presence or self._default(MemoryPresenceManager()),
            controller=controller or built.controller or self._default(MemoryController()),
            authority=authority,
            revocations=self.revocations,
            node_id=node_id,
            version=__version__,
        )
        self.revocations.listeners.append(self.node.revocations_changed)
        dlq = dlq or built.dlq
        self._app: Starlette | None = None
        self._server: ReadyServer | None = None
        self._bridge: asyncio.Task[None] | None = None
        self._watcher: KeyRingWatcher | None = None
        self._init_sinking(dlq=dlq, metrics=sink_metrics, delivery=delivery)

    def _default(self, backend: _B) -> _B:
        self._defaults.append(backend)
        return backend

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        if self._shared_keyring is not None:
            try:
                await self._shared_keyring.start()
            except BaseException:
                await self.aclose()
                raise
        await self.node.start()
        try:
            await self.revocations.start(
                self.node.controller, peers_wait=self._peers_wait, settle=self._settle
            )
        except BaseException:
            await self.aclose()
            raise
        await self.manager.start()
        # subscribed now, not when the task first runs: no deletion can slip between
        self._bridge = asyncio.create_task(self._follow_lifecycle(self.manager.events()))
        poll = self.options.auth.keyring_poll
        if self._shared_keyring is None and self.keyring.path is not None and poll > 0:
            self._watcher = KeyRingWatcher(self.keyring, interval=poll)
            await self._watcher.start()
        self._start_sinking()

    async def aclose(self) -> None:
        """Stop serving, disconnect every client (3001) and release backends."""
        if self._server is not None:
            self._server.should_exit = True
        if self._bridge is not None:
            self._bridge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bridge
            self._bridge = None
        if self._watcher is not None:
            await self._watcher.aclose()
        if self._shared_keyring is not None:
            await self._shared_keyring.aclose()
        await self.revocations.aclose()
        await self._close_sinking()
        await self.manager.aclose()
        await self.node.aclose()
        defaults, self._defaults = self._defaults, []
        for backend in reversed(defaults):
            try:
                await backend.aclose()
            except Exception:
                log.exception("closing %r failed", backend)
        await self._backends.aclose()

    async def _follow_lifecycle(self, events: EventSubscription) -> None:
        """A deleted channel (DeleteChannel or the sweeper, on this node or another)
        loses this node's subscribers."""
        async for event in events:
            if event.kind == "deleted":
                try:
                    await self.node.unsubscribe_channel(event.name)
                except Exception:
                    log.exception("unsubscribing the subscribers of %r failed", event.name)

    async def __aenter__(self) -> Parsec:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- surfaces ---------------------------------------------------------------

    def asgi_app(self) -> Starlette:
        """The ASGI application: WebSocket, server API and health routes."""
        if self._app is None:
            # the web stack (FastAPI, pydantic) loads when an app is first asked for
            from parsec.server.app import build_app

            self._app = build_app(self)
        return self._app

    def _http_protocol(self) -> type[asyncio.Protocol]:
        """uvicorn's per-connection protocol, enforcing the request head limits
        (:mod:`parsec.server.protocol`): with ``native_websocket`` it also hands
        WebSocket upgrades of the client path to the native transport."""
        from parsec.server.protocol import http_protocol
        from parsec.transports import native

        if not self.options.server.native_websocket:
            return http_protocol()
        path = WEBSOCKET_PATH
        return http_protocol(path, native.protocol_factory(self.node, path))

    async def run(
        self, ready: Callable[[], None] | None = None, *, reuse_port: bool = False
    ) -> None:
        """Serve on ``options.server.addr`` until SIGINT / SIGTERM or ``aclose``.

        ``ready`` is called once the server accepts connections. With ``reuse_port``
        the listening socket is bound with SO_REUSEPORT, so several processes (the
        workers of ``parsec serve --workers N``) share the port and the kernel spreads
        connections among them. Raises :class:`parsec.server.listen.ListenError` (an
        OSError naming the address) when the address cannot be listened on."""
        import uvicorn

        from parsec.server.runner import ReadyServer

        server_opts = self.options.server
        sockets = listen(server_opts.host, server_opts.port, reuse_port=reuse_port)
        config = uvicorn.Config(
            self.asgi_app(),
            host=server_opts.host,
            port=server_opts.port,
            http=self._http_protocol(),
            ws_max_size=server_opts.max_frame_size,
            ws_ping_interval=None,
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=BACKLOG,
        )
        server = ReadyServer(config, ready)
        self._server = server
        uninstall = _reload_on_sighup(self.keyring, self._shared_keyring)
        try:
            await server.serve(sockets=sockets)
        finally:
            uninstall()
            self._server = None
            for sock in sockets:
                sock.close()

    # --- publishing -------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> StreamPosition:
        """Publish ``data`` (any JSON-encodable value, or bytes holding JSON) to every
        subscriber of ``channel``. Returns the stream position when the channel keeps
        history. A managed (``public:`` / ``private:``) channel must be open: publishing
        counts as activity. Raises ParsecError: PARSEC_CHANNEL_INVALID (bad name or
        unknown namespace), PARSEC_CHANNEL_NOT_FOUND, PARSEC_CHANNEL_CLOSED,
        PARSEC_INVALID_ARGUMENT (bytes that are not JSON), PARSEC_PAYLOAD_TOO_LARGE
        (over the channel's ``max_publication_size``; nothing is stored)."""
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                raw = bytes(compact_json(bytes(data)))
            except MalformedCommand as exc:
                raise ParsecError("PARSEC_INVALID_ARGUMENT", str(exc)) from None
        else:
            raw = msgspec.json.encode(data)
        try:
            return await self.node.publish(channel, raw)
        except ParsecClientError as exc:
            raise exc.parsec_error from None
        except errors.PUBLICATION_TOO_LARGE as exc:
            raise ParsecError("PARSEC_PAYLOAD_TOO_LARGE", exc.message) from None
        except ClientError as exc:
            raise ParsecError("PARSEC_CHANNEL_INVALID", f"{channel!r}: {exc.message}") from None

    def manifest(self) -> dict[str, object]:
        """What this instance is and supports (the ``parsec.manifest`` payload)."""
        return {
            "service": "parsec",
            "version": __version__,
            "python_version": platform.python_version(),
            "surfaces": ["cli", "twirp", "websocket", "centrifugo_api"],
            "transports": ["websocket"],
            "visibilities": ["public", "private"],
            "max_private_ttl": "1h0m0s",
            "key_rotation": "supported",
            "active_key_id": self.keyring.active.id,
            "persistence": self._backends.persistence,
            "scope_grammar": "visibility:segment(.segment)*[.*][.**]",
            "supported_verbs": ["subscribe", "publish", "manage"],
            "deny_supported": True,
            "scope_precedence": "deny-wins",
            **self._sinking_manifest(),
            "metrics_enabled": False,
            "tracing_enabled": False,
            "admin_ui_enabled": False,
            "auth_oidc_enabled": False,
            "token_broker_enabled": False,
            "revocation_store_enabled": True,
            "delta_compression": "unsupported",
        }

    def rpc(self, method: str) -> Callable[[RPCHandler], RPCHandler]:
        """Register the handler of a client ``rpc`` method (decorator)."""

        def register(handler: RPCHandler) -> RPCHandler:
            self.node.rpc_handlers[method] = handler
            return handler

        return register


def _reload_on_sighup(keyring: KeyRing, shared: SharedKeyRing | None) -> Callable[[], None]:
    """SIGHUP reloads the keyring while serving, from its shared store when it has one
    (main thread on Unix only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return lambda: None
    if shared is not None:
        return on_sighup(asyncio.get_running_loop(), shared.check_soon)
    return install_sighup(keyring, asyncio.get_running_loop())
