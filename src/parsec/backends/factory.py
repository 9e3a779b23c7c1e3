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

The backends start while their server is down and reconnect in the background.
:func:`check_reachable` is the bounded check a caller makes first when an unreachable
server at start should be an error (``parsec serve`` does).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

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
from parsec.options import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT, NatsAccountsOptions, Options
from parsec.sinks.dlq import DLQ

if TYPE_CHECKING:
    from parsec.backends.nats.connection import NatsConnection, NatsUser

__all__ = [
    "REACH_TIMEOUT",
    "Backends",
    "BrokerUnreachable",
    "backends_for",
    "check_reachable",
    "nats_backends_on",
    "operator_nats",
]

log = logging.getLogger("parsec")

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
REACH_TIMEOUT: Final = 5.0
"""Seconds :func:`check_reachable` waits for the broker's answer."""


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


def backends_for(
    url: str,
    *,
    key_prefix: str,
    node_id: str,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
    nats_user: NatsUser | None = None,
) -> Backends:
    """The backends ``url`` names; a Redis client's pool has ``pool_size`` connections
    for commands and makes them wait up to ``pool_timeout`` seconds for a free one; a
    NATS connection authenticates as ``nats_user`` when given (operator mode).
    Raises ParsecError PARSEC_INVALID_ARGUMENT for an unknown scheme or a malformed
    URL."""
    if url in ("", "memory://"):
        return Backends()
    if url.startswith(NATS_SCHEMES):
        return _nats(url, key_prefix, node_id, nats_user)
    _check_scheme(url)
    return _redis(url, key_prefix, node_id, pool_size, pool_timeout)


def operator_nats(options: Options) -> NatsAccountsOptions | None:
    """``[nats]`` when the broker is its operator-mode NATS (``broker.url`` is
    ``[nats] url``): the instance then connects as a user of its own account
    (``parsec.backends.nats.instance``) and each org's Parsec as a user of the org's
    account. None otherwise."""
    nats = options.nats
    if nats is None or nats.url is None or nats.url != options.broker.url:
        return None
    return nats


class BrokerUnreachable(Exception):
    """The broker at ``url`` (credentials hidden) did not answer: ``problem`` says what
    failed, in words."""

    def __init__(self, url: str, kind: str, problem: str) -> None:
        super().__init__(url, problem)
        self.url = url
        self.kind = kind
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"cannot reach the broker at {self.url}: {self.problem}; check that {self.kind} "
            "is running there and reachable from this host, and the URL's host, port and "
            "credentials (--broker, PARSEC_BROKER_URL or [broker] url)"
        )


async def check_reachable(url: str, *, within: float = REACH_TIMEOUT) -> None:
    """Return once the broker ``url`` names answers a PING on a connection of its own
    (at once for ``memory://``); nothing of it is kept.

    Raises :class:`BrokerUnreachable` when it does not within ``within`` seconds, and
    ParsecError PARSEC_INVALID_ARGUMENT as :func:`backends_for` does (an unknown scheme,
    a malformed URL, a driver that is not installed)."""
    if url in ("", "memory://"):
        return
    driver = _driver(url)
    deadline = asyncio.timeout(within)
    try:
        async with deadline:
            await driver.ping(url)
    except ParsecError:
        raise
    except Exception as exc:
        problem = f"no answer within {within:g}s" if deadline.expired() else _problem(exc)
        raise BrokerUnreachable(driver.redact(url), driver.kind, problem) from None


class _Driver(NamedTuple):
    kind: str
    ping: Callable[[str], Awaitable[None]]
    redact: Callable[[str], str]


def _driver(url: str) -> _Driver:
    if url.startswith(NATS_SCHEMES):
        _require_nats()
        from parsec.backends.nats import ping, redacted

        return _Driver("NATS", ping, redacted)
    _check_scheme(url)
    _require_redis()
    from parsec.backends.redis import ping as redis_ping
    from parsec.backends.redis import redact

    return _Driver("Redis", redis_ping, redact)


def _problem(exc: BaseException) -> str:
    """What failed, in words: the operating system's reason when a socket error lies
    under ``exc`` (``connection refused``), else the driver's message."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TimeoutError):
            return "the connection timed out"
        if isinstance(cause, OSError) and cause.strerror:
            text = cause.strerror
            if cause.errno and cause.errno > 0 and not isinstance(cause, socket.gaierror):
                text = os.strerror(cause.errno)  # "Connection refused", not uvloop's text
            return text[:1].lower() + text[1:]
        cause = cause.__cause__ or cause.__context__
    return str(exc).rstrip(".") or type(exc).__name__


def _check_scheme(url: str) -> None:
    if not url.startswith(_REDIS_SCHEMES):
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"unknown broker URL scheme in {url.split('://')[0]!r}: "
            "use memory://, redis:// or nats://",
        )


def _require_redis() -> None:
    """PARSEC_INVALID_ARGUMENT naming the extra when redis-py is not installed."""
    try:
        import parsec.backends.redis  # noqa: F401
    except ImportError as exc:
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"a Redis broker needs redis-py ({exc}): pip install 'parsec-realtime[redis]'",
        ) from None


def _require_nats() -> None:
    """PARSEC_INVALID_ARGUMENT naming the extra when nats-py is not installed."""
    try:
        import parsec.backends.nats  # noqa: F401
    except ImportError as exc:
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"a nats:// broker needs nats-py ({exc}): pip install 'parsec-realtime[nats]'",
        ) from None


def _redis(
    url: str, key_prefix: str, node_id: str, pool_size: int, pool_timeout: float
) -> Backends:
    _require_redis()
    from parsec.backends.redis import from_url
    from parsec.backends.redis.controller import RedisController
    from parsec.backends.redis.dlq import RedisDLQ
    from parsec.backends.redis.events import RedisChannelEventBus
    from parsec.backends.redis.keyring import RedisKeyRingStore
    from parsec.backends.redis.stores import (
        RedisChannelStore,
        RedisRefreshStore,
        RedisRevocationStore,
    )

    core = from_url(url, key_prefix=key_prefix, pool_size=pool_size, pool_timeout=pool_timeout)
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


def nats_backends_on(connection: NatsConnection, *, key_prefix: str, node_id: str) -> Backends:
    """The backends of one node whose broker and controller run on ``connection``, an
    open NATS connection owned elsewhere (an org's account connection: see
    ``parsec.backends.nats.accounts``); everything else stays in memory, as with a
    ``nats://`` URL. Closing the backends leaves the connection open."""
    from parsec.backends.nats import on_connection

    core = on_connection(connection, node_id=node_id, subject_prefix=key_prefix)
    backends = Backends(persistence="nats", broker=core.broker, controller=core.controller)
    backends._closers = [core.controller.aclose, core.broker.aclose]
    return backends


def _nats(url: str, subject_prefix: str, node_id: str, user: NatsUser | None) -> Backends:
    """``nats://`` / ``tls://``: the broker and the controller on NATS (no history);
    presence, the channel registry, refresh rotation, revocations and the DLQ stay in
    each node's memory (revocations travel to the other nodes over the controller;
    docs/scaling.md says what that means for a cluster)."""
    _require_nats()
    from parsec.backends.nats import from_url

    core = from_url(url, node_id=node_id, subject_prefix=subject_prefix, user=user)
    backends = Backends(persistence="nats", broker=core.broker, controller=core.controller)
    # both hold the shared connection; the last to close closes it
    backends._closers = [core.controller.aclose, core.broker.aclose]
    return backends
