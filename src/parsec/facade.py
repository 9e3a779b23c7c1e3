"""Parsec: the facade an embedder uses.

::

    async with Parsec(Options()) as parsec:
        await parsec.publish("chat:lobby", {"text": "hi"})
        await parsec.run()            # serve HTTP + WebSocket on options.server.addr

or mount ``parsec.asgi_app()`` into a FastAPI / Starlette application and enter
``async with parsec`` in that application's lifespan.

Parsec owns an engine :class:`~parsec.engine.node.Node` and four services, each a
class of its own that Parsec's methods delegate to:

- ``parsec.channels`` (:mod:`parsec.services.channels`): channel lifecycle, Parsec
  tokens, refresh and revocation;
- ``parsec.keys`` (:mod:`parsec.services.keys`): the keyring's operations;
- ``parsec.delivery`` (:mod:`parsec.services.delivery`): sinks, the dead-letter queue,
  ``publish_or_sink``;
- ``parsec.token_broker`` (:mod:`parsec.services.token_broker`): connection tokens for
  the channels a policy grants (its parts: ``token_broker=TokenBrokerSettings(...)`` or
  ``parsec.token_broker.configure(...)``), served over HTTP when
  ``options.token_broker.enabled``.

Serving (sockets, uvicorn, signals) lives in :mod:`parsec.server.serving`.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from parsec.auth.keyring import Key, KeyRing
from parsec.auth.keyring_store import KeyRingStore
from parsec.auth.parsec_tokens import IssuedToken, ParsecClaims, ParsecTokens
from parsec.auth.refresh import MemoryRefreshStore, RefreshStore, RotatedCredentials
from parsec.auth.revocation import FILE_NAME as REVOCATIONS_FILE
from parsec.auth.revocation import PEERS_WAIT, SETTLE, Revocations
from parsec.auth.revocation_store import MemoryRevocationStore, RevocationStore
from parsec.auth.scopes import Scope
from parsec.auth.tokens import TokenIssuer, TokenVerifier
from parsec.backends.factory import Backends, backends_for, operator_nats
from parsec.backends.memory import MemoryBroker, MemoryController, MemoryPresenceManager
from parsec.channels.events import ChannelEventBus
from parsec.channels.manager import Channel, ChannelManager
from parsec.channels.namespaces import ChannelRules
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.codes import ClientError, errors
from parsec.engine.controller import Controller
from parsec.engine.lifecycle import RUN_TRANSITIONS, RunState, advance
from parsec.engine.node import Node, RPCHandler
from parsec.engine.presence import PresenceManager
from parsec.engine.types import StreamPosition
from parsec.errors import ParsecClientError, ParsecError
from parsec.observability.traced_broker import traced_broker
from parsec.observability.tracing import open_tracing
from parsec.options import OIDCOptions, Options
from parsec.services.authority import ParsecAuthority
from parsec.services.channels import ChannelService, Credentials
from parsec.services.delivery import DeliveryService, DeliverySettings, SinkResult
from parsec.services.drain import Drain
from parsec.services.keys import KeyService
from parsec.services.payload import publication_bytes
from parsec.services.telemetry import TELEMETRY_PATH, Telemetry
from parsec.services.token_authn import idp_bearer
from parsec.services.token_broker import TokenBroker, TokenBrokerSettings
from parsec.sinks.base import Message, SinkRegistry
from parsec.sinks.dlq import DLQ, DLQItem
from parsec.sinks.metrics import SinkMetrics
from parsec.sinks.retry import DeliveryOutcome, RetryingSender
from parsec.version import __version__

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from parsec.auth.oidc import OIDCBridge
    from parsec.auth.remote_jwks import RemoteJWKS
    from parsec.backends.nats.connection import NatsUser
    from parsec.observability.metrics import ParsecMetrics
    from parsec.observability.runtime import MetricsService
    from parsec.services.accounts import AccountsService

__all__ = ["Credentials", "Parsec", "ParsecState"]

log = logging.getLogger("parsec")
_B = TypeVar("_B", MemoryBroker, MemoryPresenceManager, MemoryController)


ParsecState = RunState
"""Where a :class:`Parsec` is in its life (the engine's :class:`RunState`): new →
running → closed, only forward."""


_STARTS_ONCE = "an instance starts once (make a new one)"


class Parsec:
    """One Parsec instance: keyring, channel manager, engine node, services, surfaces.

    States (:class:`ParsecState`): new → running (``async with`` or ``start``) →
    closed (``aclose``). It cannot be restarted; ``aclose`` is idempotent. Backends
    passed in one by one are used and not closed; the ones Parsec creates itself it
    closes. ``backends`` (a :class:`~parsec.backends.factory.Backends` bundle) replaces
    the ones ``options.broker.url`` names and is closed with the instance; its
    controller must know the node as ``node_id`` (default: a fresh UUID).

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
        token_broker: TokenBrokerSettings | None = None,
        backends: Backends | None = None,
        node_id: str | None = None,
    ) -> None:
        self.options = options or Options()
        node_id = node_id or str(uuid.uuid4())
        shared = self.options.broker
        self._operator_nats = None if backends else operator_nats(self.options)
        """``[nats]`` when this instance's broker is its operator-mode NATS."""
        self._backends = built = backends or backends_for(
            shared.url,
            key_prefix=shared.key_prefix,
            node_id=node_id,
            pool_size=shared.pool_size,
            pool_timeout=shared.pool_timeout,
            nats_user=self._instance_user(node_id),
        )
        self._state = RunState.NEW
        self._stack = contextlib.AsyncExitStack()
        """What ``aclose`` closes, in reverse order: the backends made here at the
        bottom, then each part ``start`` started (see :meth:`_open`)."""
        self._stack.push_async_callback(self._close_backends)
        self._defaults: list[Broker | PresenceManager | Controller] = []
        """The in-memory backends made here for contracts nothing else fills."""
        self.keys = KeyService.open(
            keyring,
            keyring_store or (None if keyring else built.keyring_store),
            state_dir=self.options.auth.state_dir,
            poll=self.options.auth.keyring_poll,
        )
        self.keyring = self.keys.keyring
        self._init_tokens()
        self.manager = ChannelManager(
            channel_store or built.channel_store, bus=channel_event_bus or built.channel_event_bus
        )
        # "is not None": an empty memory store is falsy (it has a length) yet given
        self.refresh_store: RefreshStore = (
            refresh_store
            if refresh_store is not None
            else built.refresh_store or MemoryRefreshStore()
        )
        self._init_revocations(built, revocations)
        self.node = Node(
            self.options,
            self.verifier,
            rules=ChannelRules.from_options(self.options),
            broker=broker or built.broker or self._default(MemoryBroker()),
            presence=presence or built.presence or self._default(MemoryPresenceManager()),
            controller=controller or built.controller or self._default(MemoryController()),
            authority=ParsecAuthority(self.manager, self.tokens, self.revocations),
            revocations=self.revocations,
            node_id=node_id,
            version=__version__,
        )
        self.revocations.listeners.append(self.node.revocations_changed)
        self.telemetry = Telemetry(self.node, self.options.region)
        """The ``GET /parsec/telemetry`` snapshot (:mod:`parsec.services.telemetry`)."""
        self.tokens.on_issue = self.issuer.on_issue = self.telemetry.tokens.issued
        self.revocations.listeners.append(self.telemetry.tokens.revoked)
        self.tracing = open_tracing(self.options, node_id)
        """Spans over OTLP (``[observability] otlp_endpoint``), else a no-op."""
        if self.tracing.enabled:
            self.node.broker = traced_broker(self.node.broker, self.tracing)
        self.metrics: ParsecMetrics | None = None
        """Prometheus metrics (:mod:`parsec.observability.metrics`); None when
        ``[observability] metrics = false``."""
        self.metrics_service: MetricsService | None = None
        if self.options.observability.metrics:  # prometheus-client loads only then
            from parsec.observability.runtime import observe

            self.metrics_service = observe(self.node, self.options)
            self.metrics = self.metrics_service.metrics
        self.channels = ChannelService(
            self.node,
            self.manager,
            self.tokens,
            self.refresh_store,
            self.revocations,
            oidc=self.oidc,
        )
        self.token_broker = TokenBroker(
            self.issuer,
            self.channels,
            self.revocations,
            self.node.rules,
            self.options.token_broker,
            token_broker,
            idp=None if self.idp_keys is None else idp_bearer(self.verifier),
            user_id_claim=self.options.auth.user_id_claim,
        )
        self.delivery = DeliveryService(
            self.node,
            self.publish,
            self.options,
            dlq=dlq or built.dlq,
            metrics=sink_metrics if sink_metrics is not None else self.metrics,
            settings=delivery,
        )
        self.drainer = Drain(self.node, self.delivery.queue)
        """How this instance stops without dropping anybody (:meth:`drain`)."""
        self.accounts: AccountsService | None = None
        """Accounts and tenancy (``[accounts]``), when configured."""
        if self.options.accounts is not None:
            # SQLAlchemy loads only for a node with accounts
            from parsec.services.accounts import AccountsService
            from parsec.services.accounts_broker import accept_accounts
            from parsec.services.tenancy import Tenants

            self.accounts = AccountsService(
                self.options, tenants=Tenants(self.options, self._tenant)
            )
            self._broker_audit = accept_accounts(self.token_broker, self.accounts)
        self._app: Starlette | None = None

    def _tenant(self, options: Options, **parts: Any) -> Parsec:
        """An org's Parsec (``[accounts]``): it keeps no metrics of its own, its engine
        reports to this instance's (one scrape shows every org, no org label)."""
        tenant = Parsec(options, **parts)
        tenant.node.observer = self.node.observer
        return tenant

    def _instance_user(self, node_id: str) -> NatsUser | None:
        if self._operator_nats is None:
            return None
        # nkeys loads only for a node on an operator-mode NATS
        from parsec.backends.nats import instance

        return instance.user(self._operator_nats, f"parsec {node_id}")

    def _init_tokens(self) -> None:
        auth = self.options.auth
        self.idp_keys: RemoteJWKS | None = None
        """The identity provider's signing keys (``auth.jwks_url``), when configured."""
        if auth.jwks_url is not None:
            # httpx loads only for a node that verifies an identity provider's tokens
            from parsec.auth.remote_jwks import RemoteJWKS

            self.idp_keys = RemoteJWKS(auth.jwks_url)
        self.oidc: OIDCBridge | None = None if auth.oidc is None else _oidc_bridge(auth.oidc)
        """The OIDC bridge of the management API (``[auth.oidc]``), when configured."""
        self.verifier = TokenVerifier(
            self.keyring,
            hmac_secret=auth.token_hmac_secret,
            audience=auth.token_audience,
            issuer=auth.token_issuer,
            signing_keys=self.idp_keys,
            user_id_claim=auth.user_id_claim,
        )
        self.issuer = TokenIssuer(
            self.keyring, audience=auth.token_audience, issuer=auth.token_issuer
        )
        self.tokens = ParsecTokens(self.keyring)

    def _init_revocations(self, built: Backends, given: RevocationStore | None) -> None:
        store: RevocationStore = (
            given if given is not None else built.revocations or MemoryRevocationStore()
        )
        state_dir = self.options.auth.state_dir
        cache = None if state_dir is None else Path(state_dir) / REVOCATIONS_FILE
        self.revocations = Revocations(store, cache=cache)
        # on NATS each node keeps revocations in its memory: a starting node waits to
        # hear of the others, and asks them for theirs; on Redis, a node starting on a
        # store that lost its data waits for the others to write theirs back
        built_store = given is None
        self._peers_wait = PEERS_WAIT if built_store and built.persistence == "nats" else 0.0
        self._settle = SETTLE if built_store and built.persistence == "redis" else 0.0

    def _default(self, backend: _B) -> _B:
        self._defaults.append(backend)
        return backend

    # --- lifecycle --------------------------------------------------------------

    @property
    def state(self) -> ParsecState:
        return self._state

    async def start(self) -> None:
        """Start the parts, in order: the tracing (``observability.otlp_endpoint``; a
        no-op without), the identity provider's keys (``auth.jwks_url``;
        a provider that is down is logged, not fatal), the OIDC bridge (``auth.oidc``:
        a provider that cannot be discovered stops the start), the keys (the shared
        keyring, or the file watcher), the instance's NATS account (on an
        operator-mode NATS: ``parsec.backends.nats.instance``), the node, the
        revocations, the channel manager, the channel service, background delivery,
        the accounts (``[accounts]``: the database opened and migrated; a newer schema
        stops the start).

        When a part fails to start, the parts started before it (and the failing part,
        which may be half-way started) are closed in reverse order, the backends Parsec
        made are closed, the instance is closed, and the exception propagates.

        Raises:
            RuntimeError: the instance is not new (started before, or closed).
        """
        self._state = advance(
            "Parsec", self._state, RunState.RUNNING, RUN_TRANSITIONS, hint=_STARTS_ONCE
        )
        try:
            await self._open(self.tracing.start, self.tracing.aclose)  # closed last: flushes
            if self.idp_keys is not None:
                await self._open(self.idp_keys.start, self.idp_keys.aclose)
            if self.oidc is not None:
                await self._open(self.oidc.start, self.oidc.aclose)
            await self._open(self.keys.start, self.keys.aclose)
            if self._operator_nats is not None:  # before the broker connects with it
                from parsec.backends.nats import instance

                await instance.provision(self._operator_nats)
            await self._open(self.node.start, self.node.aclose)
            if self.metrics_service is not None:
                await self._open(self.metrics_service.start, self.metrics_service.aclose)
            await self._open(self._start_revocations, self.revocations.aclose)
            await self._open(self.manager.start, self.manager.aclose)
            await self._open(self.channels.start, self.channels.aclose)
            await self._open(self.delivery.start, self.delivery.aclose)
            if self.accounts is not None:
                await self._open(self.accounts.start, self.accounts.aclose)
                await self._open(self._broker_audit.start, self._broker_audit.drain)
        except BaseException:
            await self.aclose()
            raise

    async def _open(
        self, start: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]]
    ) -> None:
        """Register ``close`` (idempotent, safe on a part that never started), then run
        ``start``: a part that fails half-way started is closed too. Raises RuntimeError
        when ``aclose`` ran meanwhile (it closed what was registered)."""
        if self._state is RunState.CLOSED:
            raise RuntimeError("the Parsec instance was closed while it was starting")
        self._stack.push_async_callback(_logged, close)
        await start()

    async def _start_revocations(self) -> None:
        await self.revocations.start(
            self.node.controller, peers_wait=self._peers_wait, settle=self._settle
        )

    @property
    def draining(self) -> bool:
        """True from the moment :meth:`drain` began (``/healthz`` answers 503)."""
        return self.drainer.draining

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop without dropping anybody, within ``timeout`` seconds (default
        ``options.server.shutdown_timeout``): ``/healthz`` turns 503, the server
        :meth:`run` started refuses new connections, every client is disconnected with
        3001 (reconnect), in-flight HTTP calls end, then the background sink queue
        drains. Past the deadline what is left is cut, with a WARNING. Runs once (a
        second call waits for the first); :meth:`aclose` drains first. See
        :mod:`parsec.services.drain`."""
        if timeout is None:
            timeout = self.options.server.shutdown_timeout
        await self.drainer.run(timeout)

    async def aclose(self) -> None:
        """Drain (:meth:`drain`: healthz 503, no new connections, every client
        disconnected with 3001, in-flight calls and the sink queue finished), then
        release backends: every part started is closed, in reverse order; a part that
        fails to close is logged and the others still close. Idempotent; the instance
        cannot be started again."""
        if self._state is RunState.CLOSED:
            return
        if self._state is RunState.RUNNING:
            await self.drain()
            if self.state is RunState.CLOSED:  # a concurrent aclose closed it meanwhile
                return
        # a running server exits on its next tick
        self._state = advance("Parsec", self._state, RunState.CLOSED, RUN_TRANSITIONS)
        await self._stack.aclose()

    async def _close_backends(self) -> None:
        defaults, self._defaults = self._defaults, []
        for backend in reversed(defaults):
            await _logged(backend.aclose)
        await self._backends.aclose()

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

    async def run(
        self, ready: Callable[[], None] | None = None, *, reuse_port: bool = False
    ) -> None:
        """Serve on ``options.server.addr`` until SIGINT / SIGTERM or ``aclose``: the
        first signal drains (:meth:`drain`) and then ``run`` returns; a second one during
        the drain ends the process at once (exit code 1).

        ``ready`` is called once the server accepts connections. With ``reuse_port``
        the listening socket is bound with SO_REUSEPORT, so several processes (the
        workers of ``parsec serve --workers N``) share the port and the kernel spreads
        connections among them. SIGHUP reloads the keyring while serving. Raises
        :class:`parsec.server.listen.ListenError` (an OSError naming the address) when
        the address cannot be listened on. See :mod:`parsec.server.serving`."""
        from parsec.server.serving import serve

        await serve(self, ready, reuse_port=reuse_port)

    # --- publishing -------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> StreamPosition:
        """Publish ``data`` (any JSON-encodable value, or bytes holding JSON) to every
        subscriber of ``channel``. Returns the stream position when the channel keeps
        history. A managed (``public:`` / ``private:``) channel must be open: publishing
        counts as activity. Raises ParsecError: PARSEC_CHANNEL_INVALID (bad name or
        unknown namespace), PARSEC_CHANNEL_NOT_FOUND, PARSEC_CHANNEL_CLOSED,
        PARSEC_INVALID_ARGUMENT (bytes that are not JSON; a value JSON cannot encode,
        raised as :class:`~parsec.services.payload.UnencodableData`, also a TypeError),
        PARSEC_PAYLOAD_TOO_LARGE (over the channel's ``max_publication_size``; nothing
        is stored), PARSEC_RATE_LIMITED (the node's ``publish_gate`` refused: an org
        over its publications-per-second quota)."""
        raw = publication_bytes(data)
        try:
            return await self.node.publish(channel, raw)
        except ParsecClientError as exc:
            raise exc.parsec_error from None
        except errors.PUBLICATION_TOO_LARGE as exc:
            raise ParsecError("PARSEC_PAYLOAD_TOO_LARGE", exc.message) from None
        except errors.TOO_MANY_REQUESTS as exc:
            raise ParsecError("PARSEC_RATE_LIMITED", exc.message) from None
        except ClientError as exc:
            raise ParsecError("PARSEC_CHANNEL_INVALID", f"{channel!r}: {exc.message}") from None

    async def publish_or_sink(
        self,
        channel: str,
        data: Any,
        sink: str,
        recipient: object,
        message: Message,
        *,
        wait: bool = True,
    ) -> SinkResult:
        """Publish if anyone listens, else deliver through a sink: see
        :meth:`parsec.services.delivery.DeliveryService.publish_or_sink`."""
        return await self.delivery.publish_or_sink(
            channel, data, sink, recipient, message, wait=wait
        )

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
            **self.delivery.manifest(),
            "metrics_enabled": False,
            "tracing_enabled": False,
            "admin_ui_enabled": False,
            "auth_oidc_enabled": self.oidc is not None,
            "auth_oidc_issuer": "" if self.oidc is None else self.oidc.issuer,
            "token_broker_enabled": self.options.token_broker.enabled,
            "revocation_store_enabled": True,
            "delta_compression": "unsupported",
            "telemetry": TELEMETRY_PATH,
            "region": self.options.region,
        }

    def rpc(self, method: str) -> Callable[[RPCHandler], RPCHandler]:
        """Register the handler of a client ``rpc`` method (decorator)."""

        def register(handler: RPCHandler) -> RPCHandler:
            self.node.rpc_handlers[method] = handler
            return handler

        return register

    # --- channels and tokens: parsec.channels -----------------------------------

    async def open_public(self, name: str, ttl: float | None = None) -> Channel:
        """Open a public channel, or reopen a closed one (idempotent)."""
        return await self.channels.open_public(name, ttl)

    async def create_private(
        self, subject: str, name: str, ttl: float | None = None, scopes: Sequence[Scope] = ()
    ) -> Credentials:
        """Create a private channel and mint its first tokens for ``subject``."""
        return await self.channels.create_private(subject, name, ttl, scopes)

    async def get_channel(self, name: str) -> Channel:
        return await self.channels.get_channel(name)

    async def list_channels(self) -> list[Channel]:
        return await self.channels.list_channels()

    async def delete_channel(self, name: str) -> None:
        """Delete a channel; its subscribers, on every node, are unsubscribed (2000)."""
        await self.channels.delete_channel(name)

    async def presence_count(self, name: str) -> int:
        """How many clients are subscribed to a channel (cluster-wide presence)."""
        return await self.channels.presence_count(name)

    async def refresh_access(self, refresh_token: str) -> RotatedCredentials:
        """Redeem a refresh token (see :meth:`ChannelService.refresh_access`)."""
        try:
            rotated = await self.channels.refresh_access(refresh_token)
        except Exception:
            self._count("refresh_rotations", "error")
            raise
        self._count("refresh_rotations", "ok")
        return rotated

    def issue_mgmt(
        self, subject: str, ttl: float | None = None, scopes: Sequence[Scope] | None = None
    ) -> IssuedToken:
        """A management token (default: full operator scopes, 24 h, clamped to 1 h .. 7 d)."""
        return self.channels.issue_mgmt(subject, ttl, scopes)

    async def authenticate_mgmt(self, bearer: str) -> ParsecClaims:
        """The claims of a valid, unrevoked management token."""
        return await self.channels.authenticate_mgmt(bearer)

    async def revoke_token(self, jti: str, user: str = "", reason: str = "") -> None:
        """Refuse the token whose ``jti`` this is, whatever its kind, for 7 days."""
        await self.channels.revoke_token(jti, user, reason)

    async def revoke_user(self, user: str, reason: str = "") -> None:
        """Refuse every token of ``user`` issued until now, for 7 days."""
        await self.channels.revoke_user(user, reason)

    # --- keys: parsec.keys ------------------------------------------------------

    def list_keys(self) -> list[Key]:
        return self.keys.list_keys()

    async def generate_key(self, alg: str = "HS256") -> Key:
        """A new verify-only key (promote it to sign with it)."""
        key = await self.keys.generate_key(alg)
        self._count("key_rotations", "generate")
        return key

    async def promote_key(self, kid: str) -> None:
        """Make ``kid`` the signing key; the old active key stays verify-only."""
        await self.keys.promote_key(kid)
        self._count("key_rotations", "promote")

    async def retire_key(self, kid: str) -> None:
        """Retire a key: tokens it signed are refused from now on."""
        await self.keys.retire_key(kid)
        self._count("key_rotations", "retire")

    def _count(self, counter: str, label: str) -> None:
        """Count an event in the metrics, when there are metrics."""
        if self.metrics is not None:
            self.metrics.count(counter, label)

    async def reload_keys(self) -> None:
        """Re-read the keyring from its store (after another process changed it)."""
        await self.keys.reload_keys()

    # --- delivery: parsec.delivery ----------------------------------------------

    @property
    def sinks(self) -> SinkRegistry:
        return self.delivery.sinks

    @property
    def dlq(self) -> DLQ:
        return self.delivery.dlq

    @property
    def sink_sender(self) -> RetryingSender:
        return self.delivery.sink_sender

    async def dlq_list(self, sink: str = "", limit: int = 50) -> list[DLQItem]:
        """Up to ``limit`` dead letters of ``sink`` (``""``: every sink), newest first."""
        return await self.delivery.dlq_list(sink, limit)

    async def dlq_count(self, sink: str = "") -> int:
        """How many dead letters ``sink`` (``""``: every sink) holds."""
        return await self.delivery.dlq_count(sink)

    async def dlq_discard(self, id: str) -> bool:
        """Remove dead letter ``id``; False when there is none (idempotent)."""
        return await self.delivery.dlq_discard(id)

    async def dlq_replay(self, id: str) -> DeliveryOutcome:
        """Send dead letter ``id`` again through its sink, with retries, and wait."""
        return await self.delivery.dlq_replay(id)


def _oidc_bridge(options: OIDCOptions) -> OIDCBridge:
    """The OIDC bridge ``[auth.oidc]`` configures."""
    # httpx loads only for a node that accepts an identity provider's tokens
    from parsec.auth.oidc import Grant, OIDCBridge

    grants = [
        Grant(grant.if_group, Scope(grant.scope, grant.verbs, deny=grant.deny))
        for grant in options.grants
    ]
    return OIDCBridge(
        options.issuer,
        options.audience,
        grants,
        subject_claim=options.subject_claim,
        scopes_claim=options.scopes_claim,
    )


async def _logged(close: Callable[[], Awaitable[None]]) -> None:
    """Run ``close``; a failure is logged, not raised, so closing goes on."""
    try:
        await close()
    except Exception:
        log.exception("closing %r failed", close)
