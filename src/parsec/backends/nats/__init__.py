"""NATS backends: nodes sharing one NATS (server or cluster) fan out as one server.

Needs the ``nats`` extra (``pip install 'parsec-realtime[nats]'``: nats-py). Core NATS
carries publications, joins and leaves between nodes (``broker``) and the messages of
the engine's Cluster: commands, node reports and surveys (``controller``); it keeps no
history, so history, recovery, positioning and idempotent publishing need the Redis
broker. Presence and every other store stay in each node's memory. ``urls`` states
the URL forms, ``subjects`` the subject layout.
"""

from __future__ import annotations

from typing import NamedTuple

import nats.errors
from nats.aio.client import Client

from parsec.backends.nats.broker import NatsBroker
from parsec.backends.nats.connection import NatsConnection, NatsUser
from parsec.backends.nats.controller import NatsController, NatsControlTransport
from parsec.backends.nats.subjects import DEFAULT_SUBJECT_PREFIX, Subjects
from parsec.backends.nats.urls import parse_url, redacted

__all__ = [
    "NatsBackends",
    "NatsBroker",
    "NatsConnection",
    "NatsControlTransport",
    "NatsController",
    "from_url",
    "on_connection",
    "ping",
    "redacted",
]


class NatsBackends(NamedTuple):
    """A node's NATS Broker and Controller, sharing one connection: the connection is
    closed when both have been closed."""

    broker: NatsBroker
    controller: NatsController


def from_url(
    url: str,
    *,
    node_id: str,
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
    user: NatsUser | None = None,
) -> NatsBackends:
    """Broker and Controller for the NATS at ``url`` (see ``urls`` for the forms),
    using subjects under ``subject_prefix``, authenticated as ``user`` when given
    (operator mode). Nothing connects until the broker or the controller starts.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a malformed URL or prefix.
    """
    Subjects(subject_prefix)
    connection = NatsConnection(url, name=f"parsec {node_id}", holders=2, user=user)
    return NatsBackends(
        NatsBroker(connection, prefix=subject_prefix, release_connection=True),
        NatsController(connection, node_id, prefix=subject_prefix, release_connection=True),
    )


def on_connection(
    connection: NatsConnection, *, node_id: str, subject_prefix: str = DEFAULT_SUBJECT_PREFIX
) -> NatsBackends:
    """Broker and Controller on ``connection``, which they borrow: closing them leaves
    it open (an org's account connection, owned by ``accounts.AccountPool``).

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a malformed prefix.
    """
    Subjects(subject_prefix)
    return NatsBackends(
        NatsBroker(connection, prefix=subject_prefix),
        NatsController(connection, node_id, prefix=subject_prefix),
    )


async def ping(url: str) -> None:
    """Connect once to the NATS at ``url`` (each server tried twice, no reconnecting)
    and round-trip a PING; the caller bounds the time.

    Raises what the connection met: the last server's OSError, a ``nats.errors.Error``
    (refused credentials, a timeout), or ParsecError ``PARSEC_INVALID_ARGUMENT`` for a
    malformed URL."""
    servers = list(parse_url(url).servers)
    client = Client()
    failures: list[Exception] = []

    async def record(exc: Exception) -> None:
        failures.append(exc)

    try:
        await client.connect(
            servers,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=record,
        )
        await client.flush()
    except nats.errors.NoServersError:
        if failures:
            raise failures[-1] from None
        raise
    finally:
        await client.close()
