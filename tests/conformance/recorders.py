"""Event handlers that record what a backend delivers, for tests to await and inspect."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Literal

import msgspec

from parsec.engine.controller import ControlCommand, NodeInfo
from parsec.engine.types import ClientInfo, Publication, StreamPosition

__all__ = [
    "BrokerRecorder",
    "ControlRecorder",
    "Delivered",
    "JoinLeave",
    "SurveyFailed",
    "payload",
    "publication",
]

WAIT_SECONDS = 5.0
"""How long ``BrokerRecorder.take`` waits for an event before failing the test."""


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
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self.gaps: list[str] = []
        """Channels the broker reported lost publications of (handle_gap)."""

    def handle_publication(self, channel: str, pub: Publication, position: StreamPosition) -> None:
        self._events.put_nowait(Delivered(channel, pub, position))

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self._events.put_nowait(JoinLeave("join", channel, info))

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self._events.put_nowait(JoinLeave("leave", channel, info))

    def handle_gap(self, channel: str) -> None:
        self.gaps.append(channel)

    async def take(self, count: int) -> list[Event]:
        """The next ``count`` events, awaited; TimeoutError if they do not arrive."""
        async with asyncio.timeout(WAIT_SECONDS):
            return [await self._events.get() for _ in range(count)]

    async def publications(self, count: int) -> list[Delivered]:
        """The next ``count`` events, which must all be publications."""
        events = await self.take(count)
        delivered = [e for e in events if isinstance(e, Delivered)]
        assert delivered == events, f"expected only publications, got {events}"
        return delivered

    def pending(self) -> int:
        """How many received events no ``take`` has returned yet."""
        return self._events.qsize()


class SurveyFailed(Exception):
    """What a ControlRecorder told to fail raises from ``handle_survey``."""


SurveyMode = Literal["answer", "fail", "hang"]


class ControlRecorder:
    """A ControlEventHandler that keeps every command and survey it receives.

    It answers a survey with ``<name>:<op>:`` followed by the request's data; told to
    ``fail`` it raises SurveyFailed instead, told to ``hang`` it answers only once
    ``release`` is set.
    """

    def __init__(self, name: str = "conformance", *, survey: SurveyMode = "answer") -> None:
        self.name = name
        self.survey = survey
        self.release = asyncio.Event()
        self.commands: list[ControlCommand] = []
        self._arrived = asyncio.Event()
        self.surveys: list[tuple[str, bytes]] = []
        """Every survey asked of this handler, as (op, data), in arrival order."""
        self._info = NodeInfo(
            uid=f"{name}-uid",
            name=name,
            version="0.0.0",
            num_clients=0,
            num_users=0,
            num_channels=0,
            num_subs=0,
        )

    async def handle_control(self, command: ControlCommand) -> None:
        self.commands.append(command)
        self._arrived.set()

    async def received(self, count: int) -> list[ControlCommand]:
        """The first ``count`` commands, awaited; TimeoutError if they do not arrive."""
        async with asyncio.timeout(WAIT_SECONDS):
            while len(self.commands) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.commands[:count]

    def node_info(self) -> NodeInfo:
        return self._info

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        self.surveys.append((op, data))
        if self.survey == "fail":
            raise SurveyFailed(f"{self.name} refuses to answer {op!r}")
        if self.survey == "hang":
            await self.release.wait()
        return self.answer(op, data)

    def answer(self, op: str, data: bytes) -> bytes:
        """What this handler answers to survey ``op`` with ``data``."""
        return f"{self.name}:{op}:".encode() + data
