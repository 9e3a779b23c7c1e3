"""For testing a backend against the contracts: a BrokerEventHandler that records.

``BrokerRecorder`` stands in for the Node a Broker delivers to: it queues every
publication, join and leave in arrival order and lets a test await them. Parsec's own
conformance suite and backend tests use it; so can the author of another Broker.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Literal

import msgspec

from parsec.engine.types import ClientInfo, Publication, StreamPosition

__all__ = [
    "WAIT_SECONDS",
    "BrokerRecorder",
    "Delivered",
    "Event",
    "JoinLeave",
    "payload",
    "publication",
]

WAIT_SECONDS = 5.0
"""How long ``BrokerRecorder.take`` waits for an event before failing."""


def publication(value: object) -> Publication:
    """A fresh Publication whose data is ``value`` as compact JSON."""
    return Publication(data=msgspec.Raw(json.dumps(value, separators=(",", ":")).encode()))


def payload(pub: Publication) -> object:
    """The JSON value a publication carries."""
    return json.loads(bytes(pub.data))


@dataclass(frozen=True, slots=True)
class Delivered:
    """A publication the broker handed to the node."""

    channel: str
    pub: Publication
    position: StreamPosition


@dataclass(frozen=True, slots=True)
class JoinLeave:
    """A join or leave the broker handed to the node."""

    kind: Literal["join", "leave"]
    channel: str
    info: ClientInfo


Event = Delivered | JoinLeave


class BrokerRecorder:
    """A BrokerEventHandler that queues every event in arrival order."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        """Received events no ``take`` has returned yet, oldest first."""
        self.gaps: list[str] = []
        """Channels the broker reported lost publications of (handle_gap)."""

    def handle_publication(self, channel: str, pub: Publication, position: StreamPosition) -> None:
        self.events.put_nowait(Delivered(channel, pub, position))

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self.events.put_nowait(JoinLeave("join", channel, info))

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self.events.put_nowait(JoinLeave("leave", channel, info))

    def handle_gap(self, channel: str) -> None:
        self.gaps.append(channel)

    async def take(self, count: int) -> list[Event]:
        """The next ``count`` events, awaited; TimeoutError if they do not arrive
        within ``WAIT_SECONDS``."""
        async with asyncio.timeout(WAIT_SECONDS):
            return [await self.events.get() for _ in range(count)]

    async def publications(self, count: int) -> list[Delivered]:
        """The next ``count`` events, which must all be publications."""
        events = await self.take(count)
        delivered = [e for e in events if isinstance(e, Delivered)]
        assert delivered == events, f"expected only publications, got {events}"
        return delivered

    def pending(self) -> int:
        """How many received events no ``take`` has returned yet."""
        return self.events.qsize()
