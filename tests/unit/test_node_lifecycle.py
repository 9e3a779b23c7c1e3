"""Node lifecycle: its states, and the tasks it owns (spawn, drained by aclose)."""

from __future__ import annotations

import asyncio
import enum
import logging

import pytest
from fake_cluster import FakeCluster

from parsec.auth.tokens import TokenVerifier
from parsec.backends.memory import MemoryBroker, MemoryPresenceManager
from parsec.channels.namespaces import ChannelRules
from parsec.engine.lifecycle import IllegalTransition, advance
from parsec.engine.node import Node
from parsec.options import Options


def _node() -> Node:
    options = Options()
    return Node(
        options,
        TokenVerifier(None, hmac_secret="s" * 32),
        rules=ChannelRules.from_options(options),
        broker=MemoryBroker(),
        presence=MemoryPresenceManager(),
        controller=FakeCluster(),
    )


class _Door(enum.Enum):
    SHUT = "shut"
    OPEN = "open"


def test_advance_allows_what_the_table_allows_and_names_a_refused_move() -> None:
    """An allowed move returns the new state; a refused one raises IllegalTransition
    (a RuntimeError) naming the object and both states."""
    table = {_Door.SHUT: frozenset({_Door.OPEN}), _Door.OPEN: frozenset()}

    assert advance("door", _Door.SHUT, _Door.OPEN, table) is _Door.OPEN
    with pytest.raises(IllegalTransition, match="door cannot go from open to shut"):
        advance("door", _Door.OPEN, _Door.SHUT, table)
    assert issubclass(IllegalTransition, RuntimeError)


async def test_a_node_starts_once_and_closes_idempotently() -> None:
    """start, then a second start raises; aclose twice is fine; a closed node does
    not start again."""
    node = _node()
    await node.start()
    assert node.running
    with pytest.raises(RuntimeError, match="from running to running"):
        await node.start()
    await node.aclose()
    await node.aclose()
    assert not node.running
    with pytest.raises(RuntimeError, match="from closed to running"):
        await node.start()


async def test_aclose_cancels_and_awaits_every_spawned_task() -> None:
    """Tasks the node spawned and that still run are cancelled by aclose, which
    returns once they have ended; finished ones are no longer kept."""
    node = _node()
    await node.start()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def quick() -> None:
        pass

    running = node.spawn(forever(), name="forever")
    done = node.spawn(quick())
    await started.wait()
    await done
    await asyncio.sleep(0)
    assert done not in node._tasks
    assert running in node._tasks

    await node.aclose()

    assert running.cancelled()
    assert not node._tasks


async def test_a_failing_task_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A spawned task that fails is logged with its name and traceback; nobody
    needs to await it."""
    node = _node()

    async def broken() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="parsec.node"):
        task = node.spawn(broken(), name="broken-task")
        await asyncio.wait([task])
        await asyncio.sleep(0)
    failures = [r for r in caplog.records if "broken-task" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    await node.aclose()


async def test_a_closed_node_spawns_nothing() -> None:
    """spawn on a closed node raises RuntimeError and closes the coroutine (no
    'never awaited' warning)."""
    node = _node()
    await node.aclose()
    ran = False

    async def job() -> None:
        nonlocal ran
        ran = True

    with pytest.raises(RuntimeError, match="closed"):
        node.spawn(job())
    await asyncio.sleep(0)
    assert not ran
