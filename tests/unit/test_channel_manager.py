"""The channel manager: lifecycle, sweep, events, the sweeper task and every error code."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable

import pytest

from parsec.channels.manager import (
    EVENT_BUFFER,
    Channel,
    ChannelEvent,
    ChannelManager,
    ChannelState,
    EventSubscription,
)
from parsec.channels.store import MemoryChannelStore
from parsec.errors import ParsecError

NOW = 1_700_000_000.0
PUBLIC = "public:webapp.system.status"
PRIVATE = "private:agent.analysis.abc123"
WAIT = 5.0


class FakeClock:
    """Unix time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FailingListStore(MemoryChannelStore):
    """A memory store whose list() fails the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def list(self) -> list[Channel]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        return await super().list()


class ContendedStore(MemoryChannelStore):
    """A memory store where every compare-and-set loses, as under endless contention."""

    async def replace(self, current: Channel, new: Channel) -> bool:
        return False

    async def remove(self, current: Channel) -> bool:
        return False


class ClosingStore(MemoryChannelStore):
    """A memory store that records whether it was closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def clock() -> FakeClock:
    """The manager's clock."""
    return FakeClock()


@pytest.fixture
async def manager(clock: FakeClock) -> AsyncIterator[ChannelManager]:
    """A manager with the default TTLs on a fresh memory store."""
    instance = ChannelManager(clock=clock)
    yield instance
    await instance.aclose()


async def drained(subscription: EventSubscription) -> list[ChannelEvent]:
    """The events a subscription holds now: closes it and collects what it still delivers."""
    await subscription.aclose()
    return [event async for event in subscription]


async def raises_code(code: str, call: Awaitable[object]) -> ParsecError:
    """Await ``call`` and return the ParsecError it raised, checking its code."""
    with pytest.raises(ParsecError) as caught:
        await call
    assert caught.value.code == code
    return caught.value


# --- open_public ---------------------------------------------------------------------


async def test_open_public_creates_an_open_channel(manager: ChannelManager) -> None:
    """A new public channel is open with the 30 minute default TTL and emits "opened"."""
    events = manager.events()

    channel = await manager.open_public(PUBLIC)

    assert channel == Channel(PUBLIC, "public", ChannelState.OPEN, 1800, NOW, NOW)
    assert await manager.get(PUBLIC) == channel
    assert await drained(events) == [ChannelEvent("opened", PUBLIC, NOW)]


async def test_open_public_takes_any_positive_ttl(manager: ChannelManager) -> None:
    """Public channels have no TTL maximum."""
    channel = await manager.open_public(PUBLIC, ttl=30 * 86400)

    assert channel.ttl == 30 * 86400


async def test_open_public_is_idempotent(manager: ChannelManager, clock: FakeClock) -> None:
    """Opening an open channel again resets last_active and TTL, keeps created_at, emits
    nothing."""
    await manager.open_public(PUBLIC)
    events = manager.events()
    clock.advance(100)

    again = await manager.open_public(PUBLIC, ttl=60)

    assert again == Channel(PUBLIC, "public", ChannelState.OPEN, 60, NOW, NOW + 100)
    assert await drained(events) == []


async def test_open_public_reopens_a_closed_channel(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """A swept (closed) public channel opens again with a fresh TTL and emits "opened"."""
    await manager.open_public(PUBLIC, ttl=60)
    clock.advance(60)
    await manager.sweep()
    events = manager.events()
    clock.advance(5)

    reopened = await manager.open_public(PUBLIC)

    assert reopened == Channel(PUBLIC, "public", ChannelState.OPEN, 1800, NOW, NOW + 65)
    assert await drained(events) == [ChannelEvent("opened", PUBLIC, NOW + 65)]
    await manager.check_subscribe(PUBLIC)


@pytest.mark.parametrize(
    "name",
    [PRIVATE, "", "public:", "public:webapp", "Public:webapp.system", "public:a.b.c.d.e", "a.b"],
)
async def test_open_public_refuses_a_bad_name(manager: ChannelManager, name: str) -> None:
    """A name that does not parse, or a private one, is PARSEC_CHANNEL_INVALID (HTTP 400)."""
    error = await raises_code("PARSEC_CHANNEL_INVALID", manager.open_public(name))

    assert error.http_status == 400
    assert await manager.list() == []


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "60"])
async def test_open_public_refuses_a_bad_ttl(manager: ChannelManager, ttl: object) -> None:
    """A TTL that is not a positive finite number is PARSEC_INVALID_ARGUMENT."""
    await raises_code("PARSEC_INVALID_ARGUMENT", manager.open_public(PUBLIC, ttl))  # type: ignore[arg-type]

    assert await manager.list() == []


