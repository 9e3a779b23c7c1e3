"""Keeping the revocations one node holds and the shared store in step (see
``parsec.auth.revocation``: "Following the store", "A store that lost its data").

Guarantees: an entry this node holds that the store may lack (its write failed) is kept
to be written at the next look, never dropped; when the store's generation is not the
one this node wrote into (new, or it lost its data) every live entry this node holds is
written back; what other nodes added is loaded when the store's state moved. Every
method that touches the store expects the caller to hold :attr:`StoreSync.lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from parsec.auth.revocation_store import Revocation, RevocationStore, StoreState, merged
from parsec.errors import ParsecClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from parsec.auth.revocation_held import HeldRevocations
    from parsec.auth.revocation_store import StoredRevocations

__all__ = ["PRUNE_INTERVAL", "StoreSync", "store_errors"]

PRUNE_INTERVAL: Final = 60.0
"""Seconds between two prunes of expired entries (this node's and the store's)."""

log = logging.getLogger("parsec.auth")


class StoreSync:
    """What this node knows of ``store``: the entries it may lack, the generation this
    node wrote into, the state it last loaded, and when to prune next."""

    def __init__(
        self, store: RevocationStore, held: HeldRevocations, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._held = held
        self._clock = clock
        self.lock = asyncio.Lock()
        """Held by whoever reads or writes the store, so one look runs at a time."""
        self._unsynced: dict[str, Revocation] = {}
        """Entries the store may not hold yet (its last write failed)."""
        self._generation: str | None = None
        """The store generation this node's entries have been written into."""
        self._seen: StoreState | None = None
        """The store state of the last load."""
        self._next_prune = clock() + PRUNE_INTERVAL

    def pending(self, entries: Mapping[str, Revocation]) -> None:
        """Remember ``entries`` as ones to write to the store."""
        for key, entry in entries.items():
            self._unsynced[key] = entry.merge(self._unsynced.get(key, entry))

    async def catch_up(self, stored: StoredRevocations) -> None:
        """After the first load (``stored``): remember what was loaded and write every
        entry the store lacks (with no generation, call the store even with nothing to
        write, so it gets one).

        Raises:
            ParsecClientError: the store failed; the entries stay to be written later.
        """
        lacking = {
            key: entry
            for key, entry in self._held.live_entries().items()
            if merged(stored.entries.get(key), entry) is not None
        }
        self._seen = stored.state
        self._generation = stored.state.generation
        self._unsynced.update(lacking)
        await self.write_unsynced(always=stored.state.generation is None)

    async def sync(self) -> None:
        """Write what the store lacks, write everything back if it lost its data, load
        what others added, prune when due.

        Raises:
            ParsecClientError: the store failed.
        """
        await self.write_unsynced()
        state = await self._store.state()
        if state.generation != self._generation:
            state = await self._write_back()
        if state != self._seen:
            stored = await self._store.load()
            self._held.take(stored.entries)
            self._seen = stored.state
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self._held.prune(now)
            await self._store.prune(int(now))

    async def write_unsynced(self, *, always: bool = False) -> None:
        """Write the entries the store may lack; with ``always``, call the store even with
        nothing to write (it gets a generation).

        Raises:
            ParsecClientError: the store failed; the entries stay to be written later.
        """
        if not self._unsynced and not always:
            return
        pending, self._unsynced = self._unsynced, {}
        try:
            state = await self._store.add(pending)
        except BaseException:
            for key, entry in pending.items():
                self._unsynced[key] = entry.merge(self._unsynced.get(key, entry))
            raise
        if state.generation != self._generation:
            await self._write_back()

    async def _write_back(self) -> StoreState:
        """The store's generation is not the one this node wrote into: it lost its data
        (or is new). Write every entry this node holds into it; the store's state
        afterwards."""
        entries = self._held.live_entries()
        if self._generation is not None:
            log.warning(
                "revocations: %s lost its data (flushed, or restarted without "
                "persistence?); this node writes back the %d revocations it holds",
                self._store.where,
                len(entries),
            )
        state = await self._store.add(entries)
        self._generation = state.generation
        return state


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A store failure (a backend's ParsecClientError) as the ParsecError it carries."""
    try:
        yield
    except ParsecClientError as exc:
        raise exc.parsec_error from None
