"""SharedKeyRing: one node's KeyRing kept in step with a KeyRingStore that every node shares.

With a shared store (Redis), the store's document is the keyring and each node's
:class:`~parsec.auth.keyring.KeyRing` is a copy of it that signs and verifies locally:

* **Bootstrap** (:meth:`SharedKeyRing.start`). A node adopts the store's document. On an
  empty store it first seeds the store with its own ring (its ``keyring.json`` when it has
  one, else a fresh key) through ``create_if_absent``: of several nodes starting at once on
  an empty store one seeds it, and every one of them ends up with that ring.
* **Following.** The store announces each change (Redis pub/sub) and the node then looks
  at the store's version at once; it also looks every ``check_interval`` seconds (1 s), so a
  lost announcement still converges within about a second. A changed document replaces the
  whole ring in one step (:meth:`KeyRing.replace_json`): connections already open are
  untouched, and tokens of keys that stay active or verify-only keep verifying.
* **Changes** (:meth:`SharedKeyRing.update`, used by generate / promote / retire). The
  change is applied to a scratch ring holding the store's current document and stored by
  compare-and-set; a node that loses a race loads the fresh document and applies its change
  again, so two nodes changing keys at once both take effect. The node that made a change
  holds it when ``update`` returns; every other node holds it after its next look.
* **The local file.** When the node has a state directory, every document it adopts is
  written to ``<state_dir>/keyring.json`` as a cache: local tools (``parsec tokens …
  --state-dir``, ``parsec keys export``) see the shared keys, and should the store lose
  its data the file seeds it again. The file is not read back while the store holds a
  document, and its watcher does not run: edit the shared ring through the management API.
* **A bad document** in the store stops a node from starting (KeyRingError
  ``PARSEC_INTERNAL`` naming where the document lives); a running node keeps its last good
  ring, logs one warning, and changes fail with the same error until the document is fixed.
* **An emptied store** (Redis flushed or restarted without persistence) is seeded again,
  at the next look, with the ring of the first node to notice.

Logs name key ids, never key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal, Self, TypeVar

from parsec.auth.keyring import KeyRing, KeyRingError
from parsec.auth.keyring_store import KeyRingStore, StoredKeyRing
from parsec.engine.aio import cancel_and_wait

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["CHECK_INTERVAL", "MAX_ATTEMPTS", "SharedKeyRing"]

CHECK_INTERVAL: Final = 1.0
"""Seconds between two looks at the store's version when no announcement arrives."""
MAX_ATTEMPTS: Final = 16
"""Compare-and-set attempts of one change before it gives up (others kept changing)."""

logger = logging.getLogger("parsec.auth")

_T = TypeVar("_T")


