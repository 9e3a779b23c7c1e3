"""The Redis client the backends share, and how its failures reach the engine.

Every Redis failure a backend call meets surfaces as a ``ParsecClientError``: a client
protocol error 100 (temporary, so SDKs retry) that carries a ``ParsecError`` for the
management surface:

* ``PARSEC_BROKER_NOT_READY`` (HTTP 503) when Redis cannot be reached or does not
  answer within the socket timeout, or when every connection of the client's pool
  stayed busy for the pool timeout;
* ``PARSEC_BROKER_INTERNAL`` (HTTP 500) when Redis answers with an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TypeAlias

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parsec.errors import ParsecClientError, ParsecError

__all__ = [
    "UNREACHABLE",
    "ClientShare",
    "PoolBusy",
    "RedisClient",
    "broker_error",
    "prepare_pubsub",
    "translated",
]

RedisClient: TypeAlias = Redis | RedisCluster
"""A standalone or Sentinel-managed client (``Redis``) or a Cluster client."""

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
"""Failures that mean Redis is down, unreachable or too slow: retrying later may work."""


class PoolBusy(RedisConnectionError):
    """No turn to run a command came within the pool timeout: every connection the
    client may use stayed busy (``urls.make_clients``)."""


_POOL_FULL = "Too many connections"
"""What redis-py's MaxConnectionsError says: a pool that does not wait was full."""


def broker_error(code: str, message: str) -> ParsecClientError:
    """The error a backend call raises: client error 100 (temporary) carrying ``code``."""
    return ParsecError(code, message).client_error()


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn a Redis failure inside the block into the backend's coded error.

    ``action`` completes the message: "redis is unreachable while <action>".
    """
    try:
        yield
    except UNREACHABLE as exc:
        if isinstance(exc, PoolBusy) or str(exc) == _POOL_FULL:
            raise broker_error(
                "PARSEC_BROKER_NOT_READY",
                f"no free redis connection while {action}: {exc} "
                "(see broker.pool_size and broker.pool_timeout)",
            ) from exc
        raise broker_error(
            "PARSEC_BROKER_NOT_READY", f"redis is unreachable while {action}: {exc}"
        ) from exc
    except RedisError as exc:
        raise broker_error("PARSEC_BROKER_INTERNAL", f"redis failed while {action}: {exc}") from exc


async def prepare_pubsub(client: RedisClient) -> None:
    """Make ``client.pubsub()`` usable; call it before every pub/sub (re)connect.

    A Cluster client's pub/sub picks its node from the slot cache, which stays empty
    until the client has connected: on a client that has sent no command yet its
    SUBSCRIBE fails with a KeyError. This loads the cluster's slots first (at once when
    already loaded; a redis error when no node answers). Other clients need nothing.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()


class ClientShare:
    """One Redis client shared by several backends.

    Each backend built with the share calls ``release`` once when it closes; the client
    (and its ``helpers``, such as Sentinel clients) is closed when the last of
    ``holders`` has released it. A client a caller passes to a backend directly,
    without a share, is never closed by the backend.
    """

    __slots__ = ("_client", "_helpers", "_holders")

    def __init__(self, client: RedisClient, holders: int, helpers: Sequence[Redis] = ()) -> None:
        if holders < 1:
            raise ValueError("a shared client needs at least one holder")
        self._client = client
        self._helpers = tuple(helpers)
        self._holders = holders

    async def release(self) -> None:
        """Give up one holder's share; the last release closes the client."""
        if self._holders == 0:
            raise RuntimeError("every holder has already released this client")
        self._holders -= 1
        if self._holders == 0:
            await self._client.aclose()
            for helper in self._helpers:
                await helper.aclose()
