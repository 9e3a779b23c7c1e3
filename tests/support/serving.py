"""Serving an in-process Parsec on its configured address for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from parsec import Parsec

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(parsec: Parsec, *, wait: float) -> AsyncIterator[Parsec]:
    """Run ``parsec`` (already entered) until the block ends, once it accepts
    connections (within ``wait`` seconds); then close it and wait for ``run`` to return."""
    ready = asyncio.Event()
    running = asyncio.create_task(parsec.run(ready.set))
    try:
        async with asyncio.timeout(wait):
            await ready.wait()
        yield parsec
    finally:
        await parsec.aclose()
        async with asyncio.timeout(wait):
            await running
