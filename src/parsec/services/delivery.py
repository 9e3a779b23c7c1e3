"""The delivery service: out-of-band delivery through sinks, ``publish_or_sink`` and the
dead-letter queue.

::

    publish_or_sink(channel, data, sink, recipient, message, wait=True)
      ├─ someone listens on channel  ─► publish            SinkResult(sinked=False, position)
      └─ nobody listens              ─► wait=True:  RetryingSender.send   (returns when done)
                                        wait=False: DeliveryQueue.submit  (returns at once)

Who "listens": when the channel's namespace keeps presence, the cluster-wide presence
(``node.presence.presence_stats``) counts; otherwise this node's own subscribers do.
A managed channel (``public:`` / ``private:``) that is missing or closed delivers to
nobody, so publishing to it falls back to the sink as well. Nothing is ever both
published and sinked.

Background delivery (``wait=False``) goes through a bounded queue served by a fixed
number of worker tasks: a slow sink never blocks a publisher, and a full queue is
refused at once with ``PARSEC_SINK_UNAVAILABLE`` instead of waiting. On close, the queue
stops accepting, delivers what it holds until a deadline, and dead-letters the rest
(``last_error`` ``"not delivered before shutdown"`` or ``"delivery cancelled"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from parsec.engine.codes import ClientError
from parsec.engine.lifecycle import RUN_TRANSITIONS, RunState, advance
from parsec.engine.node import Node
from parsec.engine.types import StreamPosition
from parsec.errors import ParsecError
from parsec.options import Options
from parsec.services.payload import publication_bytes
from parsec.sinks.base import Message, SinkRegistry
from parsec.sinks.dlq import DLQ, DLQItem, MemoryDLQ
from parsec.sinks.metrics import SinkMetrics
from parsec.sinks.retry import DeliveryOutcome, RetryingSender

__all__ = [
    "DeliveryQueue",
    "DeliveryService",
    "DeliverySettings",
    "QueueState",
    "SinkResult",
    "go_duration",
]

log = logging.getLogger("parsec.sinks")

SHUTDOWN_ERROR: Final = "not delivered before shutdown"
CANCEL_GRACE: Final = 1.0
"""Seconds a cancelled delivery may take to wind up (and dead-letter itself) on close."""
_UNDELIVERABLE: Final = frozenset({"PARSEC_CHANNEL_CLOSED", "PARSEC_CHANNEL_NOT_FOUND"})
"""Publish failures meaning nobody can be listening: the message goes to the sink."""


@dataclass(frozen=True, slots=True)
class SinkResult:
    """What ``publish_or_sink`` did: published at ``position`` (``sinked`` False), or
    handed to the sink (``sinked`` True) with the delivery's ``outcome`` when the call
    waited for it (None when it was queued)."""

    sinked: bool
    position: StreamPosition | None
    outcome: DeliveryOutcome | None


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Background delivery: ``workers`` concurrent deliveries, at most ``capacity``
    messages waiting, and ``drain_timeout`` seconds for ``aclose`` to deliver them."""

    workers: int = 8
    capacity: int = 1000
    drain_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.capacity < 1:
            raise ValueError("workers and capacity must be at least 1")
        if not self.drain_timeout >= 0:
            raise ValueError("drain_timeout must not be negative")


QueueState = RunState
"""A DeliveryQueue's life (the engine's :class:`RunState`): new → running → closed
(new → closed when never started)."""


@dataclass(frozen=True, slots=True)
class _Job:
    sink: str
    recipient: object
    """The sink's JSON form of the recipient, validated when the job was submitted."""
    message: Message


