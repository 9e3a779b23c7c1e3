"""Reloading the keyring when its file changes: a polling watcher and a SIGHUP handler.

Another process (``parsec keys …``, a ``keys import``, an operator's editor) may rewrite
``keyring.json`` at any time. :class:`KeyRingWatcher` notices within ``interval`` seconds and
:func:`install_sighup` reloads at once on ``kill -HUP``. Both keep the last good ring when the
file is bad: the failure is logged on the ``parsec.auth`` logger, never raised, and the next
change is tried again. A reload swaps the ring's keys in one step, so connections already
open are untouched and tokens of keys that are still active or verify-only keep verifying.

A node whose keyring is shared through a store (Redis) runs no file watcher: the store's
document is the ring, and the file is only its cache (see ``parsec.auth.shared_keyring``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Self, TypeAlias

from parsec.auth.keyring import KeyRingError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from parsec.auth.keyring import KeyRing

__all__ = ["DEFAULT_INTERVAL", "KeyRingWatcher", "ReloadCallback", "install_sighup", "on_sighup"]

DEFAULT_INTERVAL: Final = 5.0
"""Seconds between two looks at the file (the Go Parsec's ``KeyringPollInterval``)."""

ReloadCallback: TypeAlias = Callable[[KeyRingError | None], object]
"""Called after each reload attempt with None (reloaded) or the error (last good ring kept)."""

logger = logging.getLogger("parsec.auth")

_FileSignature = tuple[int, int, int]


class KeyRingWatcher:
    """Polls the keyring file every ``interval`` seconds and reloads the ring when it changed.

    A change is any difference in the file's modification time, size or inode (an atomic
    replace changes the inode), or the file disappearing or reappearing. An ephemeral ring
    (no file) is not watched. ``on_reload`` is told the outcome of every reload attempt; an
    exception it raises is logged and ignored.

    Use as ``async with KeyRingWatcher(ring): …`` or call :meth:`start` then :meth:`aclose`.

    Raises:
        ValueError: ``interval`` is not a positive number of seconds.
    """

    def __init__(
        self,
        keyring: KeyRing,
        *,
        interval: float = DEFAULT_INTERVAL,
        on_reload: ReloadCallback | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self._keyring = keyring
        self._interval = interval
        self._on_reload = on_reload
        self._last = None if keyring.path is None else _signature(keyring.path)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Start polling. A change made since the watcher was created is noticed at the
        first poll.

        Raises:
            RuntimeError: the watcher was already started or closed.
        """
        if self._task is not None or self._closed:
            raise RuntimeError("a KeyRingWatcher can be started once")
        if self._keyring.path is None:
            self._closed = True
            return
        self._task = asyncio.create_task(self._run(), name="parsec-keyring-watcher")

    async def aclose(self) -> None:
        """Stop polling; waits for the poller to end. Closing again does nothing."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def poll(self) -> bool:
        """Look at the file once, reloading the ring if it changed since the last look (or,
        the first time, since the watcher was created).

        Returns:
            Whether the file had changed (and a reload was attempted). Never raises for a bad
            file: the error is logged and passed to ``on_reload``.
        """
        path = self._keyring.path
        if path is None:
            return False
        current = _signature(path)
        if current == self._last:
            return False
        self._last = current
        _reload(self._keyring, "the keyring file changed", self._on_reload)
        return True

    async def _run(self) -> None:
        """Poll until cancelled; an unexpected failure is logged and the next poll goes on."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.poll()
            except Exception:
                logger.exception("the keyring watcher failed to check %s", self._keyring.path)

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


def install_sighup(
    keyring: KeyRing,
    loop: asyncio.AbstractEventLoop,
    *,
    on_reload: ReloadCallback | None = None,
) -> Callable[[], None]:
    """Reload ``keyring`` on every SIGHUP delivered to this process, on ``loop``.

    Must be called from the main thread (asyncio's rule for signal handlers); Unix only.

    Returns:
        A function that removes the handler and puts back the SIGHUP handler that was there
        before; calling it again does nothing.
    """
    return on_sighup(loop, lambda: _reload(keyring, "SIGHUP", on_reload))


def on_sighup(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], object]
) -> Callable[[], None]:
    """Call ``callback`` on ``loop`` for every SIGHUP delivered to this process (with a
    shared keyring, SIGHUP has the node read the store instead of the file).

    Must be called from the main thread; Unix only. Returns the uninstaller, as
    :func:`install_sighup` does.
    """
    previous = signal.getsignal(signal.SIGHUP)
    loop.add_signal_handler(signal.SIGHUP, callback)
    installed = True

    def uninstall() -> None:
        nonlocal installed
        if not installed:
            return
        installed = False
        loop.remove_signal_handler(signal.SIGHUP)
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)

    return uninstall


def _reload(keyring: KeyRing, why: str, on_reload: ReloadCallback | None) -> None:
    """Reload, logging the outcome; never raises."""
    error: KeyRingError | None = None
    try:
        keyring.reload()
    except KeyRingError as exc:
        error = exc
        logger.warning(
            "%s, but the keyring was not reloaded; keeping the last good one: %s", why, exc
        )
    else:
        logger.info("%s: keyring reloaded, active key %s", why, keyring.active.id)
    if on_reload is not None:
        try:
            on_reload(error)
        except Exception:
            logger.exception("the keyring on_reload callback failed")


def _signature(path: Path) -> _FileSignature | None:
    """``(mtime_ns, size, inode)`` of ``path``, or None when it cannot be looked at."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
