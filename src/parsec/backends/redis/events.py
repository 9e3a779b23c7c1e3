"""RedisChannelEventBus: channel lifecycle events between nodes, over Redis pub/sub.

Events go out on ``<prefix>:events`` as ``{node_id, kind, name, at}`` (the Go Parsec's
shape, with ``at`` in unix seconds); each node drops its own echoes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from parsec.backends.redis.client import RedisClient
from parsec.backends.redis.listener import SupervisedListener
from parsec.channels.events import ChannelEvent, ChannelEventBus, EventKind

__all__ = ["RedisChannelEventBus"]

log = logging.getLogger("parsec.redis")


class _Wire(msgspec.Struct):
    node_id: str
    kind: EventKind
    name: str
    at: float


_decode = msgspec.json.Decoder(_Wire).decode


class RedisChannelEventBus:
    """The client is borrowed: its owner closes it."""

    def __init__(self, client: RedisClient, node_id: str, *, prefix: str = "parsec") -> None:
        self._client = client
        self._node_id = node_id
        self._channel = f"{prefix}:events"
        self._deliver: Callable[[ChannelEvent], None] | None = None
        self._listener = SupervisedListener(client, self._channel, self._receive)

    async def start(self, deliver: Callable[[ChannelEvent], None]) -> None:
        self._deliver = deliver
        await self._listener.start()

    async def publish(self, event: ChannelEvent) -> None:
        wire = _Wire(self._node_id, event.kind, event.name, event.at)
        await self._client.publish(self._channel, msgspec.json.encode(wire))

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def _receive(self, data: bytes) -> None:
        try:
            wire = _decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable channel event dropped")
            return
        if wire.node_id != self._node_id and self._deliver is not None:
            self._deliver(ChannelEvent(wire.kind, wire.name, wire.at))


_bus: type[ChannelEventBus] = RedisChannelEventBus
