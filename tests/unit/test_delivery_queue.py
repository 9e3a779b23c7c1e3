"""DeliveryQueue's lifecycle: it runs once (the engine's RunState), takes work only
while running, and closing is idempotent."""

from __future__ import annotations

import pytest

from parsec.engine.lifecycle import IllegalTransition
from parsec.errors import ParsecError
from parsec.services.delivery import DeliveryQueue, DeliverySettings
from parsec.sinks import MemoryDLQ, Message
from parsec.sinks.base import SinkRegistry
from parsec.sinks.retry import RetryingSender


def _queue() -> DeliveryQueue:
    return DeliveryQueue(RetryingSender(SinkRegistry(), MemoryDLQ()), DeliverySettings())


async def test_a_queue_starts_once_and_closes_once() -> None:
    """Start twice raises IllegalTransition; aclose twice is fine; closed stays closed."""
    queue = _queue()
    queue.start()
    with pytest.raises(IllegalTransition, match="a delivery queue cannot go from running"):
        queue.start()
    await queue.aclose()
    await queue.aclose()
    with pytest.raises(IllegalTransition, match="from closed to running"):
        queue.start()


@pytest.mark.parametrize("started", [False, True])
async def test_submit_needs_a_running_queue(started: bool) -> None:
    """A queue not started, or closed, refuses work with PARSEC_SINK_UNAVAILABLE."""
    queue = _queue()
    if started:
        queue.start()
        await queue.aclose()
    with pytest.raises(ParsecError) as refused:
        queue.submit("webhook", {"url": "http://127.0.0.1:9/"}, Message(subject="s", body="b"))
    assert refused.value.code == "PARSEC_SINK_UNAVAILABLE"
    assert ("closed" if started else "new") in str(refused.value)
