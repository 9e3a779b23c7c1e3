"""cancel_and_wait: stops tasks, even one that swallows its first cancellation."""

from __future__ import annotations

import asyncio

from parsec.engine.aio import cancel_and_wait


async def test_stops_running_tasks() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(forever()) for _ in range(3)]
    await started.wait()
    await cancel_and_wait(*tasks)
    assert all(task.cancelled() for task in tasks)


async def test_a_lost_cancellation_is_repeated() -> None:
    """A task that swallows one cancel (as asyncio.wait_for can on Python 3.11) and
    goes on looping is still stopped."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait(task)
    assert task.cancelled()
    assert swallowed == 1


async def test_a_failed_task_does_not_raise() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)