# --- create_private --------------------------------------------------------------------


async def test_create_private_creates_an_open_channel(manager: ChannelManager) -> None:
    """A new private channel is open with the 15 minute default TTL and emits "opened"."""
    events = manager.events()

    channel = await manager.create_private(PRIVATE)

    assert channel == Channel(PRIVATE, "private", ChannelState.OPEN, 900, NOW, NOW)
    assert await manager.get(PRIVATE) == channel
    assert await drained(events) == [ChannelEvent("opened", PRIVATE, NOW)]


async def test_create_private_accepts_the_maximum_ttl(manager: ChannelManager) -> None:
    """A TTL of exactly one hour is allowed."""
    channel = await manager.create_private(PRIVATE, ttl=3600)

    assert channel.ttl == 3600


async def test_create_private_refuses_a_ttl_above_the_maximum(manager: ChannelManager) -> None:
    """A TTL over one hour is PARSEC_CHANNEL_TTL_EXCEEDS_MAX and creates nothing."""
    await raises_code("PARSEC_CHANNEL_TTL_EXCEEDS_MAX", manager.create_private(PRIVATE, 3600.5))

    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.get(PRIVATE))


async def test_maximum_private_ttl_is_configurable(clock: FakeClock) -> None:
    """max_private_ttl bounds private TTLs."""
    manager = ChannelManager(clock=clock, private_ttl=10, max_private_ttl=20)

    assert (await manager.create_private(PRIVATE)).ttl == 10
    await raises_code(
        "PARSEC_CHANNEL_TTL_EXCEEDS_MAX", manager.create_private(f"{PRIVATE}.x", ttl=21)
    )


async def test_create_private_refuses_a_duplicate(manager: ChannelManager) -> None:
    """Creating a private channel twice is PARSEC_CHANNEL_EXISTS (HTTP 409), no new event."""
    first = await manager.create_private(PRIVATE)
    events = manager.events()

    error = await raises_code("PARSEC_CHANNEL_EXISTS", manager.create_private(PRIVATE, ttl=60))

    assert error.http_status == 409
    assert await manager.get(PRIVATE) == first
    assert await drained(events) == []


@pytest.mark.parametrize("name", [PUBLIC, "private:agent.analysis", "private:agent.a b.c", "x"])
async def test_create_private_refuses_a_bad_name(manager: ChannelManager, name: str) -> None:
    """A public name, a private name without an id, or garbage is PARSEC_CHANNEL_INVALID."""
    await raises_code("PARSEC_CHANNEL_INVALID", manager.create_private(name))

    assert await manager.list() == []


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), float("-inf"), False])
async def test_create_private_refuses_a_bad_ttl(manager: ChannelManager, ttl: float) -> None:
    """A TTL that is not a positive finite number is PARSEC_INVALID_ARGUMENT."""
    await raises_code("PARSEC_INVALID_ARGUMENT", manager.create_private(PRIVATE, ttl))


async def test_only_one_of_two_nodes_creates_a_private_channel(clock: FakeClock) -> None:
    """Two managers sharing a store race to create one name: one wins, one gets EXISTS."""
    store = MemoryChannelStore()
    nodes = [ChannelManager(store, clock=clock), ChannelManager(store, clock=clock)]
    watchers = [node.events() for node in nodes]

    results = await asyncio.gather(
        *(node.create_private(PRIVATE) for node in nodes), return_exceptions=True
    )

    assert sum(isinstance(r, Channel) for r in results) == 1
    errors = [r for r in results if isinstance(r, ParsecError)]
    assert [e.code for e in errors] == ["PARSEC_CHANNEL_EXISTS"]
    assert sorted([len(await drained(w)) for w in watchers]) == [0, 1]


# --- get, list, delete -----------------------------------------------------------------


async def test_get_refuses_unknown_and_invalid_names(manager: ChannelManager) -> None:
    """get of a missing channel is PARSEC_CHANNEL_NOT_FOUND (404); of a bad name, INVALID."""
    error = await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.get(PUBLIC))
    assert error.http_status == 404
    await raises_code("PARSEC_CHANNEL_INVALID", manager.get("public:Nope.x"))
    await raises_code("PARSEC_CHANNEL_INVALID", manager.get(None))  # type: ignore[arg-type]


