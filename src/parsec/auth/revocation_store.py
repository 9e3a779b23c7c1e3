"""The RevocationStore contract: where the revocations every node honours are kept, and
its in-memory backend.

A store holds entries, each a key (:func:`token_key`, :func:`family_key`,
:func:`user_key`) and a :class:`Revocation`: a ``level`` (the end of a revoked token or
family, or a user's cutoff) and an ``until`` after which the entry may be forgotten. It
does not interpret keys; :class:`~parsec.auth.revocation.Revocations` keeps each node's
copy of the entries in step with it and checks tokens against that copy.

Guarantees:

* ``add`` merges: an entry's ``level`` and ``until`` only ever grow (each becomes the
  larger of the stored and the added value), so adding is idempotent, commutative, and
  safe to repeat from every node.
* A store has a **generation**, an opaque id that ``add`` creates when the store has none
  (a new store, or one that lost its data: a Redis flushed or restarted without
  persistence). Of concurrent ``add`` calls on a store without one, exactly one
  generation results and every call returns it. A store whose data is lost has no
  generation until the next ``add`` gives it a new one: a node that sees the generation
  change knows that entries may be missing and adds back every entry it holds.
* The **version** grows with every ``add`` that changed an entry, within a generation:
  a node that loaded version ``v`` and later reads another knows it missed a change.
* ``load`` returns every entry (expired ones too, until pruned) with the generation and
  a version no newer than the entries.
* ``prune(now)`` forgets entries whose ``until`` is at or before ``now``; it changes
  neither the generation nor the version.
* Failures raise ``ParsecClientError`` (``PARSEC_BROKER_NOT_READY`` when the store
  cannot be reached, ``PARSEC_BROKER_INTERNAL`` when it answers with an error).

Implementations: :class:`MemoryRevocationStore` (one process) and
``parsec.backends.redis.stores.RedisRevocationStore`` (nodes sharing one Redis).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

__all__ = [
    "CONNECTION_TOKENS",
    "EVERY_TOKEN",
    "FOREVER",
    "MemoryRevocationStore",
    "Revocation",
    "RevocationStore",
    "StoreState",
    "StoredRevocations",
    "channel_tokens",
    "family_key",
    "merged",
    "new_generation",
    "token_key",
    "user_key",
]

FOREVER: Final = 253402300799
"""An ``until`` that never comes (9999-12-31T23:59:59Z): the entry is kept for good."""

EVERY_TOKEN: Final = "*"
"""The scope of a user cutoff covering every token of the user (ParsecService RevokeUser)."""
CONNECTION_TOKENS: Final = "connection"
"""The scope of a user cutoff covering the user's Centrifugo connection tokens (server API
``invalidate_user_tokens`` without ``channel``)."""


def channel_tokens(channel: str) -> str:
    """The scope of a user cutoff covering the user's tokens presented to subscribe to
    ``channel`` (server API ``invalidate_user_tokens`` with ``channel``)."""
    return f"channel:{channel}"


def held_token(jti: str) -> str:
    """The scope of a user cutoff covering one token of the user, ``jti``: how a user
    revokes a token of theirs (the token broker's self-service revoke). It is
    harmless for any other token: another user's token with that id is not covered."""
    return f"token:{jti}"


def token_key(jti: str) -> str:
    """The key of a revoked token id."""
    return f"t:{jti}"


def family_key(fid: str) -> str:
    """The key of a revoked refresh family."""
    return f"f:{fid}"


def user_key(user: str, scope: str) -> str:
    """The key of a user's cutoff in ``scope``; unambiguous whatever the two contain."""
    return "u:" + msgspec.json.encode([user, scope]).decode()


@dataclass(frozen=True, slots=True)
class Revocation:
    """One entry: ``level`` only moves forward (a revoked token's or family's end, a
    user's cutoff); the entry may be forgotten once ``until`` (unix seconds) is reached."""

    level: int
    until: int

    def merge(self, other: Revocation) -> Revocation:
        """The entry holding the larger of each value."""
        return Revocation(max(self.level, other.level), max(self.until, other.until))


def merged(current: Revocation | None, new: Revocation) -> Revocation | None:
    """What ``new`` turns ``current`` into, or None when it adds nothing."""
    if current is None:
        return new
    result = current.merge(new)
    return None if result == current else result


def new_generation() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class StoreState:
    """A store's generation (None: it has none, so it holds nothing) and version."""

    generation: str | None
    version: int


@dataclass(frozen=True, slots=True)
class StoredRevocations:
    """Everything a store holds."""

    state: StoreState
    entries: dict[str, Revocation] = field(default_factory=dict)


class RevocationStore(Protocol):
    """Where the revocations of every node live (see the module docstring)."""

    @property
    def where(self) -> str:
        """Names the store in messages, e.g. ``redis key 'parsec:revocations'``."""

    async def load(self) -> StoredRevocations:
        """Every entry, with the store's state."""

    async def state(self) -> StoreState:
        """The generation and version, cheaply."""

    async def add(self, entries: Mapping[str, Revocation]) -> StoreState:
        """Merge ``entries`` in, creating a generation when the store has none; the
        state afterwards. ``entries`` may be empty (it then only makes sure the store
        has a generation)."""

    async def prune(self, now: int) -> None:
        """Forget the entries whose ``until`` is at or before ``now``."""

    async def aclose(self) -> None:
        """Release what the store holds. Idempotent."""


class MemoryRevocationStore:
    """A RevocationStore in this process: the store of a single node, or of several
    Parsec instances on one event loop (tests). ``clear`` forgets everything, as a
    flushed Redis would."""

    where = "the in-memory revocation store"

    def __init__(self) -> None:
        self._entries: dict[str, Revocation] = {}
        self._generation: str | None = None
        self._version = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self) -> StoredRevocations:
        return StoredRevocations(self._state(), dict(self._entries))

    async def state(self) -> StoreState:
        return self._state()

    async def add(self, entries: Mapping[str, Revocation]) -> StoreState:
        if self._generation is None:
            self._generation = new_generation()
        changed = False
        for key, entry in entries.items():
            new = merged(self._entries.get(key), entry)
            if new is not None:
                self._entries[key] = new
                changed = True
        if changed:
            self._version += 1
        return self._state()

    async def prune(self, now: int) -> None:
        self._entries = {k: e for k, e in self._entries.items() if e.until > now}

    async def aclose(self) -> None:
        """Nothing to release."""

    def clear(self) -> None:
        """Forget every entry and the generation (as a flushed Redis would)."""
        self._entries.clear()
        self._generation = None
        self._version = 0

    def _state(self) -> StoreState:
        return StoreState(self._generation, self._version)


_memory: type[RevocationStore] = MemoryRevocationStore
