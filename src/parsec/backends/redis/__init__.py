"""Redis backends: nodes sharing one Redis behave as one server.

Needs the ``redis`` extra (``pip install 'parsec-realtime[redis]'``: redis-py with
hiredis). ``from_url`` builds the Broker and the PresenceManager of one node on one
client; the module docstrings of ``broker``, ``presence``, ``subscriber`` and
``keys`` state the guarantees and the key layout, ``urls`` the URL forms.
"""

from __future__ import annotations

from typing import NamedTuple

from redis.asyncio.sentinel import MasterNotFoundError

from parsec.backends.redis.broker import RedisBroker
from parsec.backends.redis.client import ClientShare
from parsec.backends.redis.keys import DEFAULT_KEY_PREFIX, Keys
from parsec.backends.redis.presence import RedisPresenceManager
from parsec.backends.redis.urls import make_clients, parse_url, redact
from parsec.options import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT

__all__ = ["RedisBackends", "RedisBroker", "RedisPresenceManager", "from_url", "ping", "redact"]


class RedisBackends(NamedTuple):
    """A node's Redis Broker and PresenceManager, sharing one client: the client is
    closed when both have been closed."""

    broker: RedisBroker
    presence: RedisPresenceManager


def from_url(
    url: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
) -> RedisBackends:
    """Broker and PresenceManager for the Redis at ``url`` (see ``urls`` for the forms),
    keeping their keys under ``key_prefix``, on a client whose commands use at most
    ``pool_size`` connections at once and wait up to ``pool_timeout`` seconds for a
    free one. Nothing connects until first used.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a malformed URL or key prefix.
    """
    Keys(key_prefix)
    clients = make_clients(parse_url(url), pool_size=pool_size, pool_timeout=pool_timeout)
    share = ClientShare(clients.main, holders=2, helpers=clients.helpers)
    return RedisBackends(
        RedisBroker(clients.main, prefix=key_prefix, share=share),
        RedisPresenceManager(clients.main, prefix=key_prefix, share=share),
    )


async def ping(url: str) -> None:
    """Send one PING to the Redis at ``url`` (through its Sentinels, or to its Cluster,
    as the URL says) on a connection of its own; the caller bounds the time.

    Raises what redis-py raised (a ``RedisError``: unreachable, refused credentials,
    no master known to the Sentinels) or ParsecError ``PARSEC_INVALID_ARGUMENT`` for a
    malformed URL."""
    parsed = parse_url(url)
    clients = make_clients(parsed)
    try:
        await clients.main.ping()
    except MasterNotFoundError:  # its message holds a repr of every Sentinel client
        raise MasterNotFoundError(
            f"no Sentinel answered with a healthy master named {parsed.service!r}"
        ) from None
    finally:
        await clients.main.aclose()
        for helper in clients.helpers:
            await helper.aclose()
