"""The keys service: the keyring's operations (list, generate, promote, retire, reload)
and what keeps this node's ring current while it runs.

With a shared keyring (a :class:`parsec.auth.shared_keyring.SharedKeyRing` over Redis)
a change goes through the store, and every node holds it within about a second; without
one it changes the ring and its file, and a :class:`KeyRingWatcher` polls the file for
changes made by other processes. SIGHUP reloads the ring while serving
(:meth:`KeyService.reload_on_sighup`). Every failure is a ParsecError with a stable
PARSEC_* code.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from parsec.auth.keyring import Key, KeyRing, KeyRingError
from parsec.auth.keyring_store import KeyRingStore
from parsec.auth.shared_keyring import SharedKeyRing
from parsec.auth.watcher import KeyRingWatcher, install_sighup, on_sighup
from parsec.errors import ParsecError

__all__ = ["ALGORITHMS", "KeyService"]

ALGORITHMS: Final = ("HS256", "RS256", "ES256", "ES384", "EdDSA")
"""The algorithms :meth:`KeyService.generate_key` makes keys for."""
_T = TypeVar("_T")


class KeyService:
    """The operations on ``keyring``, through ``shared`` when the ring is shared.

    States: new → running (``start``) → closed (``aclose``). ``start`` follows the
    shared store, or (with ``poll`` > 0 and a ring kept in a file) starts polling the
    file every ``poll`` seconds; ``aclose`` stops either, and is idempotent. The
    operations work in any state.
    """

    def __init__(
        self, keyring: KeyRing, shared: SharedKeyRing | None = None, *, poll: float = 0.0
    ) -> None:
        self.keyring = keyring
        self.shared = shared
        self._poll = poll
        self._watcher: KeyRingWatcher | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        keyring: KeyRing | None,
        store: KeyRingStore | None,
        *,
        state_dir: Path | None,
        poll: float = 0.0,
    ) -> KeyService:
        """The service of ``keyring``, shared through ``store`` when one is given.

        Without ``keyring``: the ring of ``<state_dir>/keyring.json`` (made if missing),
        or, when only ``store`` keeps it (no ``state_dir``), a ring in memory that
        ``start`` fills from the store."""
        if keyring is None:
            shared_only = store is not None and state_dir is None
            keyring = KeyRing.in_memory() if shared_only else KeyRing.open(state_dir)
        shared = None if store is None else SharedKeyRing(keyring, store)
        return cls(keyring, shared, poll=poll)

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Adopt and follow the shared store, or start polling the keyring file.

        Raises:
            KeyRingError: the shared store cannot be reached or holds no valid keyring.
            RuntimeError: after :meth:`aclose`.
        """
        if self._closed:
            raise RuntimeError("the key service is closed")
        if self.shared is not None:
            await self.shared.start()
        elif self.keyring.path is not None and self._poll > 0:
            self._watcher = KeyRingWatcher(self.keyring, interval=self._poll)
            await self._watcher.start()

    async def aclose(self) -> None:
        """Stop following the store or polling the file. Idempotent."""
        self._closed = True
        if self._watcher is not None:
            await self._watcher.aclose()
        if self.shared is not None:
            await self.shared.aclose()

    async def __aenter__(self) -> KeyService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def reload_on_sighup(self) -> Callable[[], None]:
        """Have SIGHUP reload the keyring (from the shared store when there is one) until
        the returned function is called. Does nothing off the main thread or where there
        is no SIGHUP. Call it on the running event loop."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "SIGHUP"
        ):
            return lambda: None
        loop = asyncio.get_running_loop()
        if self.shared is not None:
            return on_sighup(loop, self.shared.check_soon)
        return install_sighup(self.keyring, loop)

    # --- operations -------------------------------------------------------------

    def list_keys(self) -> list[Key]:
        return self.keyring.keys()

    async def generate_key(self, alg: str = "HS256") -> Key:
        """A new verify-only key (promote it to sign with it)."""
        wanted = {a.lower(): a for a in ALGORITHMS}.get(alg.lower())
        if wanted is None:
            raise ParsecError(
                "PARSEC_INVALID_ARGUMENT",
                f"unknown alg {alg!r}; use one of {', '.join(ALGORITHMS)}",
            )
        return await self._change(lambda ring: ring.generate(wanted))

    async def promote_key(self, kid: str) -> None:
        """Make ``kid`` the signing key; the old active key stays verify-only.
        PARSEC_KEY_NOT_FOUND for an unknown key, PARSEC_INVALID_ARGUMENT for a retired one."""
        await self._change(lambda ring: ring.promote(kid))

    async def retire_key(self, kid: str) -> None:
        """Retire a key: tokens it signed are refused from now on. PARSEC_KEY_NOT_FOUND for
        an unknown key, PARSEC_KEY_ACTIVE for the active one."""
        await self._change(lambda ring: ring.retire(kid))

    async def reload_keys(self) -> None:
        """Re-read the keyring from its store (after another process changed it)."""
        try:
            if self.shared is None:
                self.keyring.reload()
            else:
                await self.shared.reload()
        except KeyRingError as exc:
            raise ParsecError(exc.code, str(exc)) from None

    async def _change(self, change: Callable[[KeyRing], _T]) -> _T:
        try:
            if self.shared is None:
                return change(self.keyring)
            return await self.shared.update(change)
        except KeyRingError as exc:
            raise ParsecError(exc.code, str(exc)) from None
