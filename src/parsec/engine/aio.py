"""Small asyncio helpers shared by every I/O owner (the engine and every layer above)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger("parsec")

_RECANCEL_AFTER = 0.1


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and return once every one has ended.

    A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` (which redis-py
    wraps around socket operations) swallows a cancel that arrives as its inner
    operation completes, and the task carries on. So a task still running after
    ``_RECANCEL_AFTER`` seconds is cancelled again, until it ends. A task that had
    failed on its own is logged, not raised: stopping goes on for the others.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_AFTER)
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s had failed", task.get_name(), exc_info=exc)
