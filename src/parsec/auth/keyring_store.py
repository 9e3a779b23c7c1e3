"""The KeyRingStore contract: where a keyring lives when several nodes share it, and its
in-memory backend.

A store holds at most one keyring document (``keyring.json`` format 2, as
:meth:`KeyRing.snapshot_json <parsec.auth.keyring.KeyRing.snapshot_json>` writes it) and
its version. It does not interpret the document: parsing, validation and every role change
belong to :class:`~parsec.auth.keyring.KeyRing`, and
:class:`~parsec.auth.shared_keyring.SharedKeyRing` keeps one node's ring in step with the
store. The document holds every secret and private key: a store must be as well protected
as a ``keyring.json`` file.

Guarantees:

* The version increases with every stored change (as long as the store keeps its data),
  so a node that has seen version ``v`` and later reads another one knows that it missed
  a change.
* ``load`` returns a document that is at least as new as the version it is returned with:
  a node that adopts the pair and later reads a different version reloads, so it never
  keeps a stale ring past its next look at the version.
* ``create_if_absent`` seeds an empty store: of any number of concurrent creators exactly
  one stores its document, and every caller gets the stored document back.
* ``replace`` is compare-and-set: it stores the new document only if the stored one is
  still the document the caller loaded, and otherwise changes nothing and returns None. A
  caller that loses loads again and re-applies its change, so no update is lost.
* Every change (``create_if_absent`` that stored, ``replace`` that swapped) is announced
  to the watchers of every node sharing the store, at most once: an announcement can be
  lost (a dropped connection), so a watcher also polls ``version`` to converge.
* Failures raise :class:`~parsec.auth.keyring.KeyRingError`: ``PARSEC_BROKER_NOT_READY``
  when the store cannot be reached, ``PARSEC_BROKER_INTERNAL`` when it answers with an
  error, ``PARSEC_INTERNAL`` when what it holds is not a document and a version.
* ``aclose`` stops the announcements; it is idempotent.

The keyring file (``<state_dir>/keyring.json``, read and written by ``KeyRing`` itself and
watched by ``parsec.auth.watcher``) is the store of a single node, or of nodes sharing one
volume; it keeps its synchronous API and is not a ``KeyRingStore``. Implementations:
:class:`MemoryKeyRingStore` (nodes in one process) and
``parsec.backends.redis.keyring.RedisKeyRingStore`` (nodes sharing one Redis).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["KeyRingStore", "MemoryKeyRingStore", "StoredKeyRing"]


@dataclass(frozen=True, slots=True)
class StoredKeyRing:
    """A keyring document as a store holds it, and its version."""

    document: bytes
    version: int


class KeyRingStore(Protocol):
    """Where a shared keyring document lives (see the module docstring for guarantees)."""

    @property
    def where(self) -> str:
        """Names the document's place in messages, e.g. ``redis key 'parsec:keyring'``."""

    async def load(self) -> StoredKeyRing | None:
        """The stored document and its version, or None when the store holds none."""

    async def version(self) -> int | None:
        """The current version, cheaply; None when the store has none (never seeded, or
        emptied)."""

    async def create_if_absent(self, document: bytes) -> StoredKeyRing:
        """Store ``document`` if the store holds none; what the store holds afterwards."""

    async def replace(self, document: bytes, *, current: StoredKeyRing) -> int | None:
        """Store ``document`` in place of ``current`` if the stored document is still
        ``current.document``. The new version when swapped, None when another change came
        first (nothing stored)."""

    async def watch(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` (on the event loop; it must not block) after changes made by
        any node, until ``aclose``. Returns once watching. May be called more than once."""

    async def aclose(self) -> None:
        """Stop announcing changes. Idempotent."""


class MemoryKeyRingStore:
    """A KeyRingStore in this process, for several Parsec instances on one event loop (and
    tests). Watchers are called synchronously after each change; nothing is ever lost."""

    where = "the in-memory keyring store"

    def __init__(self) -> None:
        self._stored: StoredKeyRing | None = None
        self._watchers: list[Callable[[], None]] = []

    async def load(self) -> StoredKeyRing | None:
        return self._stored

    async def version(self) -> int | None:
        return None if self._stored is None else self._stored.version

    async def create_if_absent(self, document: bytes) -> StoredKeyRing:
        if self._stored is None:
            self._set(document, 1)
        assert self._stored is not None
        return self._stored

    async def replace(self, document: bytes, *, current: StoredKeyRing) -> int | None:
        stored = self._stored
        if stored is None or stored.document != current.document:
            return None
        return self._set(document, stored.version + 1)

    async def watch(self, on_change: Callable[[], None]) -> None:
        self._watchers.append(on_change)

    async def aclose(self) -> None:
        self._watchers.clear()

    @property
    def stored(self) -> StoredKeyRing | None:
        """What the store holds now, without awaiting."""
        return self._stored

    def clear(self) -> None:
        """Forget the document (as a flushed Redis would); the version starts over."""
        self._stored = None

    def _set(self, document: bytes, version: int) -> int:
        self._stored = StoredKeyRing(document, version)
        for watcher in list(self._watchers):
            watcher()
        return version


_memory: type[KeyRingStore] = MemoryKeyRingStore