class DeliveryQueue:
    """Delivers submitted messages in the background through a RetryingSender.

    States: new → running (``start``) → closed (``aclose``); ``submit`` works only
    while running. A delivery's failure never escapes a worker: the sender dead-letters
    it, and an error of the sender itself (a DLQ that cannot take the item) is logged.
    """

    def __init__(self, sender: RetryingSender, settings: DeliverySettings) -> None:
        self._sender = sender
        self._settings = settings
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(settings.capacity)
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        """Deliveries under way."""
        self._state = RunState.NEW

    def start(self) -> None:
        """Start the workers. Raises RuntimeError unless the queue is new."""
        self._state = advance("a delivery queue", self._state, RunState.RUNNING, RUN_TRANSITIONS)
        self._workers = [
            asyncio.create_task(self._work(), name=f"parsec-sink-worker-{n}")
            for n in range(self._settings.workers)
        ]

    def submit(self, sink: str, recipient: object, message: Message) -> None:
        """Queue one delivery and return at once. Raises ParsecError
        ``PARSEC_SINK_UNAVAILABLE`` when the queue is full or not running."""
        if self._state is not RunState.RUNNING:
            raise ParsecError(
                "PARSEC_SINK_UNAVAILABLE",
                f"background delivery is not running ({self._state.value})",
            )
        try:
            self._queue.put_nowait(_Job(sink, recipient, message))
        except asyncio.QueueFull:
            raise ParsecError(
                "PARSEC_SINK_UNAVAILABLE",
                f"the delivery queue is full ({self._settings.capacity} messages waiting); "
                "retry later or wait for delivery",
            ) from None

    async def aclose(self) -> None:
        """Stop accepting, deliver what is queued for up to ``drain_timeout`` seconds,
        then cancel what is still under way and dead-letter what never started.
        Idempotent."""
        await self.drain(self._settings.drain_timeout)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - the drain's share
        """:meth:`aclose` with ``timeout`` seconds instead of ``drain_timeout``: how
        many deliveries it cut (cancelled under way, or dead-lettered before they
        started); 0 when the queue was not running. Idempotent."""
        running = self._state is RunState.RUNNING
        self._state = RunState.CLOSED
        if not running:
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        cut = self._busy + self._queue.qsize()
        await self._stop_workers()
        while not self._queue.empty():
            await self._dead_letter(self._queue.get_nowait())
        return cut

    async def _stop_workers(self) -> None:
        """Cancel the workers. One still running ``CANCEL_GRACE`` seconds later (a sink
        that goes on awaiting its server while cleaning up after the cancel) is cancelled
        again, until every worker has stopped."""
        pending = set(self._workers)
        while pending:
            for worker in pending:
                worker.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_GRACE)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._sender.send(job.sink, job.recipient, job.message)
            except Exception:
                log.exception("background delivery to sink %r failed", job.sink)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _dead_letter(self, job: _Job) -> None:
        try:
            await self._sender.dlq.push(
                job.sink,
                job.recipient,
                job.message,
                attempts=0,
                last_error=SHUTDOWN_ERROR,
                at=time.time(),
            )
        except Exception:
            log.exception("could not dead-letter an undelivered message to sink %r", job.sink)


Publish = Callable[[str, bytes], Awaitable[StreamPosition]]
"""What publishes a publication's JSON bytes to a channel (``Parsec.publish``)."""


