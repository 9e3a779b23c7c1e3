"""The channel manager: the lifecycle of Parsec's managed channels (parsec-reference §3).

::

    open_public ──► open ──(idle ≥ ttl, sweep)──► closed ──open_public──► open
    create_private ──► open ──(idle ≥ ttl, sweep)──► record removed ("deleted")
    delete (any state) ──► record removed ("deleted"); the name can be used again

Guarantees:

* Every bad input raises :class:`~parsec.errors.ParsecError` with a stable code: a name
  that does not parse, or of the wrong visibility for the call, ``PARSEC_CHANNEL_INVALID``;
  a TTL that is not a positive finite number ``PARSEC_INVALID_ARGUMENT``; a private TTL
  above the maximum ``PARSEC_CHANNEL_TTL_EXCEEDS_MAX``; a second private channel of one
  name ``PARSEC_CHANNEL_EXISTS``; a missing (or deleted) channel
  ``PARSEC_CHANNEL_NOT_FOUND``; publishing to or subscribing to a closed one
  ``PARSEC_CHANNEL_CLOSED``.
* Changes go through the store's compare-and-set operations, so managers on several nodes
  sharing one store never both create one private channel, and every transition emits
  its event on exactly one node.
* State changes only by the calls above and by :meth:`ChannelManager.sweep`; between
  sweeps an idle channel keeps its state.
* Events reach every subscription in order; a subscription that falls more than
  ``EVENT_BUFFER`` events behind loses the oldest ones and never slows the manager.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

from parsec.channels.events import (
    EVENT_BUFFER,
    ChannelEvent,
    ChannelEventBus,
    EventKind,
    EventSubscription,
)
from parsec.channels.names import require_name
from parsec.channels.store import Channel, ChannelState, ChannelStore, MemoryChannelStore
from parsec.engine.aio import cancel_and_wait
from parsec.errors import ParsecError

__all__ = [
    "EVENT_BUFFER",
    "Channel",
    "ChannelEvent",
    "ChannelManager",
    "ChannelState",
    "ChannelStore",
    "EventKind",
    "EventSubscription",
    "MemoryChannelStore",
]

logger = logging.getLogger("parsec.channels")

Clock: TypeAlias = Callable[[], float]
_MAX_ATTEMPTS: Final = 8
"""Compare-and-set rounds an operation tries before it reports contention."""


class ChannelManager:
    """Opens, creates, touches, sweeps and deletes managed channels in a ChannelStore.

    Durations are seconds; every time comes from ``clock`` (unix seconds). The manager
    closes the store only if it made it (``store=None`` makes a MemoryChannelStore).

    Raises:
        ValueError: a duration that is not a positive finite number, or a default private
            TTL above ``max_private_ttl``.
    """

    def __init__(
        self,
        store: ChannelStore | None = None,
        *,
        clock: Clock = time.time,
        public_ttl: float = 1800,
        private_ttl: float = 900,
        max_private_ttl: float = 3600,
        sweep_interval: float = 30,
        bus: ChannelEventBus | None = None,
    ) -> None:
        for label, value in [
            ("public_ttl", public_ttl),
            ("private_ttl", private_ttl),
            ("max_private_ttl", max_private_ttl),
            ("sweep_interval", sweep_interval),
        ]:
            if not _is_duration(value):
                raise ValueError(f"{label} must be a positive finite number, not {value!r}")
        if private_ttl > max_private_ttl:
            raise ValueError("private_ttl must not exceed max_private_ttl")
        self._owns_store = store is None
        self._store: ChannelStore = MemoryChannelStore() if store is None else store
        self._clock = clock
        self._public_ttl = float(public_ttl)
        self._private_ttl = float(private_ttl)
        self._max_private_ttl = float(max_private_ttl)
        self._sweep_interval = sweep_interval
        self._subscriptions: weakref.WeakSet[EventSubscription] = weakref.WeakSet()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._bus = bus
        self._bus_started = False
        self._sending: set[asyncio.Task[None]] = set()

    async def open_public(self, name: str, ttl: float | None = None) -> Channel:
        """Open public channel ``name`` (default TTL ``public_ttl``, no maximum).

        Idempotent: an open channel gets ``ttl`` (the default when None) and a fresh
        ``last_active``; a closed one is reopened the same way. Emits ``opened`` when the
        channel was new or closed.
        """
        _parse(name, "public")
        lifetime = _ttl(ttl, self._public_ttl)

        async def attempt() -> Channel | None:
            now = self._clock()
            current = await self._store.get(name)
            if current is None:
                channel = Channel(name, "public", ChannelState.OPEN, lifetime, now, now)
                return await self._created(channel)
            opened = dataclasses.replace(
                current, state=ChannelState.OPEN, ttl=lifetime, last_active=now
            )
            if not await self._store.replace(current, opened):
                return None
            if current.state is ChannelState.CLOSED:
                self._emit("opened", name, now)
            return opened

        return await _settle(attempt)

    async def create_private(self, name: str, ttl: float | None = None) -> Channel:
        """Create private channel ``name`` (default TTL ``private_ttl``, at most
        ``max_private_ttl``) and emit ``opened``. Refuses a name in use."""
        _parse(name, "private")
        lifetime = _ttl(ttl, self._private_ttl)
        if lifetime > self._max_private_ttl:
            raise ParsecError(
                "PARSEC_CHANNEL_TTL_EXCEEDS_MAX",
                f"private channel TTL {lifetime:g}s exceeds the maximum {self._max_private_ttl:g}s",
            )
        now = self._clock()
        channel = Channel(name, "private", ChannelState.OPEN, lifetime, now, now)
        if await self._created(channel) is None:
            raise ParsecError("PARSEC_CHANNEL_EXISTS", f"channel {name!r} already exists")
        return channel

    async def get(self, name: str) -> Channel:
        """The channel ``name``, open or closed."""
        _parse(name)
        return _found(name, await self._store.get(name))

    async def list(self) -> builtins.list[Channel]:
        """Every open and closed channel, sorted by name."""
        return await self._store.list()

    async def delete(self, name: str) -> None:
        """Delete channel ``name`` in any state and emit ``deleted``; the name is free again."""
        _parse(name)

        async def attempt() -> Channel | None:
            current = _found(name, await self._store.get(name))
            if not await self._store.remove(current):
                return None
            self._emit("deleted", name, self._clock())
            return current

        await _settle(attempt)

    async def touch(self, name: str) -> None:
        """Record activity on ``name`` (called on every publish): ``last_active`` becomes
        now. Refuses a missing or closed channel, so the publish is refused too."""
        _parse(name)

        async def attempt() -> Channel | None:
            current = _open(name, await self._store.get(name))
            touched = dataclasses.replace(current, last_active=self._clock())
            return touched if await self._store.replace(current, touched) else None

        await _settle(attempt)

    async def check_subscribe(self, name: str) -> None:
        """Return if a new subscription to ``name`` is allowed (the channel is open)."""
        _parse(name)
        _open(name, await self._store.get(name))

    async def sweep(self) -> builtins.list[ChannelEvent]:
        """One sweep pass: every open channel idle for ``ttl`` seconds or more is closed
        (public) or removed (private), emitting ``closed`` / ``deleted``.

        Returns the events this pass emitted. A channel changed by someone else during the
        pass is left for the next one.
        """
        now = self._clock()
        events: builtins.list[ChannelEvent] = []
        for channel in await self._store.list():
            if channel.state is not ChannelState.OPEN or now - channel.last_active < channel.ttl:
                continue
            if channel.visibility == "public":
                closed = dataclasses.replace(channel, state=ChannelState.CLOSED)
                if await self._store.replace(channel, closed):
                    events.append(self._emit("closed", channel.name, now))
            elif await self._store.remove(channel):
                events.append(self._emit("deleted", channel.name, now))
        return events

    def events(self) -> EventSubscription:
        """A new subscription to every event emitted from now on (see EventSubscription)."""
        subscription = EventSubscription()
        if self._closed:
            subscription._end()
        else:
            self._subscriptions.add(subscription)
        return subscription

    async def start(self) -> None:
        """Start the sweeper: a task running :meth:`sweep` every ``sweep_interval`` seconds.
        A second call while it runs does nothing.

        Raises:
            RuntimeError: the manager is closed.
        """
        if self._closed:
            raise RuntimeError("the channel manager is closed")
        if self._bus is not None and not self._bus_started:
            self._bus_started = True
            await self._bus.start(self._deliver)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="parsec-sweeper")

    async def aclose(self) -> None:
        """Stop the sweeper, end every event subscription and close the store if the
        manager made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
        for task in builtins.list(self._sending):
            with contextlib.suppress(Exception):
                await task
        if self._bus is not None:
            await self._bus.aclose()
        for subscription in builtins.list(self._subscriptions):
            subscription._end()
        if self._owns_store:
            await self._store.aclose()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:
                logger.exception("channel sweep failed; retrying in %gs", self._sweep_interval)

    async def _created(self, channel: Channel) -> Channel | None:
        if not await self._store.create_if_absent(channel):
            return None
        self._emit("opened", channel.name, channel.created_at)
        return channel

    def _emit(self, kind: EventKind, name: str, at: float) -> ChannelEvent:
        """Hand an event of this node to local subscriptions and, through the bus, to
        every other node (in the background: a slow bus never delays the manager)."""
        event = ChannelEvent(kind, name, at)
        self._deliver(event)
        if self._bus is not None and self._bus_started:
            task = asyncio.get_running_loop().create_task(self._publish(event))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return event

    def _deliver(self, event: ChannelEvent) -> None:
        for subscription in builtins.list(self._subscriptions):
            subscription._push(event)

    async def _publish(self, event: ChannelEvent) -> None:
        assert self._bus is not None
        try:
            await self._bus.publish(event)
        except Exception:
            logger.exception("channel event %s %r not sent to other nodes", event.kind, event.name)


