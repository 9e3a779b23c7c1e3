"""RedisDLQ: the dead-letter queue as one capped Redis Stream per sink.

``<p>:dlq:<sink>`` holds the items (field ``item`` = the item's JSON without its id),
``<p>:dlq:sinks`` the names of the sinks that have a stream. An item's id is
``<stream entry id>@<sink>``, so ``get`` and ``discard`` go straight to their stream.
Each stream keeps at most ``max_per_sink`` items (exact ``MAXLEN``), dropping the oldest.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.exceptions import RedisError

from parsec.backends.redis.client import RedisClient
from parsec.errors import ParsecError
from parsec.sinks.base import Message
from parsec.sinks.dlq import DEFAULT_MAX_PER_SINK, DLQ, DLQItem

__all__ = ["RedisDLQ"]


class RedisDLQ:
    """The client is borrowed: its owner closes it."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "parsec",
        max_per_sink: int = DEFAULT_MAX_PER_SINK,
    ) -> None:
        if max_per_sink < 1:
            raise ValueError("max_per_sink must be at least 1")
        self._client = client
        self._prefix = f"{prefix}:dlq"
        self._max = max_per_sink

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
        document = DLQItem("", sink, at, recipient, message, attempts, last_error).to_json()
        del document["id"]
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.sadd(f"{self._prefix}:sinks", sink)
                pipe.xadd(
                    self._stream(sink),
                    {"item": msgspec.json.encode(document)},
                    maxlen=self._max,
                    approximate=False,
                )
                _, entry = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ParsecError(
                "PARSEC_SINK_DLQ_OVERFLOW", f"dead letter not stored: {exc}"
            ) from None
        return f"{_text(entry)}@{sink}"

    async def items(self, sink: str = "", limit: int = 50) -> list[DLQItem]:
        if limit < 1:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "limit must be at least 1")
        sinks = [sink] if sink else await self._sinks()
        found: list[DLQItem] = []
        for name in sinks:
            entries = await self._client.xrevrange(self._stream(name), count=limit)
            found += [_item(entry, name) for entry in entries or ()]
        found.sort(key=lambda item: item.at, reverse=True)
        return found[:limit]

    async def count(self, sink: str = "") -> int:
        sinks = [sink] if sink else await self._sinks()
        total = 0
        for name in sinks:
            total += await self._client.xlen(self._stream(name))
        return total

    async def get(self, id: str) -> DLQItem | None:
        entry_id, sink = _split(id)
        if not entry_id:
            return None
        entries = await self._client.xrange(self._stream(sink), min=entry_id, max=entry_id)
        return _item(entries[0], sink) if entries else None

    async def discard(self, id: str) -> bool:
        entry_id, sink = _split(id)
        if not entry_id:
            return False
        return bool(await self._client.xdel(self._stream(sink), entry_id))

    async def aclose(self) -> None:
        """The client is borrowed; nothing to release."""

    def _stream(self, sink: str) -> str:
        return f"{self._prefix}:{sink}"

    async def _sinks(self) -> list[str]:
        return sorted(_text(name) for name in await self._client.smembers(f"{self._prefix}:sinks"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _split(id: str) -> tuple[str, str]:
    """(stream entry id, sink) of an item id; ("", "") when it is not one of ours."""
    entry_id, at, sink = id.partition("@")
    parts = entry_id.split("-")
    if not at or len(parts) != 2 or not all(p.isdigit() for p in parts):
        return "", ""
    return entry_id, sink


def _item(entry: tuple[Any, Any], sink: str) -> DLQItem:
    """The DLQItem of one stream entry ``(entry id, fields)``."""
    entry_id, fields = entry
    raw = fields.get(b"item", fields.get("item", b"{}"))
    document = msgspec.json.decode(raw.encode() if isinstance(raw, str) else raw)
    return DLQItem.from_json(f"{_text(entry_id)}@{sink}", document)


_dlq: type[DLQ] = RedisDLQ