async def test_list_shows_open_and_closed_channels_by_name(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """list is sorted by name and includes closed channels but not deleted ones."""
    await manager.open_public("public:b.idle", ttl=10)
    await manager.open_public("public:a.busy")
    await manager.create_private(PRIVATE, ttl=10)
    await manager.create_private("private:c.gone.x")
    await manager.delete("private:c.gone.x")
    clock.advance(10)
    await manager.sweep()

    listed = await manager.list()

    assert [(c.name, c.state) for c in listed] == [
        ("public:a.busy", ChannelState.OPEN),
        ("public:b.idle", ChannelState.CLOSED),
    ]


@pytest.mark.parametrize("closed_first", [False, True])
async def test_delete_removes_a_public_channel(
    manager: ChannelManager, clock: FakeClock, closed_first: bool
) -> None:
    """Deleting an open or closed public channel emits "deleted"; it is then not found."""
    await manager.open_public(PUBLIC, ttl=10)
    if closed_first:
        clock.advance(10)
        await manager.sweep()
    events = manager.events()

    await manager.delete(PUBLIC)

    assert await drained(events) == [ChannelEvent("deleted", PUBLIC, clock.now)]
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.get(PUBLIC))
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.check_subscribe(PUBLIC))
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.touch(PUBLIC))
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.delete(PUBLIC))
    assert await manager.list() == []


async def test_deleted_names_can_be_used_again(manager: ChannelManager, clock: FakeClock) -> None:
    """After delete, the same public name opens and the same private name is created anew."""
    await manager.open_public(PUBLIC)
    await manager.create_private(PRIVATE)
    await manager.delete(PUBLIC)
    await manager.delete(PRIVATE)
    clock.advance(7)
    events = manager.events()

    public = await manager.open_public(PUBLIC)
    private = await manager.create_private(PRIVATE)

    assert (public.created_at, public.state) == (NOW + 7, ChannelState.OPEN)
    assert (private.created_at, private.state) == (NOW + 7, ChannelState.OPEN)
    assert [e.kind for e in await drained(events)] == ["opened", "opened"]


async def test_delete_refuses_unknown_and_invalid_names(manager: ChannelManager) -> None:
    """delete of a missing channel is NOT_FOUND and of a bad name INVALID; no event."""
    events = manager.events()

    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.delete(PRIVATE))
    await raises_code("PARSEC_CHANNEL_INVALID", manager.delete("private:"))

    assert await drained(events) == []


# --- touch and check_subscribe ------------------------------------------------------------


async def test_touch_moves_last_active(manager: ChannelManager, clock: FakeClock) -> None:
    """touch sets last_active to now and changes nothing else."""
    opened = await manager.open_public(PUBLIC)
    clock.advance(42)

    await manager.touch(PUBLIC)

    assert await manager.get(PUBLIC) == Channel(
        PUBLIC, "public", ChannelState.OPEN, opened.ttl, NOW, NOW + 42
    )


