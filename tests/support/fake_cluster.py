"""A Controller that plays the rest of the cluster in unit tests."""

from __future__ import annotations

from collections.abc import Iterable

from parsec.engine.controller import ControlCommand, ControlEventHandler, NodeInfo, SurveyReply
from parsec.errors import ParsecError

__all__ = ["FakeCluster"]


class FakeCluster:
    """Every survey gets ``replies`` (the questions are kept in ``asked``); broadcasts are
    kept in ``sent``, or fail with PARSEC_BROKER_NOT_READY while ``down``."""

    def __init__(self, replies: Iterable[SurveyReply] = ()) -> None:
        self.replies = list(replies)
        self.asked: list[tuple[str, bytes, float]] = []
        self.sent: list[ControlCommand] = []
        self.down = False

    async def start(self, handler: ControlEventHandler) -> None:
        """Nothing to start."""

    async def broadcast(self, command: ControlCommand) -> None:
        if self.down:
            raise ParsecError(
                "PARSEC_BROKER_NOT_READY", "the cluster is unreachable"
            ).client_error()
        self.sent.append(command)

    async def nodes(self) -> list[NodeInfo]:
        return []

    async def survey(
        self,
        op: str,
        data: bytes,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> list[SurveyReply]:
        self.asked.append((op, data, timeout))
        return self.replies

    async def aclose(self) -> None:
        """Nothing to close."""
