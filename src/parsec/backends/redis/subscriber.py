"""Subscriber: the broker's one Redis pub/sub connection, kept alive by one supervised task.

It subscribes the node to channels' pub/sub channels and hands what arrives to the
node's BrokerEventHandler, in arrival order, without awaiting per message.

Guarantees:

* ``subscribe`` returns once Redis confirmed the subscription: every publication made
  after it returns reaches the handler (while the connection holds).
* **No silent gap across reconnects.** When the connection drops (Redis restarts, the
  connection is killed, the network fails) the supervisor reconnects with backoff,
  resubscribes every channel and, for every channel with history, reads the stream
  after the last position this node delivered and delivers those publications, in
  order, before any newer live one. Publications the stream no longer holds (trimmed,
  expired, a new epoch) cannot be delivered; what comes next is delivered anyway, so
  each subscription's offset check sees the gap and tells its client honestly.
* A publication is never delivered twice: one whose offset is not past the last one
  delivered in the same epoch is dropped.
* Join and leave events are at-most-once: those sent while disconnected are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from parsec.backends.redis.client import (
    UNREACHABLE,
    RedisClient,
    broker_error,
    prepare_pubsub,
    translated,
)
from parsec.backends.redis.keys import Keys
from parsec.engine.aio import cancel_and_wait
from parsec.engine.broker import BrokerEventHandler
from parsec.engine.dispatch import ChannelDispatch
from parsec.engine.types import Publication, StreamPosition

__all__ = ["Backoff", "StreamReader", "Subscriber", "exponential_backoff"]

log = logging.getLogger("parsec.redis.broker")

Backoff = Callable[[int], Awaitable[None]]
"""Awaited before reconnect attempt ``n`` (1, 2, …) after the connection was lost."""

_SUBSCRIBE_BATCH = 512


def exponential_backoff(initial: float = 0.05, maximum: float = 5.0) -> Backoff:
    """Sleep ``initial`` * 2^(n-1) seconds, at most ``maximum``, with jitter (50-100 %)."""

    async def wait(attempt: int) -> None:
        delay = min(maximum, initial * 2.0 ** min(attempt - 1, 32))
        await asyncio.sleep(random.uniform(delay / 2, delay))

    return wait


class StreamReader(Protocol):
    """What the Subscriber reads from channel streams (the broker implements it).

    Both methods may raise redis errors; they never create a stream position.
    """

    async def position(self, channel: str) -> StreamPosition | None:
        """The channel's stream position, None when it has none."""

    async def read_after(
        self, channel: str, last: StreamPosition | None
    ) -> tuple[str, list[Publication]]:
        """The stream's epoch and the publications after ``last`` in it, oldest first:
        all the stream holds when ``last`` is None or of another epoch."""