class DeliveryService:
    """Out-of-band delivery: the sink registry (``options.sinks``, else empty), the DLQ
    (``dlq``, else a MemoryDLQ this service owns and closes), ``sink_sender`` (the
    RetryingSender every delivery and replay goes through) and the background queue.

    ``node`` answers who listens on a channel and what it takes; ``publish`` publishes
    when someone does. States: new → running (``start``) → closed (``aclose``); waited
    deliveries and the DLQ operations work in any state, background delivery only while
    running. ``aclose`` is idempotent.
    """

    def __init__(
        self,
        node: Node,
        publish: Publish,
        options: Options,
        *,
        dlq: DLQ | None = None,
        metrics: SinkMetrics | None = None,
        settings: DeliverySettings | None = None,
    ) -> None:
        self.node = node
        self._publish = publish
        self._retry = options.sink_retry
        self.sinks = options.sinks if options.sinks is not None else SinkRegistry()
        self._owned_dlq = dlq is None
        self.dlq: DLQ = dlq if dlq is not None else MemoryDLQ()
        self.sink_sender = RetryingSender(
            self.sinks,
            self.dlq,
            policy=options.sink_retry,
            per_sink=options.sink_retry_overrides,
            metrics=metrics,
        )
        self.queue = DeliveryQueue(self.sink_sender, settings or DeliverySettings())

    async def start(self) -> None:
        """Start background delivery. Raises RuntimeError unless the service is new."""
        self.queue.start()

    async def aclose(self) -> None:
        """Drain background delivery (bounded by its deadline), then close an owned DLQ.
        Idempotent."""
        await self.queue.aclose()
        if self._owned_dlq:
            await self.dlq.aclose()

    async def __aenter__(self) -> DeliveryService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def manifest(self) -> dict[str, object]:
        """The manifest's ``sinks``, ``dlq_backend`` and ``sink_retry`` fields."""
        policy = self._retry
        return {
            "sinks": self.sinks.names(),
            "dlq_backend": "memory" if isinstance(self.dlq, MemoryDLQ) else "custom",
            "sink_retry": {
                "max_attempts": policy.max_attempts,
                "base_backoff": go_duration(policy.base_backoff),
                "max_backoff": go_duration(policy.max_backoff),
            },
        }

    # --- publish or sink --------------------------------------------------------

    async def publish_or_sink(
        self,
        channel: str,
        data: Any,
        sink: str,
        recipient: object,
        message: Message,
        *,
        wait: bool = True,
    ) -> SinkResult:
        """Publish ``data`` to ``channel`` if anyone listens there, else deliver
        ``message`` to ``recipient`` through ``sink`` (module docstring).

        ``data`` is what :meth:`parsec.Parsec.publish` takes; ``recipient`` is the sink's
        recipient, typed or in its JSON form. Everything is checked before anything is
        published or sent, whichever way the message goes. With ``wait`` the call
        returns once the delivery ended (delivered, or dead-lettered: a failed delivery
        is an outcome, not an exception); without it the message is queued.

        Raises ParsecError: PARSEC_CHANNEL_INVALID (bad name or unknown namespace),
        PARSEC_INVALID_ARGUMENT (data that is not JSON, a recipient the sink cannot
        use), PARSEC_PAYLOAD_TOO_LARGE (data over the channel's publication size
        limit), PARSEC_SINK_CONFIG_INVALID (unknown sink), PARSEC_SINK_UNAVAILABLE (the
        background queue is full or not running), PARSEC_SINK_DLQ_OVERFLOW (a failed
        delivery could not be dead-lettered).
        """
        raw = publication_bytes(data)
        keeps_presence = self._check_publication(channel, raw)
        encoded = self.sinks.get(sink).encode_recipient(recipient)
        if await self._listening(channel, keeps_presence):
            try:
                position = await self._publish(channel, raw)
            except ParsecError as exc:
                if exc.code not in _UNDELIVERABLE:
                    raise
            else:
                return SinkResult(sinked=False, position=position, outcome=None)
        if not wait:
            self.queue.submit(sink, encoded, message)
            return SinkResult(sinked=True, position=None, outcome=None)
        outcome = await self.sink_sender.send(sink, encoded, message)
        return SinkResult(sinked=True, position=None, outcome=outcome)

    def _check_publication(self, channel: str, raw: bytes) -> bool:
        """Whether ``channel``'s namespace keeps presence, once ``raw`` is known to be a
        publication it takes. PARSEC_CHANNEL_INVALID when the name is bad or its
        namespace unknown, PARSEC_PAYLOAD_TOO_LARGE when ``raw`` is over its size limit
        (also when it would go to the sink: the answer must not depend on listeners)."""
        try:
            options = self.node.rules.resolve(channel).options
        except ClientError as exc:
            raise ParsecError("PARSEC_CHANNEL_INVALID", f"{channel!r}: {exc.message}") from None
        try:
            self.node.check_publication_size(options, raw)
        except ClientError as exc:
            raise ParsecError("PARSEC_PAYLOAD_TOO_LARGE", exc.message) from None
        return options.presence

    async def _listening(self, channel: str, keeps_presence: bool) -> bool:
        """Cluster-wide presence where the namespace keeps it, else this node's subscribers."""
        if keeps_presence:
            stats = await self.node.presence.presence_stats(channel)
            return stats.num_clients > 0
        return self.node.hub.has_subscribers(channel)

    # --- the dead-letter queue --------------------------------------------------

    async def dlq_list(self, sink: str = "", limit: int = 50) -> list[DLQItem]:
        """Up to ``limit`` (at least 1) dead letters of ``sink`` (``""``: every sink),
        newest first. Raises PARSEC_INVALID_ARGUMENT for a limit below 1."""
        return await self.dlq.items(sink, limit)

    async def dlq_count(self, sink: str = "") -> int:
        """How many dead letters ``sink`` (``""``: every sink) holds."""
        return await self.dlq.count(sink)

    async def dlq_discard(self, id: str) -> bool:
        """Remove dead letter ``id``; False when there is none (idempotent)."""
        return await self.sink_sender.discard(id)

    async def dlq_replay(self, id: str) -> DeliveryOutcome:
        """Send dead letter ``id`` again through its sink, with retries, and wait. The
        item stays; a failed replay dead-letters a new item (``outcome.dlq_id``).

        Raises ParsecError: PARSEC_SINK_DLQ_NOT_FOUND (no such item),
        PARSEC_SINK_CONFIG_INVALID (its sink is no longer registered),
        PARSEC_SINK_DLQ_OVERFLOW (the new item could not be stored)."""
        return await self.sink_sender.replay(id)


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration`` prints it: ``"1s"``, ``"1m30s"``,
    ``"1h0m0s"``, ``"250ms"``, ``"0s"``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        text += f"{int(minutes)}m"
    return text + f"{round(secs, 9):g}s"
