"""The dead-letter queue: deliveries that failed for good, kept for inspection and replay.

:class:`DLQ` is the backend-neutral contract; :class:`MemoryDLQ` keeps items in this
process (the default). A Redis DLQ (a capped stream per sink) implements the same
Protocol and passes the same conformance suite (``tests/conformance/test_dlq.py``).

Guarantees of every DLQ:

* ``push`` stores one item and returns its id: an opaque string, unique across all
  sinks of the queue, never reused while the item is kept.
* ``items`` lists newest first: within one sink in push order reversed; across sinks
  (``sink=""``) by ``at`` descending. ``limit`` must be at least 1.
* ``count("")`` counts every sink; ``count(sink)`` one sink.
* ``get`` and ``discard`` of an unknown id return ``None`` / ``False``; discarding is
  idempotent.
* Items are never changed once pushed; replaying one (``RetryingSender.replay``) leaves
  it in place and a failed replay pushes a new item.
* A queue may be capped: when full it drops the oldest items of that sink first. A push
  that cannot be stored at all raises ``ParsecError("PARSEC_SINK_DLQ_OVERFLOW", …)``.
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from parsec.errors import ParsecError
from parsec.sinks.base import Message

__all__ = ["DLQ", "DLQItem", "MemoryDLQ"]

DEFAULT_MAX_PER_SINK: Final = 10_000
"""Items a MemoryDLQ keeps per sink before dropping the oldest (the Redis cap, too)."""


@dataclass(frozen=True, slots=True)
class DLQItem:
    """One dead-lettered delivery.

    ``recipient`` is the sink's JSON form of the recipient (``Sink.encode_recipient``),
    ``at`` the unix time the item was pushed, ``attempts`` how many sends were tried and
    ``last_error`` the last attempt's error message.
    """

    id: str
    sink: str
    at: float
    recipient: object
    message: Message
    attempts: int
    last_error: str

    def to_json(self) -> dict[str, object]:
        """Every field as JSON: ``{"id", "sink", "at", "recipient", "message",
        "attempts", "last_error"}``."""
        return {
            "id": self.id,
            "sink": self.sink,
            "at": self.at,
            "recipient": self.recipient,
            "message": self.message.to_json(),
            "attempts": self.attempts,
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, id: str, data: Mapping[str, object]) -> DLQItem:
        """The item stored as ``data`` (``to_json`` without ``id``) under ``id``.
        Raises ``ParsecError("PARSEC_INVALID_ARGUMENT", …)`` for a malformed document."""
        sink, at, attempts = data.get("sink"), data.get("at"), data.get("attempts")
        last_error = data.get("last_error", "")
        if (
            not isinstance(sink, str)
            or isinstance(at, bool)
            or not isinstance(at, int | float)
            or isinstance(attempts, bool)
            or not isinstance(attempts, int)
            or not isinstance(last_error, str)
        ):
            raise ParsecError("PARSEC_INVALID_ARGUMENT", f"malformed DLQ item {id!r}")
        message = Message.from_json(data.get("message"))
        return cls(id, sink, float(at), data.get("recipient"), message, attempts, last_error)


class DLQ(Protocol):
    """A dead-letter queue. See the module docstring for the guarantees."""

    async def push(
        self,
        sink: str,
        recipient: object,
        message: Message,
        *,
        attempts: int,
        last_error: str,
        at: float,
    ) -> str:
        """Store a failed delivery to ``sink``; return the new item's id."""
        ...

    async def items(self, sink: str = "", limit: int = 50) -> list[DLQItem]:
        """Up to ``limit`` items of ``sink`` (``""``: all sinks), newest first."""
        ...

    async def count(self, sink: str = "") -> int:
        """How many items ``sink`` (``""``: all sinks) holds."""
        ...

    async def get(self, id: str) -> DLQItem | None:
        """The item ``id``, or None."""
        ...

    async def discard(self, id: str) -> bool:
        """Remove the item ``id``; False when there was none."""
        ...

    async def aclose(self) -> None:
        """Release the queue's resources. Idempotent."""
        ...


class MemoryDLQ:
    """A DLQ in this process's memory, lost on exit. Ids are 16 hex digits.

    Holds at most ``max_per_sink`` items per sink, dropping the oldest first; a push
    never fails.
    """

    def __init__(self, *, max_per_sink: int = DEFAULT_MAX_PER_SINK) -> None:
        if max_per_sink < 1:
            raise ValueError("max_per_sink must be at least 1")
        self._max = max_per_sink
        self._items: OrderedDict[str, DLQItem] = OrderedDict()  # push order, all sinks
        self._by_sink: dict[str, OrderedDict[str, DLQItem]] = {}  # push order, per sink

    async def push(
        self,
        sink: str,
        recipient: object,
        message: Message,
        *,
        attempts: int,
        last_error: str,
        at: float,
    ) -> str:
        id = secrets.token_hex(8)
        while id in self._items:
            id = secrets.token_hex(8)
        item = DLQItem(id, sink, at, recipient, message, attempts, last_error)
        self._items[id] = item
        queue = self._by_sink.setdefault(sink, OrderedDict())
        queue[id] = item
        if len(queue) > self._max:
            await self.discard(next(iter(queue)))
        return id

    async def items(self, sink: str = "", limit: int = 50) -> list[DLQItem]:
        if limit < 1:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", f"limit must be at least 1, got {limit}")
        source = self._by_sink.get(sink) if sink else self._items
        if source is None:
            return []
        return list(itertools.islice(reversed(source.values()), limit))

    async def count(self, sink: str = "") -> int:
        return len(self._by_sink.get(sink, ())) if sink else len(self._items)

    async def get(self, id: str) -> DLQItem | None:
        return self._items.get(id)

    async def discard(self, id: str) -> bool:
        item = self._items.pop(id, None)
        if item is None:
            return False
        queue = self._by_sink[item.sink]
        del queue[id]
        if not queue:
            del self._by_sink[item.sink]
        return True

    async def aclose(self) -> None:
        """Nothing to release; the items stay readable."""


_dlq: type[DLQ] = MemoryDLQ