class Subscriber:
    """One pub/sub connection per broker, supervised. See the module docstring."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        reader: StreamReader,
        *,
        backoff: Backoff,
        ready_timeout: float,
    ) -> None:
        self._client = client
        self._keys = keys
        self._reader = reader
        self._backoff = backoff
        self._ready_timeout = ready_timeout
        self._anchor = keys.anchor(uuid.uuid4().hex).encode()
        self._handler: BrokerEventHandler | None = None
        self._dispatch = ChannelDispatch()
        self._wanted: dict[bytes, str] = {}
        self._confirming: dict[bytes, asyncio.Future[None]] = {}
        self._barriers: dict[bytes, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self.reconnects = 0
        """How many times the pub/sub connection came back after it was lost."""
        self._was_ready = False
        """Whether the connection was ever ready: a later connect is a reconnect."""

    @property
    def connected(self) -> bool:
        """Whether the pub/sub connection is up with every channel subscribed."""
        return self._ready.is_set()

    def start(self, handler: BrokerEventHandler) -> None:
        """Start the supervised task delivering to ``handler``."""
        if self._started:
            raise RuntimeError("a broker can start once")
        self._started = True
        self._handler = self._dispatch.handler = handler
        self._task = asyncio.create_task(self._supervise(), name="parsec-redis-listener")

    async def aclose(self) -> None:
        """Stop listening and close the connection. Idempotent."""
        task, self._task = self._task, None
        self._handler = self._dispatch.handler = None
        if task is not None:
            await cancel_and_wait(task)

    # --- node-level subscriptions -----------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe the node to a channel; returns once Redis confirmed it.

        Raises the broker's PARSEC_BROKER_NOT_READY error when the connection is not
        up within the ready timeout or drops before the confirmation.
        """
        name = self._keys.pubsub(channel).encode()
        if name in self._wanted:
            pending = self._confirming.get(name)
            if pending is not None:  # a concurrent subscribe: share its outcome
                await asyncio.wait([pending])
                if pending.cancelled() or pending.exception() is not None:
                    raise broker_error("PARSEC_BROKER_NOT_READY", "redis pub/sub is not connected")
            return
        # Claim the channel before the first await, so concurrent calls share this one.
        self._wanted[name] = channel
        confirmed = self._confirming[name] = asyncio.get_running_loop().create_future()
        try:
            await self._live()
            with translated("subscribing"):
                # Read the position before subscribing: every live publication is
                # newer, so none is taken for a duplicate after a reconnect.
                position = await self._reader.position(channel)
                if position is not None:
                    self._dispatch.start_at(channel, position)
                pubsub = await self._live()
                await pubsub.subscribe(name)
                async with asyncio.timeout(self._ready_timeout):
                    await confirmed
        except BaseException:
            self._forget(name)
            raise
        finally:
            self._confirming.pop(name, None)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering a channel. Idempotent; never fails: while disconnected the
        channel is simply left out when the supervisor resubscribes."""
        name = self._keys.pubsub(channel).encode()
        if name not in self._wanted:
            return
        self._forget(name)
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            await pubsub.unsubscribe(name)
        except (*UNREACHABLE, RedisError) as exc:
            log.debug(
                "unsubscribing %r failed (%s); the next reconnect leaves it out", channel, exc
            )

    async def sync(self) -> None:
        """Return once every message Redis sent this node before the call was handled.

        A subscriber not started (or closed) handles nothing and returns at once.
        Raises PARSEC_BROKER_NOT_READY when the connection is down."""
        if self._handler is None:
            return
        await self._live()
        token = uuid.uuid4().hex.encode()
        reached = self._barriers[token] = asyncio.get_running_loop().create_future()
        try:
            with translated("synchronising"):
                await self._client.publish(self._anchor, token)
                async with asyncio.timeout(self._ready_timeout):
                    await reached
        finally:
            self._barriers.pop(token, None)

    def _forget(self, name: bytes) -> None:
        channel = self._wanted.pop(name, None)
        if channel is not None:
            self._dispatch.forget(channel)

    async def _live(self) -> PubSub:
        if self._handler is None:
            raise RuntimeError("the broker is not started (or already closed)")
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(self._ready_timeout):
                    await self._ready.wait()
            except TimeoutError:
                raise broker_error(
                    "PARSEC_BROKER_NOT_READY", "redis pub/sub is not connected"
                ) from None
        pubsub = self._pubsub
        if pubsub is None:
            raise broker_error("PARSEC_BROKER_NOT_READY", "redis pub/sub is not connected")
        return pubsub

    # --- supervision ------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            pubsub = self._client.pubsub()
            try:
                await prepare_pubsub(self._client)
                await self._connect(pubsub)
                if attempt:
                    log.info("redis pub/sub reconnected after %d attempt(s)", attempt)
                self.reconnects += self._was_ready
                self._was_ready, attempt = True, 0
                self._pubsub = pubsub
                self._ready.set()
                await self._listen(pubsub)
            except UNREACHABLE as exc:
                level = logging.WARNING if attempt == 0 else logging.DEBUG
                log.log(level, "redis pub/sub connection lost (%s); reconnecting", exc)
            except Exception:
                log.exception("redis pub/sub listener failed; reconnecting")
            finally:
                self._ready.clear()
                self._pubsub = None
                self._fail_waiters()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            attempt += 1
            await self._backoff(attempt)

    async def _connect(self, pubsub: PubSub) -> None:
        """Subscribe every wanted channel, then deliver what the streams hold past the
        last delivered positions, then what arrived meanwhile."""
        names = [self._anchor, *self._wanted]
        for first in range(0, len(names), _SUBSCRIBE_BATCH):
            await pubsub.subscribe(*names[first : first + _SUBSCRIBE_BATCH])
        unconfirmed = set(names)
        held: list[tuple[bytes, bytes]] = []
        async with asyncio.timeout(self._ready_timeout):
            while unconfirmed:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    unconfirmed.discard(message["channel"])
                    self._confirm(message["channel"])
                elif message["type"] == "message":
                    held.append((message["channel"], message["data"]))
        for name in names[1:]:
            channel = self._wanted.get(name)
            if channel is not None and name not in self._confirming:  # not mid-subscribe
                await self._catch_up(channel)
        for name, data in held:
            self._on_message(name, data)
        stale = [name for name in names[1:] if name not in self._wanted]
        if stale:
            await pubsub.unsubscribe(*stale)

    async def _catch_up(self, channel: str) -> None:
        """Deliver what the stream holds after the last offset delivered here; when it
        cannot fill the gap (a new epoch, trimmed history), say so (``handle_gap``)."""
        last = self._dispatch.last(channel)
        epoch, pubs = await self._reader.read_after(channel, last)
        if last is not None and self._handler is not None:
            if epoch != last.epoch or (pubs and pubs[0].offset != last.offset + 1):
                self._handler.handle_gap(channel)
            elif not pubs:
                top = await self._reader.position(channel)
                if top is None or top.offset > last.offset:
                    self._handler.handle_gap(channel)
        for pub in pubs:
            self._dispatch.publication(channel, pub, pub.offset, epoch)

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self._on_message(message["channel"], message["data"])
            elif kind == "subscribe":
                self._confirm(message["channel"])

    def _confirm(self, name: bytes) -> None:
        confirmed = self._confirming.get(name)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def _fail_waiters(self) -> None:
        lost = ConnectionError("redis pub/sub connection lost")
        for waiter in itertools.chain(self._confirming.values(), self._barriers.values()):
            if not waiter.done():
                waiter.set_exception(lost)

    # --- delivery (no awaits) ---------------------------------------------------

    def _on_message(self, name: bytes, data: bytes) -> None:
        channel = self._wanted.get(name)
        if channel is not None:
            self._dispatch.message(channel, data)
        elif name == self._anchor:
            reached = self._barriers.get(data)
            if reached is not None and not reached.done():
                reached.set_result(None)
