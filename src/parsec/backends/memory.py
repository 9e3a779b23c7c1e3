"""In-memory Broker, PresenceManager and Controller: one process, no I/O.

They keep the same guarantees as the distributed backends (``tests/conformance``), in
the scope of one process: a restart loses every stream, so the next publication
starts a new epoch and clients fall back to ``recovered: false``.

:class:`MemoryControlHub` connects several nodes of one process: each gets a
:class:`MemoryControlTransport` for an engine :class:`~parsec.engine.cluster.Cluster`
(tests of the cluster logic without a server; the shape a new backend's transport
takes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from parsec.engine.aio import cancel_and_wait
from parsec.engine.broker import (
    DEFAULT_HISTORY_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryFilter,
    HistoryResult,
    PublishOptions,
)
from parsec.engine.controller import (
    ControlCommand,
    ControlEventHandler,
    Controller,
    ControlTransport,
    NodeInfo,
    Receiver,
    SurveyReply,
)
from parsec.engine.presence import PresenceManager, PresenceStats
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.errors import ParsecError

__all__ = [
    "MemoryBroker",
    "MemoryControlHub",
    "MemoryControlTransport",
    "MemoryController",
    "MemoryPresenceManager",
    "new_epoch",
]

log = logging.getLogger("parsec.memory")

Clock = Callable[[], float]
_EPOCH_ALPHABET = string.ascii_letters


def new_epoch() -> str:
    """A random stream generation name (8 ASCII letters)."""
    return "".join(secrets.choice(_EPOCH_ALPHABET) for _ in range(8))


class _Stream:
    __slots__ = ("epoch", "expire_at", "meta_expire_at", "pubs", "top")

    def __init__(self, meta_expire_at: float) -> None:
        self.epoch = new_epoch()
        self.top = 0
        self.pubs: deque[Publication] = deque()
        self.expire_at = 0.0
        self.meta_expire_at = meta_expire_at


class MemoryBroker:
    """Broker for one process. ``publish`` appends and delivers without awaiting, to
    the handler only for channels this node subscribed to."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._idempotent: OrderedDict[tuple[str, str], tuple[StreamPosition, float]] = OrderedDict()

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, pub: Publication, opts: PublishOptions) -> StreamPosition:
        now = self._clock()
        if opts.idempotency_key:
            seen = self._seen(channel, opts.idempotency_key, now)
            if seen is not None:
                return seen
        position = StreamPosition()
        if opts.keeps_history:
            stream = self._stream(channel, now, opts.history_meta_ttl)
            stream.top += 1
            pub.offset = stream.top
            if stream.expire_at and stream.expire_at <= now:
                stream.pubs.clear()
            stream.pubs.append(pub)
            while len(stream.pubs) > opts.history_size:
                stream.pubs.popleft()
            stream.expire_at = now + opts.history_ttl
            stream.meta_expire_at = now + opts.history_meta_ttl
            position = StreamPosition(stream.top, stream.epoch)
        if opts.idempotency_key:
            expires = now + opts.idempotent_result_ttl
            self._idempotent[(channel, opts.idempotency_key)] = (position, expires)
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_publication(channel, pub, position)
        return position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_leave(channel, info)

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float = DEFAULT_HISTORY_META_TTL
    ) -> HistoryResult:
        now = self._clock()
        stream = self._stream(channel, now, meta_ttl)
        position = StreamPosition(stream.top, stream.epoch)
        if flt.limit == 0 or (stream.expire_at and stream.expire_at <= now):
            return HistoryResult([], position)
        pubs = list(stream.pubs)
        if flt.since is not None:
            mark = flt.since.offset
            if flt.reverse:
                pubs = [p for p in pubs if p.offset < mark]
            else:
                pubs = [p for p in pubs if p.offset > mark]
        if flt.reverse:
            pubs.reverse()
        if flt.limit > 0:
            pubs = pubs[: flt.limit]
        return HistoryResult(pubs, position)

    async def remove_history(self, channel: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            stream.pubs.clear()

    async def aclose(self) -> None:
        self._handler = None

    def _stream(self, channel: str, now: float, meta_ttl: float) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None or stream.meta_expire_at <= now:
            stream = self._streams[channel] = _Stream(now + meta_ttl)
        return stream

    def _seen(self, channel: str, key: str, now: float) -> StreamPosition | None:
        while self._idempotent:
            oldest = next(iter(self._idempotent.values()))
            if oldest[1] > now:
                break
            self._idempotent.popitem(last=False)
        hit = self._idempotent.get((channel, key))
        return hit[0] if hit is not None and hit[1] > now else None


class MemoryPresenceManager:
    """Presence for one process. Entries live until removed (the process owns every
    session, so none can be orphaned)."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, ClientInfo]] = {}

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, ttl: float
    ) -> None:
        self._channels.setdefault(channel, {})[client_id] = info

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        clients = self._channels.get(channel)
        if clients is None:
            return
        clients.pop(client_id, None)
        if not clients:
            del self._channels[channel]

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return dict(self._channels.get(channel, {}))

    async def presence_stats(self, channel: str) -> PresenceStats:
        clients = self._channels.get(channel, {})
        return PresenceStats(len(clients), len({i.user for i in clients.values()}))

    async def aclose(self) -> None:
        self._channels.clear()


class MemoryController:
    """Controller for a cluster of one: there are no other nodes to tell."""

    async def start(self, handler: ControlEventHandler) -> None:
        """Nothing to receive in a one-node cluster."""

    async def broadcast(self, command: ControlCommand) -> None:
        """No other node exists; the sender has already applied the command."""

    async def nodes(self) -> list[NodeInfo]:
        return []

    async def survey(
        self,
        op: str,
        data: bytes,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109 - bounds the wait for other nodes
    ) -> list[SurveyReply]:
        """No other node to ask."""
        return []

    async def aclose(self) -> None:
        """Nothing to release."""


class MemoryControlHub:
    """The in-process stand-in for a server that control transports share: what one
    sends is queued at once for every listening node (or one node), in send order."""

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[bytes]] = {}

    def transport(self) -> MemoryControlTransport:
        """A transport for one more node."""
        return MemoryControlTransport(self)

    def _listen(self, node: str, queue: asyncio.Queue[bytes]) -> None:
        if node in self._queues:
            raise ValueError(f"node {node!r} already listens on this hub")
        self._queues[node] = queue

    def _leave(self, node: str) -> None:
        self._queues.pop(node, None)

    def _send(self, data: bytes, to: str | None) -> None:
        if to is None:
            queues = list(self._queues.values())
        else:
            queue = self._queues.get(to)
            queues = [] if queue is None else [queue]
        for each in queues:
            each.put_nowait(data)


class MemoryControlTransport:
    """ControlTransport through a MemoryControlHub: one task per node hands what was
    queued for it to ``receive``, one message at a time. Nothing is lost while the
    node listens; nothing is kept for a node that does not."""

    def __init__(self, hub: MemoryControlHub) -> None:
        self._hub = hub
        self._node: str | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, node: str, receive: Receiver) -> None:
        if self._node is not None:
            raise RuntimeError("a control transport starts once")
        self._hub._listen(node, self._queue)
        self._node = node
        self._task = asyncio.create_task(self._run(receive), name=f"parsec-memory-control:{node}")

    async def wait_listening(self) -> None:
        if not self.listening:
            raise RuntimeError("the control transport is not listening")

    async def send(self, data: bytes, *, to: str | None = None) -> None:
        """Queue ``data`` for every listening node, or for ``to``. Raises
        PARSEC_BROKER_NOT_READY when this transport is not listening."""
        if not self.listening:
            raise ParsecError(
                "PARSEC_BROKER_NOT_READY", "the control transport is not listening"
            ).client_error()
        self._hub._send(data, to)

    async def aclose(self) -> None:
        """Stop listening. Idempotent."""
        if self._node is not None:
            self._hub._leave(self._node)
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _run(self, receive: Receiver) -> None:
        while True:
            data = await self._queue.get()
            try:
                await receive(data)
            except Exception:
                log.exception("a control message could not be handled")


_broker: type[Broker] = MemoryBroker
_presence: type[PresenceManager] = MemoryPresenceManager
_controller: type[Controller] = MemoryController
_transport: type[ControlTransport] = MemoryControlTransport
