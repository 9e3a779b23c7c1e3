"""Waiting for a condition that has no event to await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["WAIT", "until"]

WAIT = 5.0
"""How long ``until`` waits: a deadline for slow machines, not a performance claim."""


async def until(condition: Callable[[], bool], *, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    """Return once ``condition()`` holds; TimeoutError after ``timeout`` seconds. The
    condition is looked at every few milliseconds."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