def _parse(name: str, visibility: str | None = None) -> None:
    """Raise PARSEC_CHANNEL_INVALID unless ``name`` is a channel name of ``visibility``."""
    parsed = require_name(name)
    if visibility is not None and parsed.visibility != visibility:
        raise ParsecError("PARSEC_CHANNEL_INVALID", f"{name!r} is not a {visibility} channel name")


def _ttl(ttl: float | None, default: float) -> float:
    """``ttl`` (or ``default`` when None) as float; PARSEC_INVALID_ARGUMENT unless it is a
    positive finite number."""
    if ttl is None:
        return default
    if not _is_duration(ttl):
        raise ParsecError(
            "PARSEC_INVALID_ARGUMENT", f"TTL must be a positive number of seconds, not {ttl!r}"
        )
    return float(ttl)


def _is_duration(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _found(name: str, channel: Channel | None) -> Channel:
    if channel is None:
        raise ParsecError("PARSEC_CHANNEL_NOT_FOUND", f"channel {name!r} does not exist")
    return channel


def _open(name: str, channel: Channel | None) -> Channel:
    found = _found(name, channel)
    if found.state is not ChannelState.OPEN:
        raise ParsecError("PARSEC_CHANNEL_CLOSED", f"channel {name!r} is closed")
    return found


async def _settle(attempt: Callable[[], Awaitable[Channel | None]]) -> Channel:
    """Run one compare-and-set ``attempt`` until it succeeds (returns a Channel); None
    means it lost a race. Gives up with PARSEC_INTERNAL after ``_MAX_ATTEMPTS``."""
    for _ in range(_MAX_ATTEMPTS):
        result = await attempt()
        if result is not None:
            return result
    raise ParsecError("PARSEC_INTERNAL", "the channel kept changing concurrently; try again")
