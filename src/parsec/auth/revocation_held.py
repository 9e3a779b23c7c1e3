"""The revocations one node holds: the copy every check reads (see
``parsec.auth.revocation``).

Guarantees: an entry only ever moves forward (:func:`~parsec.auth.revocation_store.merged`:
a later end, a later cutoff), an expired entry is never taken in, and after every change
that revoked something new the file (``parsec.auth.revocation_cache``) is saved and then
``on_change`` is called, on the event loop, before :meth:`HeldRevocations.take` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsec.auth import revocation_cache
from parsec.auth.revocation_store import Revocation, merged

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

__all__ = ["HeldRevocations"]


class HeldRevocations:
    """This node's entries, kept in ``cache`` too (None: in memory only).

    ``on_change`` is called after every change that revoked something new.
    """

    def __init__(
        self, clock: Callable[[], float], cache: Path | None, on_change: Callable[[], None]
    ) -> None:
        self._clock = clock
        self._cache = cache
        self._on_change = on_change
        self.entries: dict[str, Revocation] = {}
        """Every entry held, expired ones until pruned."""

    def load_cache(self) -> None:
        """Take in the entries of the file.

        Raises:
            ParsecError: ``PARSEC_INTERNAL``, the file is not a revocations file.
        """
        self.take(revocation_cache.read(self._cache))

    def take(self, entries: Mapping[str, Revocation]) -> bool:
        """Merge ``entries`` into this node's copy; when that revoked anything new, save
        the file and call ``on_change``. Whether anything changed."""
        now = self._clock()
        changed = False
        for key, entry in entries.items():
            if entry.until <= now:
                continue
            new = merged(self.entries.get(key), entry)
            if new is not None:
                self.entries[key] = new
                changed = True
        if changed:
            self._save()
            self._on_change()
        return changed

    def live(self, key: str) -> Revocation | None:
        """The entry ``key`` unless there is none or it has expired."""
        entry = self.entries.get(key)
        if entry is None or entry.until <= self._clock():
            return None
        return entry

    def live_entries(self) -> dict[str, Revocation]:
        """Every entry that has not expired."""
        now = self._clock()
        return {key: entry for key, entry in self.entries.items() if entry.until > now}

    def prune(self, now: float) -> None:
        """Forget the entries that ended by ``now`` (and save the file when any did)."""
        live = {key: entry for key, entry in self.entries.items() if entry.until > now}
        if len(live) != len(self.entries):
            self.entries = live
            self._save()

    def _save(self) -> None:
        revocation_cache.save(self._cache, self.entries)
