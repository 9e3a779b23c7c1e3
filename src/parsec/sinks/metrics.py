"""Metrics hooks of out-of-band delivery.

:class:`parsec.sinks.retry.RetryingSender` calls a :class:`SinkMetrics` after every
attempt (sink, outcome, seconds it took) and whenever it changes a sink's DLQ (the
sink's new DLQ size). The observability layer exports these; :class:`NoopSinkMetrics`
is the default and :class:`RecordingSinkMetrics` keeps everything for tests.

Hooks are called synchronously on the sending task and must not raise or block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

__all__ = [
    "OUTCOMES",
    "OUTCOME_OK",
    "OUTCOME_TERMINAL",
    "OUTCOME_TRANSIENT",
    "Attempt",
    "NoopSinkMetrics",
    "RecordingSinkMetrics",
    "SinkMetrics",
]

OUTCOME_OK: Final = "ok"
"""The attempt delivered the message."""
OUTCOME_TRANSIENT: Final = "transient"
"""The attempt failed and a retry may help."""
OUTCOME_TERMINAL: Final = "terminal"
"""The attempt failed and no retry will help."""
OUTCOMES: Final = (OUTCOME_OK, OUTCOME_TRANSIENT, OUTCOME_TERMINAL)


class SinkMetrics(Protocol):
    """Receives delivery measurements."""

    def attempt(self, sink: str, outcome: str, seconds: float) -> None:
        """One send attempt to ``sink`` ended with ``outcome`` (one of ``OUTCOMES``)
        after ``seconds``."""
        ...

    def dlq_size(self, sink: str, size: int) -> None:
        """``sink``'s dead-letter queue now holds ``size`` items."""
        ...


class NoopSinkMetrics:
    """Ignores every measurement."""

    def attempt(self, sink: str, outcome: str, seconds: float) -> None:
        """Ignored."""

    def dlq_size(self, sink: str, size: int) -> None:
        """Ignored."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded attempt."""

    sink: str
    outcome: str
    seconds: float


@dataclass(slots=True)
class RecordingSinkMetrics:
    """Keeps every attempt in order and the latest DLQ size per sink."""

    attempts: list[Attempt] = field(default_factory=list)
    dlq_sizes: dict[str, int] = field(default_factory=dict)

    def attempt(self, sink: str, outcome: str, seconds: float) -> None:
        self.attempts.append(Attempt(sink, outcome, seconds))

    def dlq_size(self, sink: str, size: int) -> None:
        self.dlq_sizes[sink] = size

    def outcomes(self, sink: str) -> list[str]:
        """The outcomes of ``sink``'s attempts, in order."""
        return [a.outcome for a in self.attempts if a.sink == sink]


_noop: type[SinkMetrics] = NoopSinkMetrics
_recording: type[SinkMetrics] = RecordingSinkMetrics
