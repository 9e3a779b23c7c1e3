"""Event handlers that record what a backend delivers, for tests to await and inspect."""

from __future__ import annotations

import asyncio
from typing import Literal

from parsec.backends.testing import (
    WAIT_SECONDS,
    BrokerRecorder,
    Delivered,
    JoinLeave,
    payload,
    publication,
)
from parsec.engine.controller import ControlCommand, NodeInfo

__all__ = [
    "WAIT_SECONDS",
    "BrokerRecorder",
    "ControlRecorder",
    "Delivered",
    "JoinLeave",
    "SurveyFailed",
    "payload",
    "publication",
]


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
