"""Cleanups: the work closed sessions leave behind, run by the node a few at a time.

When a session closes, what it held elsewhere must go too: the node's broker
subscription of a channel it was the last local subscriber of, its presence entries and
the leave events of its channels. Clients leave together — a network blip, a load
balancer restarting, a node shutting down — and a thousand cleanups at once would ask
the broker for a thousand connections at once. So each closed session's cleanup is a
task the node owns (``submit``) and at most ``limit`` of them run at once; the others
wait their turn, nothing is dropped. ``drain`` waits for every one of them, so a node
that shuts down removes its sessions' presence and sends their leaves before its
backends close. The unsubscribes a session starts from a timer or the fan-out (an
expired subscription, a lost position), which nothing could await, run here too.

A cleanup that cannot reach the broker (it is down, or its connections stayed busy)
leaves that session's remaining presence entries to expire on their own within the
presence TTL (no node refreshes them any more) and its remaining leave events unsent.
``failed`` reports that concisely, without a traceback, at most once every
``REPORT_INTERVAL`` seconds for all the sessions it happened to meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from parsec.engine.codes import ClientError

__all__ = ["DRAIN_TIMEOUT", "REPORT_INTERVAL", "Cleanups"]

log = logging.getLogger("parsec.node")

REPORT_INTERVAL = 10.0
"""Seconds between two reports of cleanups that failed at the broker."""
DRAIN_TIMEOUT = 10.0
"""How long a node that shuts down waits for its sessions' cleanups before it cancels
the rest (whose presence then expires on its own)."""


class Cleanups:
    """The cleanups of one node's closed sessions; see the module docstring."""

    def __init__(self, limit: int, *, presence_ttl: float) -> None:
        if limit < 1:
            raise ValueError(f"at least one cleanup must be able to run, not {limit}")
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._presence_ttl = presence_ttl
        self._failed_sessions = 0
        self._failed_channels = 0
        self._last_error: ClientError | None = None
        self._report: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        """Cleanups submitted that have not ended yet (running or waiting their turn)."""
        return len(self._tasks)

    def submit(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``job`` once fewer than ``limit`` cleanups run, as a task kept here until
        it ends. Awaiting the task (shielded) waits for the job; cancelling a waiter
        does not cancel the job."""
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace: float = DRAIN_TIMEOUT) -> None:
        """Wait until every cleanup submitted, also while waiting, has ended; cancel
        what still runs after ``grace`` seconds (and say so). Reports pending failures
        before it returns."""
        try:
            async with asyncio.timeout(grace):
                while self._tasks:
                    await asyncio.wait(list(self._tasks))
        except TimeoutError:
            unfinished = list(self._tasks)
            log.warning(
                "%d session cleanup(s) still unfinished after %gs of shutdown were "
                "cancelled: their presence expires within %gs, their leaves are lost",
                len(unfinished),
                grace,
                self._presence_ttl,
            )
            for task in unfinished:
                task.cancel()
            await asyncio.wait(unfinished)
        finally:
            if self._report is not None:
                self._report.cancel()
            self._flush(again=False)

    def failed(self, channels: int, error: Exception) -> None:
        """A session's cleanup stopped at ``error``, leaving the presence and leaves of
        ``channels`` channels undone. A broker failure (a ClientError) is reported at
        once when none was in the last REPORT_INTERVAL, else with the next report; any
        other error is a bug, logged with its traceback."""
        if not isinstance(error, ClientError):
            log.error("a closed session's cleanup failed", exc_info=error)
            return
        self._failed_sessions += 1
        self._failed_channels += channels
        self._last_error = error
        if self._report is None:
            self._flush()

    async def _run(self, job: Coroutine[Any, Any, None]) -> None:
        async with self._slots:
            try:
                await job
            except Exception as exc:
                self.failed(0, exc)

    def _flush(self, *, again: bool = True) -> None:
        """Report the failures since the last report, and (``again``) hold the next one
        back for REPORT_INTERVAL; with nothing to report, the next failure is reported
        at once."""
        self._report = None
        if not self._failed_sessions:
            return
        error = self._last_error
        log.warning(
            "%d session cleanup(s) failed at the broker (%s): the presence they left "
            "in %d channel(s) expires within %gs, and those leaves are lost",
            self._failed_sessions,
            error.message if error is not None else "",
            self._failed_channels,
            self._presence_ttl,
        )
        self._failed_sessions = self._failed_channels = 0
        self._last_error = None
        if again:
            self._report = asyncio.get_running_loop().call_later(REPORT_INTERVAL, self._flush)
