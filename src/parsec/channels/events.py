"""Channel lifecycle events: what happened, how a subscriber receives them, and the
bus that carries them between nodes.

A :class:`ChannelManager` emits an event for every transition it makes (``opened``,
``closed``, ``deleted``) to its local :class:`EventSubscription` s and, when it has a
:class:`ChannelEventBus`, to the managers of every other node sharing its store, which
hand them to their own subscriptions. Delivery between nodes is at-most-once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeAlias

__all__ = ["EVENT_BUFFER", "ChannelEvent", "ChannelEventBus", "EventKind", "EventSubscription"]

EventKind: TypeAlias = Literal["opened", "closed", "deleted"]

EVENT_BUFFER: Final = 64
"""Events a subscription holds before it drops the oldest."""


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A lifecycle transition: ``kind`` happened to channel ``name`` at ``at`` (unix s)."""

    kind: EventKind
    name: str
    at: float


class EventSubscription:
    """An async iterator over the events emitted after it was created.

    It holds at most ``EVENT_BUFFER`` undelivered events; when a new one arrives on a full
    buffer the oldest is dropped and counted in :attr:`dropped`. Iteration ends after
    :meth:`aclose` or once the manager is closed, when the buffered events are drained.
    A subscription nobody references any more is forgotten by the manager.
    """

    __slots__ = ("__weakref__", "_buffer", "_closed", "_dropped", "_ready")

    def __init__(self) -> None:
        self._buffer: deque[ChannelEvent] = deque(maxlen=EVENT_BUFFER)
        self._ready = asyncio.Event()
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """How many events this subscription lost because it fell behind."""
        return self._dropped

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> ChannelEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop receiving events; those already buffered are still delivered. Idempotent."""
        self._end()

    def _push(self, event: ChannelEvent) -> None:
        if self._closed:
            return
        if len(self._buffer) == EVENT_BUFFER:
            self._dropped += 1
        self._buffer.append(event)
        self._ready.set()

    def _end(self) -> None:
        self._closed = True
        self._ready.set()


class ChannelEventBus(Protocol):
    """Carries lifecycle events between the nodes that share one ChannelStore.

    Guarantees: ``publish`` reaches every other node's ``deliver`` callback at most once
    and never this node's own; ``deliver`` is called on the event loop and must not
    block. ``aclose`` is idempotent.
    """

    async def start(self, deliver: Callable[[ChannelEvent], None]) -> None:
        """Begin handing other nodes' events to ``deliver``. Called once."""

    async def publish(self, event: ChannelEvent) -> None:
        """Send one of this node's events to every other node."""

    async def aclose(self) -> None:
        """Stop. Idempotent."""
