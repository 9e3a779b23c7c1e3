"""The ChannelStore contract: where managed channel records live, and its memory backend.

A store holds at most one :class:`Channel` record per name. It does not interpret
records (validation, TTLs and the lifecycle belong to ``parsec.channels.manager``); it
only makes each change atomic, so that several nodes sharing one store never act on a
record another node changed under them.

Guarantees:

* Every operation is atomic with respect to every other operation on the same name, in
  every process sharing the store.
* ``create_if_absent`` stores a record only when no record of that name exists: of any
  number of concurrent creators of one name, exactly one gets ``True``.
* ``replace`` and ``remove`` are compare-and-set: they act only when the stored record
  equals (every field) the one the caller read, and otherwise change nothing and return
  ``False``. A caller that loses a race reads again and decides again.
* ``get`` and ``list`` return records exactly as stored. ``list`` is sorted by name; it
  reads each record atomically but the list as a whole is not a snapshot.
* Deletion removes the record, so the name is free again: stores hold ``open`` and
  ``closed`` records only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["Channel", "ChannelState", "ChannelStore", "MemoryChannelStore"]


class ChannelState(StrEnum):
    """Where a managed channel is in its lifecycle.

    ``CLOSED`` applies to public channels only (idle past their TTL: subscribers stay, new
    subscribes and publishes are refused, ``open_public`` reopens it). ``DELETED`` is the
    state reported for a channel that is gone; no store ever holds a deleted record.
    """

    OPEN = "open"
    CLOSED = "closed"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Channel:
    """One managed channel as stored. Times are unix seconds; ``ttl`` is in seconds.

    ``visibility`` is ``"public"`` or ``"private"`` (the name's prefix). A channel whose
    ``last_active`` is ``ttl`` or more seconds old is idle and the sweeper acts on it.
    """

    name: str
    visibility: str
    state: ChannelState
    ttl: float
    created_at: float
    last_active: float


@runtime_checkable
class ChannelStore(Protocol):
    """Atomic per-name storage of channel records (see the module docstring)."""

    async def get(self, name: str) -> Channel | None:
        """The record stored under ``name``, or None."""

    async def list(self) -> list[Channel]:
        """Every stored record, sorted by name."""

    async def create_if_absent(self, channel: Channel) -> bool:
        """Store ``channel`` unless a record of its name exists. True when stored."""

    async def replace(self, current: Channel, new: Channel) -> bool:
        """Store ``new`` in place of ``current`` if the stored record still equals
        ``current``. True when swapped. Raises ValueError if the names differ."""

    async def remove(self, current: Channel) -> bool:
        """Remove the record of ``current.name`` if it still equals ``current``. True when
        removed."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""


class MemoryChannelStore:
    """A ChannelStore for one process. Its methods never await, so each one runs
    without interleaving and is atomic by construction."""

    def __init__(self) -> None:
        self._records: dict[str, Channel] = {}

    async def get(self, name: str) -> Channel | None:
        return self._records.get(name)

    async def list(self) -> list[Channel]:
        return [self._records[name] for name in sorted(self._records)]

    async def create_if_absent(self, channel: Channel) -> bool:
        if channel.name in self._records:
            return False
        self._records[channel.name] = channel
        return True

    async def replace(self, current: Channel, new: Channel) -> bool:
        if new.name != current.name:
            raise ValueError(f"cannot replace {current.name!r} with a record of {new.name!r}")
        if self._records.get(current.name) != current:
            return False
        self._records[current.name] = new
        return True

    async def remove(self, current: Channel) -> bool:
        if self._records.get(current.name) != current:
            return False
        del self._records[current.name]
        return True

    async def aclose(self) -> None:
        """Nothing to release; the records stay readable."""


_store: type[ChannelStore] = MemoryChannelStore