async def test_touch_keeps_a_channel_from_being_swept(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """A channel touched within its TTL survives the sweep at its original expiry."""
    await manager.create_private(PRIVATE, ttl=100)
    clock.advance(60)
    await manager.touch(PRIVATE)
    clock.advance(60)

    assert await manager.sweep() == []
    await manager.check_subscribe(PRIVATE)


async def test_touch_refuses_closed_missing_and_invalid_channels(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """Publishing to a closed channel is CLOSED (412), to a missing one NOT_FOUND."""
    await manager.open_public(PUBLIC, ttl=10)
    clock.advance(10)
    await manager.sweep()

    error = await raises_code("PARSEC_CHANNEL_CLOSED", manager.touch(PUBLIC))
    assert error.http_status == 412
    assert (await manager.get(PUBLIC)).last_active == NOW
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.touch(PRIVATE))
    await raises_code("PARSEC_CHANNEL_INVALID", manager.touch("public:a"))


async def test_check_subscribe_allows_only_open_channels(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """Subscribing is allowed to open channels, refused to closed, missing and bad names."""
    await manager.open_public(PUBLIC, ttl=10)
    await manager.create_private(PRIVATE)
    await manager.check_subscribe(PUBLIC)
    await manager.check_subscribe(PRIVATE)
    clock.advance(10)
    await manager.sweep()

    await raises_code("PARSEC_CHANNEL_CLOSED", manager.check_subscribe(PUBLIC))
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.check_subscribe("private:a.b.c"))
    await raises_code("PARSEC_CHANNEL_INVALID", manager.check_subscribe("private:a.b"))
    await manager.check_subscribe(PRIVATE)


# --- sweep -------------------------------------------------------------------------------


async def test_sweep_acts_exactly_at_the_ttl(manager: ChannelManager, clock: FakeClock) -> None:
    """A channel idle for just under its TTL stays open; at its TTL it is swept."""
    await manager.open_public(PUBLIC)
    clock.advance(1799.999)
    assert await manager.sweep() == []
    clock.advance(0.001)

    assert await manager.sweep() == [ChannelEvent("closed", PUBLIC, NOW + 1800)]


async def test_sweep_closes_idle_public_channels(manager: ChannelManager, clock: FakeClock) -> None:
    """An idle public channel becomes closed (record kept) and emits "closed" once."""
    await manager.open_public(PUBLIC, ttl=60)
    events = manager.events()
    clock.advance(61)

    swept = await manager.sweep()

    assert swept == [ChannelEvent("closed", PUBLIC, NOW + 61)]
    assert await drained(events) == swept
    assert (await manager.get(PUBLIC)).state is ChannelState.CLOSED
    clock.advance(1000)
    assert await manager.sweep() == []


async def test_sweep_deletes_idle_private_channels(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """An idle private channel is removed with a "deleted" event; its name is free."""
    await manager.create_private(PRIVATE)
    events = manager.events()
    clock.advance(900)

    swept = await manager.sweep()

    assert swept == [ChannelEvent("deleted", PRIVATE, NOW + 900)]
    assert await drained(events) == swept
    await raises_code("PARSEC_CHANNEL_NOT_FOUND", manager.get(PRIVATE))
    await manager.create_private(PRIVATE)


async def test_sweep_uses_each_channels_own_ttl(manager: ChannelManager, clock: FakeClock) -> None:
    """Only channels idle past their own TTL are swept; the rest stay open."""
    await manager.open_public("public:app.short", ttl=10)
    await manager.open_public("public:app.long", ttl=100)
    await manager.create_private("private:app.short.x", ttl=10)
    await manager.create_private("private:app.long.x", ttl=100)
    clock.advance(50)

    swept = await manager.sweep()

    assert sorted((e.kind, e.name) for e in swept) == [
        ("closed", "public:app.short"),
        ("deleted", "private:app.short.x"),
    ]
    assert [c.name for c in await manager.list() if c.state is ChannelState.OPEN] == [
        "private:app.long.x",
        "public:app.long",
    ]


async def test_sweep_leaves_a_contended_channel_for_the_next_pass(clock: FakeClock) -> None:
    """A channel whose compare-and-set loses during a sweep emits nothing and stays."""
    store = ContendedStore()
    manager = ChannelManager(store, clock=clock)
    await manager.open_public(PUBLIC, ttl=10)
    await manager.create_private(PRIVATE, ttl=10)
    clock.advance(10)

    assert await manager.sweep() == []
    assert [c.state for c in await manager.list()] == [ChannelState.OPEN, ChannelState.OPEN]


async def test_endless_contention_is_an_internal_error(clock: FakeClock) -> None:
    """An update that loses every compare-and-set gives up with PARSEC_INTERNAL."""
    manager = ChannelManager(ContendedStore(), clock=clock)
    await manager.open_public(PUBLIC)

    await raises_code("PARSEC_INTERNAL", manager.touch(PUBLIC))
    await raises_code("PARSEC_INTERNAL", manager.delete(PUBLIC))
    await raises_code("PARSEC_INTERNAL", manager.open_public(PUBLIC))


# --- events --------------------------------------------------------------------------------


async def test_every_subscription_gets_every_event_in_order(
    manager: ChannelManager, clock: FakeClock
) -> None:
    """Two subscriptions each see opened, closed, opened, deleted in emission order."""
    first, second = manager.events(), manager.events()
    await manager.open_public(PUBLIC, ttl=10)
    clock.advance(10)
    await manager.sweep()
    await manager.open_public(PUBLIC)
    await manager.delete(PUBLIC)
    await first.aclose()
    await second.aclose()

    expected = ["opened", "closed", "opened", "deleted"]
    assert [e.kind async for e in first] == expected
    assert [e.kind async for e in second] == expected


async def test_a_subscription_sees_only_later_events(manager: ChannelManager) -> None:
    """Events emitted before events() was called are not replayed."""
    await manager.open_public(PUBLIC)
    events = manager.events()

    await manager.create_private(PRIVATE)

    assert await drained(events) == [ChannelEvent("opened", PRIVATE, NOW)]


async def test_a_waiting_subscriber_is_woken(manager: ChannelManager) -> None:
    """A subscriber blocked on the next event receives it once it is emitted."""
    events = manager.events()
    waiter = asyncio.create_task(anext(events))

    await manager.open_public(PUBLIC)

    async with asyncio.timeout(WAIT):
        assert await waiter == ChannelEvent("opened", PUBLIC, NOW)


async def test_a_slow_subscriber_loses_the_oldest_events(manager: ChannelManager) -> None:
    """Past EVENT_BUFFER undelivered events the oldest are dropped and counted; the
    manager never waits for the subscriber."""
    slow = manager.events()
    extra = 5
    names = [f"public:app.ch{i}" for i in range(EVENT_BUFFER + extra)]

    for name in names:
        await manager.open_public(name)
    await slow.aclose()

    assert [e.name async for e in slow] == names[extra:]
    assert slow.dropped == extra


async def test_a_closed_subscription_stops_receiving(manager: ChannelManager) -> None:
    """After aclose a subscription drains what it holds, then ends; later events are lost."""
    events = manager.events()
    await manager.open_public(PUBLIC)

    await events.aclose()
    await events.aclose()
    await manager.create_private(PRIVATE)

    assert [e.name async for e in events] == [PUBLIC]


async def test_closing_the_manager_ends_subscriptions(clock: FakeClock) -> None:
    """aclose ends every subscription after its buffered events; later ones end at once."""
    manager = ChannelManager(clock=clock)
    events = manager.events()
    waiter = asyncio.create_task(anext(manager.events(), None))
    await manager.open_public(PUBLIC)
    assert await waiter is not None

    await manager.aclose()

    assert [e.name async for e in events] == [PUBLIC]
    assert [e async for e in manager.events()] == []


# --- the sweeper task and lifecycle -----------------------------------------------------------


async def test_sweeper_closes_idle_channels(clock: FakeClock) -> None:
    """start() runs sweeps every sweep_interval; an idle public channel gets "closed"."""
    manager = ChannelManager(clock=clock, sweep_interval=0.01)
    await manager.open_public(PUBLIC, ttl=60)
    events = manager.events()
    clock.advance(60)

    await manager.start()
    await manager.start()
    try:
        async with asyncio.timeout(WAIT):
            event = await anext(events)
    finally:
        await manager.aclose()

    assert event == ChannelEvent("closed", PUBLIC, NOW + 60)


async def test_sweeper_survives_a_failing_store(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep that fails is logged and the next one still runs."""
    manager = ChannelManager(FailingListStore(failures=2), clock=clock, sweep_interval=0.01)
    await manager.create_private(PRIVATE, ttl=60)
    events = manager.events()
    clock.advance(60)

    with caplog.at_level(logging.ERROR, logger="parsec.channels"):
        await manager.start()
        try:
            async with asyncio.timeout(WAIT):
                event = await anext(events)
        finally:
            await manager.aclose()

    assert event == ChannelEvent("deleted", PRIVATE, NOW + 60)
    assert [r.message for r in caplog.records].count("channel sweep failed; retrying in 0.01s") == 2


async def test_start_after_aclose_is_refused(clock: FakeClock) -> None:
    """A closed manager cannot be started again; closing twice is fine."""
    manager = ChannelManager(clock=clock)
    await manager.aclose()
    await manager.aclose()

    with pytest.raises(RuntimeError, match="closed"):
        await manager.start()


async def test_aclose_closes_only_a_store_it_made(clock: FakeClock) -> None:
    """An injected store stays open after the manager closes."""
    injected = ClosingStore()
    manager = ChannelManager(injected, clock=clock)
    await manager.open_public(PUBLIC)

    await manager.aclose()

    assert injected.closed is False
    assert await injected.get(PUBLIC) is not None


@pytest.mark.parametrize(
    ("public", "private", "maximum", "interval", "message"),
    [
        (0, 900, 3600, 30, "public_ttl must be a positive finite number"),
        (1800, -1, 3600, 30, "private_ttl must be a positive finite number"),
        (1800, 900, float("nan"), 30, "max_private_ttl must be a positive finite number"),
        (1800, 900, 3600, float("inf"), "sweep_interval must be a positive finite number"),
        (1800, 3601, 3600, 30, "private_ttl must not exceed max_private_ttl"),
    ],
)
def test_constructor_refuses_bad_durations(
    public: float, private: float, maximum: float, interval: float, message: str
) -> None:
    """Non-positive, non-finite or inconsistent durations are a ValueError naming the option."""
    with pytest.raises(ValueError, match=message):
        ChannelManager(
            public_ttl=public, private_ttl=private, max_private_ttl=maximum, sweep_interval=interval
        )
