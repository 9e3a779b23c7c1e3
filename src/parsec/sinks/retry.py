"""Retries with exponential backoff, and the dead-letter queue for what still fails.

:class:`RetryingSender` sends through a :class:`~parsec.sinks.base.SinkRegistry`:

* The wait before attempt ``n >= 2`` is ``base_backoff * 2 ** (n - 2)``, capped at
  ``max_backoff``, times a factor drawn uniformly from ``[1 - jitter, 1 + jitter)``. A
  receiver's Retry-After (``SinkError.retry_after``) replaces the wait when it is longer.
* Transient failures are retried up to ``max_attempts`` attempts in all
  (``max_attempts = 1`` disables retrying); a terminal failure stops at once. The
  classification is :func:`parsec.sinks.base.classify_error`'s.
* A delivery that still fails lands in the DLQ with the recipient's JSON form, and
  ``send`` returns ``DeliveryOutcome(delivered=False, dlq_id=…)``: failing to deliver is
  not an exception. Only a failed DLQ push raises, as
  ``ParsecError("PARSEC_SINK_DLQ_OVERFLOW", …)``.
* A delivery cancelled while sending or waiting lands in the DLQ (``last_error``
  ``"delivery cancelled"``) and the cancellation propagates.
* The metrics hooks see every attempt and every DLQ size change made here.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from parsec.errors import ParsecError
from parsec.observability import tracing
from parsec.sinks.base import Message, Sink, SinkError, SinkRegistry, classify_error
from parsec.sinks.dlq import DLQ
from parsec.sinks.metrics import (
    OUTCOME_OK,
    OUTCOME_TERMINAL,
    OUTCOME_TRANSIENT,
    NoopSinkMetrics,
    SinkMetrics,
)

__all__ = ["DeliveryOutcome", "RetryPolicy", "RetryingSender"]

_log = logging.getLogger("parsec.sinks")
_CANCELLED: Final = "delivery cancelled"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry. Raises ValueError for values outside:
    ``max_attempts >= 1``, ``0 <= base_backoff <= max_backoff``, ``0 <= jitter <= 1``."""

    max_attempts: int = 5
    base_backoff: float = 1.0
    max_backoff: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts!r}")
        if not 0 <= self.base_backoff <= self.max_backoff:
            raise ValueError(
                f"need 0 <= base_backoff <= max_backoff, got {self.base_backoff!r} "
                f"and {self.max_backoff!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")

    def backoff(self, attempt: int, draw: float) -> float:
        """Seconds to wait before ``attempt`` (2 or more), for a uniform ``draw`` in
        ``[0, 1)``: ``min(base * 2**(attempt-2), max) * (1 - jitter + 2 * jitter * draw)``."""
        exponent = max(attempt - 2, 0)
        capped = min(self.base_backoff * 2.0 ** min(exponent, 64), self.max_backoff)
        return capped * (1 - self.jitter + 2 * self.jitter * draw)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a delivery ended: ``delivered`` after ``attempts`` attempts, or dead-lettered
    as ``dlq_id`` with ``last_error`` (empty when delivered)."""

    delivered: bool
    attempts: int
    dlq_id: str | None
    last_error: str


class RetryingSender:
    """Sends through the sinks of ``registry`` with retries; dead-letters into ``dlq``.

    ``per_sink`` overrides ``policy`` by sink name. ``sleep``, ``random`` (uniform in
    ``[0, 1)``) and ``clock`` (unix seconds; item times and attempt durations) are
    injectable so tests control time.
    """

    def __init__(
        self,
        registry: SinkRegistry,
        dlq: DLQ,
        *,
        policy: RetryPolicy = RetryPolicy(),
        per_sink: Mapping[str, RetryPolicy] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.dlq = dlq
        self._policy = policy
        self._per_sink = dict(per_sink or {})
        self._sleep = sleep
        self._random = random
        self._clock = clock
        self._metrics: SinkMetrics = metrics or NoopSinkMetrics()

    def policy_for(self, sink: str) -> RetryPolicy:
        """The policy deliveries to ``sink`` follow."""
        return self._per_sink.get(sink, self._policy)

    async def send(self, sink: str, recipient: object, message: Message) -> DeliveryOutcome:
        """Deliver ``message`` to ``recipient`` (typed or JSON form) through ``sink``.

        Raises ParsecError ``PARSEC_SINK_CONFIG_INVALID`` for an unknown sink and
        ``PARSEC_INVALID_ARGUMENT`` for a recipient the sink cannot use, both before any
        attempt; ``PARSEC_SINK_DLQ_OVERFLOW`` when dead-lettering fails.
        """
        target = self.registry.get(sink)
        encoded = target.encode_recipient(recipient)
        with tracing.tracer().span("sink.deliver", {"parsec.sink": sink}):
            return await self._deliver(target, encoded, message)

    async def replay(self, id: str) -> DeliveryOutcome:
        """Send DLQ item ``id`` again through its sink (with retries). The item stays in
        the queue; a failed replay pushes a new item. Raises ParsecError
        ``PARSEC_SINK_DLQ_NOT_FOUND`` for an unknown id and ``PARSEC_SINK_CONFIG_INVALID``
        when the item's sink is no longer registered."""
        item = await self.dlq.get(id)
        if item is None:
            raise ParsecError("PARSEC_SINK_DLQ_NOT_FOUND", f"no dead-letter item {id!r}")
        target = self.registry.get(item.sink)
        with tracing.tracer().span("sink.replay", {"parsec.sink": item.sink}):
            encoded = target.encode_recipient(item.recipient)
            return await self._deliver(target, encoded, item.message)

    async def discard(self, id: str) -> bool:
        """Remove DLQ item ``id`` and report the sink's new DLQ size; False when there
        was no such item."""
        item = await self.dlq.get(id)
        if item is None or not await self.dlq.discard(id):
            return False
        self._metrics.dlq_size(item.sink, await self.dlq.count(item.sink))
        return True

    async def _deliver(self, target: Sink, encoded: object, message: Message) -> DeliveryOutcome:
        recipient = target.decode_recipient(encoded)
        policy = self.policy_for(target.name)
        attempts = 0
        try:
            error = await self._attempt(target, recipient, message)
            attempts = 1
            while error is not None and error.transient and attempts < policy.max_attempts:
                await self._sleep(self._wait(policy, attempts + 1, error))
                error = await self._attempt(target, recipient, message)
                attempts += 1
        except asyncio.CancelledError:
            await self._dead_letter_on_cancel(target.name, encoded, message, attempts)
            raise
        if error is None:
            return DeliveryOutcome(True, attempts, None, "")
        dlq_id = await self._dead_letter(target.name, encoded, message, attempts, error.message)
        return DeliveryOutcome(False, attempts, dlq_id, error.message)

    async def _attempt(self, target: Sink, recipient: object, message: Message) -> SinkError | None:
        started = self._clock()
        try:
            await target.send(recipient, message)
        except Exception as e:
            error = classify_error(e)
            outcome = OUTCOME_TRANSIENT if error.transient else OUTCOME_TERMINAL
            self._metrics.attempt(target.name, outcome, self._clock() - started)
            _log.info(
                "sink attempt failed",
                extra={"sink": target.name, "outcome": outcome, "error": error.message},
            )
            return error
        self._metrics.attempt(target.name, OUTCOME_OK, self._clock() - started)
        return None

    def _wait(self, policy: RetryPolicy, attempt: int, error: SinkError) -> float:
        wait = policy.backoff(attempt, self._random())
        if error.retry_after is not None and error.retry_after > wait:
            return error.retry_after
        return wait

    async def _dead_letter(
        self, sink: str, recipient: object, message: Message, attempts: int, last_error: str
    ) -> str:
        try:
            id = await self.dlq.push(
                sink,
                recipient,
                message,
                attempts=attempts,
                last_error=last_error,
                at=self._clock(),
            )
            size = await self.dlq.count(sink)
        except ParsecError as e:
            if e.code == "PARSEC_SINK_DLQ_OVERFLOW":
                raise
            raise _overflow(sink, e.message) from e
        except Exception as e:
            raise _overflow(sink, type(e).__name__) from e
        self._metrics.dlq_size(sink, size)
        _log.warning(
            "delivery dead-lettered",
            extra={"sink": sink, "dlq_id": id, "attempts": attempts, "error": last_error},
        )
        return id

    async def _dead_letter_on_cancel(
        self, sink: str, recipient: object, message: Message, attempts: int
    ) -> None:
        try:
            await self._dead_letter(sink, recipient, message, attempts, _CANCELLED)
        except ParsecError:
            _log.exception("could not dead-letter a cancelled delivery", extra={"sink": sink})


def _overflow(sink: str, reason: str) -> ParsecError:
    return ParsecError(
        "PARSEC_SINK_DLQ_OVERFLOW", f"could not dead-letter a failed delivery to {sink!r}: {reason}"
    )
