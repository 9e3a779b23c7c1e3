"""NatsBroker: the Broker contract's fan-out on core NATS, without history.

Each channel has one subject (``subjects.py``); a node subscribes to it on its first
local subscriber of the channel and unsubscribes after its last (the Node decides
when), and a publication, join or leave is one NATS message on it
(:mod:`parsec.engine.wire`; offset 0 and epoch "": there is no history).

Guarantees:

* ``subscribe`` returns once the NATS server has the subscription (a PING/PONG round
  trip after SUB): every publication made after it returns reaches this node while
  the connection holds. On a NATS *cluster* a subscription reaches the other servers
  shortly after; a publication through another server in that moment may miss it.
* At-most-once, in order per channel and publisher: NATS delivers in publish order;
  what is published while this node is cut off from NATS is lost to it. nats-py
  reconnects by itself and re-subscribes every channel.
* No history, so no stream positions: ``publish`` returns the empty position and no
  subscriber is ever positioned, so a reconnect cannot leave one with a silent gap
  (``handle_gap`` is never needed). A publish that asks for history, a publish with
  an idempotency key (deduplication needs state shared by the nodes), ``history`` and
  ``remove_history`` raise ``PARSEC_INVALID_ARGUMENT`` saying the Redis broker is
  needed; ``parsec.config`` refuses such channel options up front.
* Publishing while NATS is not connected fails at once with
  ``PARSEC_BROKER_NOT_READY`` (temporary): nothing is buffered for later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parsec.backends.nats.connection import NatsConnection, barrier, broker_error, translated
from parsec.backends.nats.subjects import DEFAULT_SUBJECT_PREFIX, Subjects
from parsec.engine.broker import (
    DEFAULT_HISTORY_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryFilter,
    HistoryResult,
    PublishOptions,
)
from parsec.engine.dispatch import ChannelDispatch
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.engine.wire import ChannelMessage, Join, Leave, Published, encode

__all__ = ["MAX_SUBJECT_LENGTH", "NatsBroker", "unsupported"]

log = logging.getLogger("parsec.nats.broker")

_NO_POSITION = StreamPosition()

MAX_SUBJECT_LENGTH = 3800
"""Longest subject used: NATS servers limit a protocol line to 4096 bytes by default
(``max_control_line``) and close a connection that sends a longer one. Channel names
of the default maximum length (255 characters) always fit."""


def unsupported(what: str) -> Exception:
    """The error of a call the NATS broker cannot serve (stable code
    ``PARSEC_INVALID_ARGUMENT``; client error 107, not temporary)."""
    return broker_error(
        "PARSEC_INVALID_ARGUMENT",
        f"{what} needs the Redis broker: the NATS broker keeps no history "
        "(no history, recovery, positioning or idempotent publishing)",
    )


class _ChannelSub:
    """A node-level subscription, from the moment it is claimed."""

    __slots__ = ("failed", "settled", "sub")

    def __init__(self) -> None:
        self.sub: Subscription | None = None
        self.settled = asyncio.Event()
        self.failed = False


class NatsBroker:
    """Broker on core NATS. One instance per node.

    ``connection`` is borrowed unless ``release_connection`` is set: then the broker
    gives up its share of it (``NatsConnection.release``) when closed. ``start`` waits
    up to ``ready_timeout`` seconds for the first connection (and goes on without it);
    ``subscribe`` waits as long for a connection before it fails.
    """

    def __init__(
        self,
        connection: NatsConnection,
        *,
        prefix: str = DEFAULT_SUBJECT_PREFIX,
        release_connection: bool = False,
        ready_timeout: float = 5.0,
    ) -> None:
        self._conn = connection
        self._subjects = Subjects(prefix)
        self._release = release_connection
        self._ready_timeout = ready_timeout
        self._handler: BrokerEventHandler | None = None
        self._dispatch = ChannelDispatch()
        self._subs: dict[str, _ChannelSub] = {}
        self._started = False
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up (for health checks)."""
        return self._conn.connected

    async def start(self, handler: BrokerEventHandler) -> None:
        if self._started:
            raise RuntimeError("a broker can start once")
        self._started = True
        self._handler = self._dispatch.handler = handler
        self._conn.open()
        if not await self._conn.settle_opening(self._ready_timeout):
            log.warning("starting without nats: publishing fails until it is reachable")

    async def subscribe(self, channel: str) -> None:
        """Deliver the channel to this node; returns once NATS has the subscription.

        Raises PARSEC_BROKER_NOT_READY when NATS is not connected within the ready
        timeout or the subscription is not confirmed."""
        if self._handler is None:
            raise RuntimeError("the broker is not started (or already closed)")
        entry = self._subs.get(channel)
        if entry is not None:  # maybe a concurrent subscribe: share its outcome
            await entry.settled.wait()
            if entry.failed:
                raise broker_error("PARSEC_BROKER_NOT_READY", "the NATS subscription failed")
            return
        subject = self._subject(channel)
        entry = self._subs[channel] = _ChannelSub()  # claimed before the first await
        try:
            client = await self._conn.wait_connected(self._ready_timeout)
            with translated("subscribing"):
                entry.sub = await client.subscribe(subject, cb=self._receiver(channel))
                await barrier(client, max(1, math.ceil(self._ready_timeout)))
        except BaseException:
            entry.failed = True
            if self._subs.get(channel) is entry:
                del self._subs[channel]
            await _quietly_unsubscribe(entry.sub)
            raise
        finally:
            entry.settled.set()
        if self._subs.get(channel) is not entry:  # unsubscribed while confirming
            await _quietly_unsubscribe(entry.sub)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering the channel. Idempotent; never fails (while disconnected,
        nats-py simply does not re-subscribe it)."""
        entry = self._subs.pop(channel, None)
        if entry is not None:
            await _quietly_unsubscribe(entry.sub)

    async def publish(self, channel: str, pub: Publication, opts: PublishOptions) -> StreamPosition:
        if opts.keeps_history:
            raise unsupported("publishing with history")
        if opts.idempotency_key:
            raise unsupported("publishing with an idempotency key")
        if pub.offset:
            pub = msgspec.structs.replace(pub, offset=0)
        await self._send(channel, Published(0, "", pub), "publishing")
        return _NO_POSITION

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._send(channel, Join(info), "publishing a join")

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._send(channel, Leave(info), "publishing a leave")

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float = DEFAULT_HISTORY_META_TTL
    ) -> HistoryResult:
        raise unsupported("reading history")

    async def remove_history(self, channel: str) -> None:
        raise unsupported("removing history")

    async def sync(self) -> None:
        """Return once NATS has handled everything this node sent before the call (at
        once for a broker not started, or closed). Raises PARSEC_BROKER_NOT_READY when
        NATS is not connected."""
        if self._handler is None:
            return
        client = self._conn.client_now()
        with translated("synchronising"):
            await barrier(client, max(1, math.ceil(self._ready_timeout)))

    async def aclose(self) -> None:
        """Stop delivering and give up the connection (when owned). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handler = self._dispatch.handler = None
        subs, self._subs = self._subs, {}
        for entry in subs.values():
            await _quietly_unsubscribe(entry.sub)
        if self._release:
            await self._conn.release()

    # --- internals --------------------------------------------------------------

    async def _send(self, channel: str, message: ChannelMessage, action: str) -> None:
        subject = self._subject(channel)
        client = self._conn.client_now()
        with translated(action):
            await client.publish(subject, encode(message))

    def _subject(self, channel: str) -> str:
        """The channel's subject; a name too long for one NATS protocol line (the
        server would drop the whole connection) is refused."""
        subject = self._subjects.channel(channel)
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise broker_error(
                "PARSEC_INVALID_ARGUMENT",
                f"channel name too long for a NATS subject ({len(subject)} characters "
                f"encoded, at most {MAX_SUBJECT_LENGTH})",
            )
        return subject

    def _receiver(self, channel: str) -> Callable[[Msg], Awaitable[None]]:
        message = self._dispatch.message

        async def receive(msg: Msg) -> None:
            message(channel, msg.data)

        return receive


async def _quietly_unsubscribe(sub: Subscription | None) -> None:
    if sub is None:
        return
    with contextlib.suppress(Exception):  # closed, draining or already gone: all fine
        await sub.unsubscribe()


_broker: type[Broker] = NatsBroker
