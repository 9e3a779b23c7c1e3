"""The PresenceManager contract: who is subscribed to a channel, cluster-wide.

Guarantees:

* ``add_presence`` is an upsert keyed by client id; calling it again refreshes the
  entry. Entries a node stops refreshing expire after ``ttl`` seconds (backends that
  live in one process may keep them until removed).
* ``remove_presence`` is idempotent.
* ``presence_stats`` counts distinct clients and distinct users of the same entries
  ``presence`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from parsec.engine.types import ClientInfo

__all__ = ["PresenceManager", "PresenceStats"]


@dataclass(frozen=True, slots=True)
class PresenceStats:
    num_clients: int
    num_users: int


@runtime_checkable
class PresenceManager(Protocol):
    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, ttl: float
    ) -> None:
        """Record (or refresh) a client's presence in a channel."""

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Forget a client's presence in a channel. Idempotent."""

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Every client present in the channel, by client id."""

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many clients and distinct users are present in the channel."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
