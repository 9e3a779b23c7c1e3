"""NATS backends: nodes sharing one NATS (server or cluster) fan out as one server.

Needs the ``nats`` extra (``pip install 'parsec-realtime[nats]'``: nats-py). Core NATS
carries publications, joins and leaves between nodes (``broker``) and the node-to-node
commands, reports and surveys (``controller``); it keeps no history, so history,
recovery, positioning and idempotent publishing need the Redis broker. Presence and
every other store stay in each node's memory. ``urls`` states the URL forms,
``subjects`` the subject layout.
"""

from __future__ import annotations

from typing import NamedTuple

from parsec.backends.nats.broker import NatsBroker
from parsec.backends.nats.connection import NatsConnection
from parsec.backends.nats.controller import NatsController
from parsec.backends.nats.subjects import DEFAULT_SUBJECT_PREFIX, Subjects

__all__ = ["NatsBackends", "NatsBroker", "NatsConnection", "NatsController", "from_url"]


class NatsBackends(NamedTuple):
    """A node's NATS Broker and Controller, sharing one connection: the connection is
    closed when both have been closed."""

    broker: NatsBroker
    controller: NatsController


def from_url(
    url: str, *, node_id: str, subject_prefix: str = DEFAULT_SUBJECT_PREFIX
) -> NatsBackends:
    """Broker and Controller for the NATS at ``url`` (see ``urls`` for the forms),
    using subjects under ``subject_prefix``. Nothing connects until the broker or the
    controller starts.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a malformed URL or prefix.
    """
    Subjects(subject_prefix)
    connection = NatsConnection(url, name=f"parsec {node_id}", holders=2)
    return NatsBackends(
        NatsBroker(connection, prefix=subject_prefix, release_connection=True),
        NatsController(connection, node_id, prefix=subject_prefix, release_connection=True),
    )
