"""Backends by URL: what one node is built on.

``memory://`` (the default) leaves every contract to Parsec's in-memory defaults.
``redis://`` (and ``rediss://``, ``unix://``, ``redis+sentinel://``,
``redis+cluster://``) puts every shared contract in that Redis, under one key prefix,
so the processes that share it act as one server: broker and presence, the
node-to-node controller, the channel registry and its lifecycle events, refresh
rotation, revocations, the dead-letter queue and the keyring. The Redis modules are
imported only when a Redis URL is used.
``nats://`` (and ``tls://``) puts the broker and the controller on NATS, without
history, under the same prefix as a subject prefix; the other contracts stay in each
node's memory (revocations too, though the controller carries them to every node: see
``parsec.auth.revocation``). The NATS modules are imported only when a NATS URL is used.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from parsec.auth.keyring_store import KeyRingStore
from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation_store import RevocationStore
from parsec.backends.capabilities import NATS_SCHEMES
from parsec.channels.events import ChannelEventBus
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller
from parsec.engine.presence import PresenceManager
from parsec.errors import ParsecError
from parsec.sinks.dlq import DLQ

__all__ = ["Backends", "backends_for"]

log = logging.getLogger("parsec")

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")


@dataclass
class Backends:
    """One node's backends; None leaves a contract to the in-memory default."""

    persistence: str = "in-memory"
    broker: Broker | None = None
    presence: PresenceManager | None = None
    controller: Controller | None = None
    channel_store: ChannelStore | None = None
    channel_event_bus: ChannelEventBus | None = None
    refresh_store: RefreshStore | None = None
    revocations: RevocationStore | None = None
    dlq: DLQ | None = None
    keyring_store: KeyRingStore | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close what was built here, users of the shared connection first. Idempotent."""
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing a backend failed")


def backends_for(url: str, *, key_prefix: str, node_id: str) -> Backends:
    """The backends ``url`` names. Raises ParsecError PARSEC_INVALID_ARGUMENT for an
    unknown scheme or a malformed URL."""
    if url in ("", "memory://"):
        return Backends()
    if url.startswith(NATS_SCHEMES):
        return _nats(url, key_prefix, node_id)
    if not url.startswith(_REDIS_SCHEMES):
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"unknown broker URL scheme in {url.split('://')[0]!r}: "
            "use memory://, redis:// or nats://",
        )
    return _redis(url, key_prefix, node_id)


def _redis(url: str, key_prefix: str, node_id: str) -> Backends:
    try:
        from parsec.backends.redis import from_url
    except ImportError as exc:
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"a Redis broker needs redis-py ({exc}): pip install 'parsec-realtime[redis]'",
        ) from None
    from parsec.backends.redis.controller import RedisController
    from parsec.backends.redis.dlq import RedisDLQ
    from parsec.backends.redis.events import RedisChannelEventBus
    from parsec.backends.redis.keyring import RedisKeyRingStore
    from parsec.backends.redis.stores import (
        RedisChannelStore,
        RedisRefreshStore,
        RedisRevocationStore,
    )

    core = from_url(url, key_prefix=key_prefix)
    client = core.broker.client
    controller = RedisController(client, node_id, prefix=key_prefix)
    bus = RedisChannelEventBus(client, node_id, prefix=key_prefix)
    keyring_store = RedisKeyRingStore(client, prefix=key_prefix)
    backends = Backends(
        persistence="redis",
        broker=core.broker,
        presence=core.presence,
        controller=controller,
        channel_store=RedisChannelStore(client, prefix=key_prefix),
        channel_event_bus=bus,
        refresh_store=RedisRefreshStore(client, prefix=key_prefix),
        revocations=RedisRevocationStore(client, prefix=key_prefix),
        dlq=RedisDLQ(client, prefix=key_prefix),
        keyring_store=keyring_store,
    )
    # the broker and presence close the shared client: they go last
    backends._closers = [keyring_store.aclose, controller.aclose, bus.aclose]
    backends._closers += [core.presence.aclose, core.broker.aclose]
    return backends


# --- NATS: fan-out and node-to-node commands; everything else stays in memory -------


def _nats(url: str, subject_prefix: str, node_id: str) -> Backends:
    """``nats://`` / ``tls://``: the broker and the controller on NATS (no history);
    presence, the channel registry, refresh rotation, revocations and the DLQ stay in
    each node's memory (revocations travel to the other nodes over the controller;
    docs/scaling.md says what that means for a cluster)."""
    try:
        from parsec.backends.nats import from_url
    except ImportError as exc:
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"a nats:// broker needs nats-py ({exc}): pip install 'parsec-realtime[nats]'",
        ) from None
    core = from_url(url, node_id=node_id, subject_prefix=subject_prefix)
    backends = Backends(persistence="nats", broker=core.broker, controller=core.controller)
    # both hold the shared connection; the last to close closes it
    backends._closers = [core.controller.aclose, core.broker.aclose]
    return backends