class SharedKeyRing:
    """Keeps ``keyring`` in step with ``store`` (see the module docstring).

    Use as ``async with SharedKeyRing(ring, store): …`` or :meth:`start` then :meth:`aclose`.
    The store is borrowed: its owner closes it.

    Raises:
        ValueError: ``check_interval`` is not a positive number of seconds.
    """

    def __init__(
        self, keyring: KeyRing, store: KeyRingStore, *, check_interval: float = CHECK_INTERVAL
    ) -> None:
        if not check_interval > 0:
            raise ValueError(
                f"check_interval must be a positive number of seconds, not {check_interval!r}"
            )
        self._keyring = keyring
        self._store = store
        self._interval = check_interval
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._force = False
        self._seen: StoredKeyRing | None = None
        self._failure: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._state: Literal["new", "running", "closed"] = "new"

    @property
    def keyring(self) -> KeyRing:
        """The node's ring: what it signs and verifies with."""
        return self._keyring

    @property
    def store(self) -> KeyRingStore:
        return self._store

    async def start(self) -> None:
        """Adopt the store's ring (seeding an empty store with this one), then follow it.

        Raises:
            KeyRingError: the store cannot be reached (``PARSEC_BROKER_NOT_READY``), or
                holds a document that is not a valid keyring (``PARSEC_INTERNAL``).
            RuntimeError: started twice, or after :meth:`aclose`.
        """
        if self._state != "new":
            raise RuntimeError(f"a SharedKeyRing starts once; this one is {self._state}")
        self._state = "running"
        local = self._keyring.snapshot_json()
        async with self._lock:
            stored = await self._store.load()
            if stored is None:
                stored = await self._store.create_if_absent(local)
            self._adopt(stored)
        where, active = self._store.where, self._keyring.active.id
        if stored.document == local:
            logger.info(
                "shared keyring: this node's keyring is the one in %s (active %s)", where, active
            )
        else:
            cache = "" if self._keyring.path is None else f"; {self._keyring.path} caches it"
            logger.info("shared keyring: adopted the one in %s (active %s)%s", where, active, cache)
        await self._store.watch(self._on_change)
        self._task = asyncio.create_task(self._follow(), name="parsec-shared-keyring")

    async def update(self, change: Callable[[KeyRing], _T]) -> _T:
        """Apply ``change`` to the shared ring and store the result; returns what ``change``
        returned, once the store and this node's ring hold the changed document.

        ``change`` gets a scratch ring holding the store's current document; it runs again
        on a fresh one each time another node changed the ring first. A change that
        changes nothing (promoting the active key) stores nothing.

        Raises:
            KeyRingError: what ``change`` raises (unknown key, retiring the active key…);
                the store cannot be reached; its document is not a valid keyring
                (``PARSEC_INTERNAL``); or other nodes changed the ring ``MAX_ATTEMPTS`` times
                in a row (``PARSEC_INTERNAL``; try again).
        """
        where = self._store.where
        async with self._lock:
            for _ in range(MAX_ATTEMPTS):
                stored = await self._store.load()
                if stored is None:
                    stored = await self._store.create_if_absent(self._keyring.snapshot_json())
                scratch = KeyRing.from_json(stored.document, source=where)
                result = change(scratch)
                document = scratch.snapshot_json()
                if document != stored.document:
                    version = await self._store.replace(document, current=stored)
                    if version is None:
                        continue
                    stored = StoredKeyRing(document, version)
                self._adopt(stored)
                return result
        raise KeyRingError(
            f"the keyring in {where} changed {MAX_ATTEMPTS} times while this change was "
            "being applied; try again"
        )

    async def reload(self) -> None:
        """Read the store now and adopt its document (``ReloadKeys``).

        Raises:
            KeyRingError: the store cannot be reached, or its document is not a valid
                keyring; the ring keeps its keys.
        """
        async with self._lock:
            await self._check(force=True)

    def check_soon(self) -> None:
        """Have the follower read the store's document at once, whatever its version
        (SIGHUP). Safe to call from a signal handler on the event loop."""
        self._force = True
        self._wake.set()

    async def aclose(self) -> None:
        """Stop following the store; waits for the follower to end. Idempotent."""
        self._state = "closed"
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _on_change(self) -> None:
        self._wake.set()

    async def _follow(self) -> None:
        """Look at the store on each announcement and every interval, until closed.

        The loop ends on the closed state, not only on cancellation: on Python 3.11 a Redis
        command can swallow the cancellation ``aclose`` sends while it runs (redis-py wraps
        socket writes in ``asyncio.wait_for``, which loses a cancel that races completion).
        """
        while self._state != "closed":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            force, self._force = self._force, False
            try:
                async with self._lock:
                    await self._check(force=force)
            except KeyRingError as exc:
                self._failed(exc)
            except Exception:
                logger.exception("shared keyring: looking at %s failed", self._store.where)
            else:
                self._recovered()

    async def _check(self, *, force: bool) -> None:
        """Adopt the store's document if its version moved (or ``force``); seed the store
        again if it lost the document."""
        seen = self._seen
        if not force and seen is not None and await self._store.version() == seen.version:
            return
        stored = await self._store.load()
        if stored is None:
            stored = await self._store.create_if_absent(self._keyring.snapshot_json())
            logger.warning(
                "shared keyring: %s had no keyring (flushed, or restarted without "
                "persistence?); it holds this node's last keyring again",
                self._store.where,
            )
        self._adopt(stored)

    def _adopt(self, stored: StoredKeyRing) -> None:
        """Make ``stored`` this node's ring (KeyRingError if it is not a valid keyring)."""
        seen = self._seen
        if seen is None or stored.document != seen.document:
            self._keyring.replace_json(stored.document, source=self._store.where)
            if seen is not None:
                logger.info(
                    "shared keyring: version %d adopted (active %s, %d keys)",
                    stored.version,
                    self._keyring.active.id,
                    len(self._keyring.keys()),
                )
        self._seen = stored

    def _failed(self, error: KeyRingError) -> None:
        """Log a failure to follow the store once, until it changes or recovers."""
        message = str(error)
        if message != self._failure:
            self._failure = message
            logger.warning(
                "shared keyring: keeping the last good keyring (active %s): %s",
                self._keyring.active.id,
                message,
            )

    def _recovered(self) -> None:
        if self._failure is not None:
            self._failure = None
            logger.info("shared keyring: following %s again", self._store.where)
