"""Broker conformance: the guarantees stated in ``parsec.engine.broker``."""

from __future__ import annotations

import pytest

from parsec.engine.broker import Broker, HistoryFilter, PublishOptions
from parsec.engine.types import ClientInfo, Publication, StreamPosition

from .factories import BackendFactory, supports
from .recorders import BrokerRecorder, JoinLeave, payload, publication

META_TTL = 3_600.0
HISTORY = PublishOptions(history_size=10, history_ttl=60.0, history_meta_ttl=META_TTL)
NO_HISTORY = PublishOptions()
ALL = HistoryFilter(limit=-1)

needs_history = pytest.mark.requires("history")
"""Deselected for brokers that keep no history (NATS)."""
needs_idempotency = pytest.mark.requires("idempotency")
"""Deselected for brokers that cannot deduplicate publishes (NATS)."""


@pytest.fixture
def kept(backend: BackendFactory) -> PublishOptions:
    """HISTORY where the backend keeps history, else NO_HISTORY: the delivery tests
    hold on every broker, and check positions where there are some."""
    return HISTORY if supports(backend, "history") else NO_HISTORY


async def publish_values(
    broker: Broker, channel: str, values: list[object], opts: PublishOptions = HISTORY
) -> list[StreamPosition]:
    """Publish each value in order; return the positions the broker answered."""
    return [await broker.publish(channel, publication(v), opts) for v in values]


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


def keyed(key: str, ttl: float = 300.0, opts: PublishOptions = HISTORY) -> PublishOptions:
    """``opts`` with an idempotency key."""
    return PublishOptions(
        history_size=opts.history_size,
        history_ttl=opts.history_ttl,
        history_meta_ttl=opts.history_meta_ttl,
        idempotency_key=key,
        idempotent_result_ttl=ttl,
    )


# --- offsets and epochs ------------------------------------------------------------


@needs_history
async def test_offsets_start_at_one_and_grow_by_one(broker: Broker, channel: str) -> None:
    """A new stream's publications get offsets 1, 2, 3 … in one non-empty epoch."""
    positions = await publish_values(broker, channel, ["a", "b", "c", "d"])

    assert [p.offset for p in positions] == [1, 2, 3, 4]
    assert len({p.epoch for p in positions}) == 1
    assert positions[0].epoch != ""


@needs_history
async def test_history_returns_publications_with_their_offsets(
    broker: Broker, channel: str
) -> None:
    """History holds the published data in order, each at the offset publish returned."""
    positions = await publish_values(broker, channel, ["a", "b", "c"])

    result = await broker.history(channel, ALL)

    assert [payload(p) for p in result.publications] == ["a", "b", "c"]
    assert offsets(result.publications) == [p.offset for p in positions]
    assert result.position == positions[-1]


@needs_history
async def test_streams_of_different_channels_are_independent(broker: Broker) -> None:
    """Each channel's stream numbers its own publications from 1."""
    first = await publish_values(broker, "conformance:one", ["a", "b"])
    second = await publish_values(broker, "conformance:two", ["c"])

    assert [p.offset for p in first] == [1, 2]
    assert [p.offset for p in second] == [1]


@needs_history
async def test_reading_a_new_channel_creates_its_position(broker: Broker, channel: str) -> None:
    """Reading an unknown channel gives offset 0 in an epoch that later publications keep."""
    empty = await broker.history(channel, ALL)
    again = await broker.history(channel, HistoryFilter())
    [first] = await publish_values(broker, channel, ["a"])

    assert empty.publications == []
    assert empty.position.offset == 0
    assert empty.position.epoch != ""
    assert again.position == empty.position
    assert first == StreamPosition(1, empty.position.epoch)


@needs_history
async def test_epoch_is_stable_while_the_stream_lives(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """Publications spaced within the meta TTL share one epoch and keep counting."""
    positions: list[StreamPosition] = []
    for value in ["a", "b", "c"]:
        positions += await publish_values(broker, channel, [value])
        await backend.advance(META_TTL / 2)
    top = await broker.history(channel, HistoryFilter())

    assert [p.offset for p in positions] == [1, 2, 3]
    assert {p.epoch for p in positions} == {top.position.epoch}
    assert top.position.offset == 3


@needs_history
async def test_epoch_changes_after_the_meta_ttl(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """After the meta TTL passes idle, the stream restarts at offset 1 in a new epoch."""
    [_, old] = await publish_values(broker, channel, ["a", "b"])
    await backend.advance(META_TTL + 1)

    [new] = await publish_values(broker, channel, ["c"])

    assert new.offset == 1
    assert new.epoch not in ("", old.epoch)


@needs_history
async def test_reading_after_the_meta_ttl_gives_a_new_empty_position(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """A read after the meta TTL passed finds offset 0 in a new epoch and no publications."""
    [old] = await publish_values(broker, channel, ["a"])
    await backend.advance(META_TTL + 1)

    result = await broker.history(channel, ALL, META_TTL)

    assert result.publications == []
    assert result.position.offset == 0
    assert result.position.epoch not in ("", old.epoch)


# --- delivery ----------------------------------------------------------------------


async def test_publication_is_delivered_exactly_once_with_its_position(
    broker: Broker, recorder: BrokerRecorder, channel: str, kept: PublishOptions
) -> None:
    """A subscribed node gets a publication once, with the position publish returned."""
    await broker.subscribe(channel)
    position = await broker.publish(channel, publication({"n": 1}), kept)
    await broker.publish(channel, publication("end"), NO_HISTORY)

    first, end = await recorder.publications(2)

    assert (first.channel, payload(first.pub), first.position) == (channel, {"n": 1}, position)
    assert first.pub.offset == position.offset
    assert payload(end.pub) == "end"
    assert recorder.pending() == 0


@needs_history
async def test_offsets_reach_the_node_in_order_without_gaps(
    broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """Delivered positions are 1..n in publish order, as publish returned them."""
    await broker.subscribe(channel)
    values = list(range(20))
    positions = await publish_values(broker, channel, list(values))

    delivered = await recorder.publications(len(values))

    assert [d.position for d in delivered] == positions
    assert [d.position.offset for d in delivered] == list(range(1, 21))
    assert [payload(d.pub) for d in delivered] == values


@needs_history
async def test_history_holds_every_delivered_publication(
    broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """Each delivered publication is in history at the offset it was delivered with."""
    await broker.subscribe(channel)
    await publish_values(broker, channel, ["a", "b", "c"])
    delivered = await recorder.publications(3)

    kept = {p.offset: payload(p) for p in (await broker.history(channel, ALL)).publications}

    assert {d.position.offset: payload(d.pub) for d in delivered} == kept


@needs_history
@pytest.mark.parametrize(
    ("size", "ttl"), [(0, 0.0), (10, 0.0), (0, 60.0)], ids=["none", "no-ttl", "no-size"]
)
async def test_publish_without_history_returns_an_empty_position(
    broker: Broker, recorder: BrokerRecorder, channel: str, size: int, ttl: float
) -> None:
    """Without history, publish returns and delivers the empty position and keeps nothing."""
    await broker.subscribe(channel)
    opts = PublishOptions(history_size=size, history_ttl=ttl)

    position = await broker.publish(channel, publication("a"), opts)
    [delivered] = await recorder.publications(1)
    result = await broker.history(channel, ALL)

    assert position == StreamPosition()
    assert delivered.position == StreamPosition()
    assert delivered.pub.offset == 0
    assert result.publications == []
    assert result.position.offset == 0


async def test_node_not_subscribed_misses_publications(
    broker: Broker, recorder: BrokerRecorder, channel: str, kept: PublishOptions
) -> None:
    """A publication to a channel the node has not subscribed to is not delivered."""
    other = f"{channel}-subscribed"
    await broker.subscribe(other)

    await broker.publish(channel, publication("missed"), kept)
    await broker.publish(other, publication("seen"), kept)

    [seen] = await recorder.publications(1)
    assert (seen.channel, payload(seen.pub)) == (other, "seen")
    assert recorder.pending() == 0


async def test_unsubscribe_stops_delivery(
    broker: Broker, recorder: BrokerRecorder, channel: str, kept: PublishOptions
) -> None:
    """After unsubscribe, the channel's publications and joins no longer reach the node."""
    other = f"{channel}-subscribed"
    await broker.subscribe(channel)
    await broker.subscribe(other)
    await broker.unsubscribe(channel)

    await broker.publish(channel, publication("missed"), kept)
    await broker.publish_join(channel, ClientInfo(user="u", client="c"))
    await broker.publish(other, publication("seen"), kept)

    [seen] = await recorder.publications(1)
    assert (seen.channel, payload(seen.pub)) == (other, "seen")
    assert recorder.pending() == 0


async def test_subscribe_and_unsubscribe_are_idempotent(
    broker: Broker, recorder: BrokerRecorder, channel: str, kept: PublishOptions
) -> None:
    """Subscribing twice delivers once; repeated or unknown unsubscribes are harmless."""
    await broker.unsubscribe("conformance:never-subscribed")
    await broker.subscribe(channel)
    await broker.subscribe(channel)

    await broker.publish(channel, publication("once"), kept)
    await broker.publish(channel, publication("end"), NO_HISTORY)
    delivered = await recorder.publications(2)
    await broker.unsubscribe(channel)
    await broker.unsubscribe(channel)

    assert [payload(d.pub) for d in delivered] == ["once", "end"]
    assert recorder.pending() == 0


async def test_join_and_leave_are_delivered_in_order(
    broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """publish_join and publish_leave reach a subscribed node with the client's info."""
    info = ClientInfo(user="alice", client="c-1")
    await broker.subscribe(channel)

    await broker.publish_join(channel, info)
    await broker.publish_leave(channel, info)

    assert await recorder.take(2) == [
        JoinLeave("join", channel, info),
        JoinLeave("leave", channel, info),
    ]


# --- history bounds ----------------------------------------------------------------


@needs_history
async def test_history_keeps_at_most_history_size(broker: Broker, channel: str) -> None:
    """Only the newest history_size publications are kept; the top offset counts all."""
    opts = PublishOptions(history_size=3, history_ttl=60.0)
    await publish_values(broker, channel, ["a", "b", "c", "d", "e"], opts)

    result = await broker.history(channel, ALL)

    assert offsets(result.publications) == [3, 4, 5]
    assert [payload(p) for p in result.publications] == ["c", "d", "e"]
    assert result.position.offset == 5


@needs_history
async def test_history_ttl_drops_publications_and_keeps_the_position(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """History TTL drops the publications; the position survives and the next continues it."""
    opts = PublishOptions(history_size=10, history_ttl=10.0, history_meta_ttl=META_TTL)
    [_, top] = await publish_values(broker, channel, ["a", "b"], opts)
    await backend.advance(11.0)

    expired = await broker.history(channel, ALL)
    [next_position] = await publish_values(broker, channel, ["c"], opts)
    after = await broker.history(channel, ALL)

    assert expired.publications == []
    assert expired.position == top
    assert next_position == StreamPosition(3, top.epoch)
    assert offsets(after.publications) == [3]


@needs_history
async def test_history_ttl_counts_from_the_last_publication(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """A publication keeps the whole stream alive for another history TTL."""
    opts = PublishOptions(history_size=10, history_ttl=10.0, history_meta_ttl=META_TTL)
    await publish_values(broker, channel, ["a"], opts)
    await backend.advance(6.0)
    await publish_values(broker, channel, ["b"], opts)
    await backend.advance(6.0)

    result = await broker.history(channel, ALL)

    assert offsets(result.publications) == [1, 2]


# --- history filter ----------------------------------------------------------------


@needs_history
async def test_limit_zero_reads_only_the_position(broker: Broker, channel: str) -> None:
    """limit 0 returns no publications and the stream's top position."""
    [*_, top] = await publish_values(broker, channel, ["a", "b"])

    result = await broker.history(channel, HistoryFilter(limit=0))

    assert result.publications == []
    assert result.position == top


@needs_history
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HistoryFilter(limit=-1), [1, 2, 3, 4, 5]),
        (HistoryFilter(limit=2), [1, 2]),
        (HistoryFilter(limit=10), [1, 2, 3, 4, 5]),
        (HistoryFilter(limit=-1, reverse=True), [5, 4, 3, 2, 1]),
        (HistoryFilter(limit=2, reverse=True), [5, 4]),
    ],
    ids=["all", "oldest-two", "limit-above-size", "all-newest-first", "newest-two"],
)
async def test_history_limit_and_direction(
    broker: Broker, channel: str, flt: HistoryFilter, expected: list[int]
) -> None:
    """limit < 0 reads all, limit > 0 at most that many; oldest first unless reversed."""
    [*_, top] = await publish_values(broker, channel, ["a", "b", "c", "d", "e"])

    result = await broker.history(channel, flt)

    assert offsets(result.publications) == expected
    assert result.position == top


@needs_history
@pytest.mark.parametrize(
    ("since", "limit", "expected"),
    [(0, -1, [1, 2, 3, 4, 5]), (2, -1, [3, 4, 5]), (2, 2, [3, 4]), (5, -1, []), (4, 0, [])],
    ids=["from-start", "after-two", "after-two-limited", "at-top", "position-only"],
)
async def test_since_reads_publications_strictly_after_a_position(
    broker: Broker, channel: str, since: int, limit: int, expected: list[int]
) -> None:
    """``since`` in the current epoch reads the publications after that offset."""
    [*_, top] = await publish_values(broker, channel, ["a", "b", "c", "d", "e"])
    flt = HistoryFilter(since=StreamPosition(since, top.epoch), limit=limit)

    result = await broker.history(channel, flt)

    assert offsets(result.publications) == expected
    assert result.position == top


@needs_history
@pytest.mark.parametrize(
    ("since", "limit", "expected"),
    [(4, -1, [3, 2, 1]), (4, 2, [3, 2]), (1, -1, []), (6, -1, [5, 4, 3, 2, 1])],
)
async def test_reverse_since_pages_backwards_from_a_position(
    broker: Broker, channel: str, since: int, limit: int, expected: list[int]
) -> None:
    """``since`` with ``reverse`` reads the publications before that offset, newest first."""
    [*_, top] = await publish_values(broker, channel, ["a", "b", "c", "d", "e"])
    flt = HistoryFilter(since=StreamPosition(since, top.epoch), limit=limit, reverse=True)

    result = await broker.history(channel, flt)

    assert offsets(result.publications) == expected
    assert result.position == top


@needs_history
async def test_remove_history_keeps_the_position(broker: Broker, channel: str) -> None:
    """remove_history drops publications; offset and epoch stay and the next continues them."""
    [*_, top] = await publish_values(broker, channel, ["a", "b", "c"])

    await broker.remove_history(channel)
    removed = await broker.history(channel, ALL)
    [next_position] = await publish_values(broker, channel, ["d"])

    assert removed.publications == []
    assert removed.position == top
    assert next_position == StreamPosition(4, top.epoch)
    assert offsets((await broker.history(channel, ALL)).publications) == [4]


@needs_history
async def test_remove_history_of_an_unknown_channel_is_harmless(
    broker: Broker, channel: str
) -> None:
    """Removing history no one published, twice, raises nothing and reads empty."""
    await broker.remove_history(channel)
    await broker.remove_history(channel)

    result = await broker.history(channel, ALL)

    assert result.publications == []
    assert result.position.offset == 0


# --- idempotency -------------------------------------------------------------------


@needs_history
@needs_idempotency
async def test_repeated_idempotency_key_is_not_published_again(
    broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """A key repeated within its TTL returns the first position; not delivered or kept."""
    await broker.subscribe(channel)
    first = await broker.publish(channel, publication("first"), keyed("k"))
    repeat = await broker.publish(channel, publication("repeat"), keyed("k"))
    await broker.publish(channel, publication("end"), NO_HISTORY)

    delivered = await recorder.publications(2)
    result = await broker.history(channel, ALL)

    assert repeat == first
    assert [payload(d.pub) for d in delivered] == ["first", "end"]
    assert [payload(p) for p in result.publications] == ["first"]


@needs_history
@needs_idempotency
async def test_idempotency_key_is_deduplicated_until_its_ttl(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """A repeat just before the TTL ends is still a duplicate."""
    first = await broker.publish(channel, publication("a"), keyed("k", ttl=10.0))
    await backend.advance(9.0)

    repeat = await broker.publish(channel, publication("b"), keyed("k", ttl=10.0))

    assert repeat == first
    assert offsets((await broker.history(channel, ALL)).publications) == [1]


@needs_history
@needs_idempotency
async def test_idempotency_key_publishes_again_after_its_ttl(
    backend: BackendFactory, broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """After the TTL the same key is a new publication: new offset, delivered."""
    await broker.subscribe(channel)
    first = await broker.publish(channel, publication("a"), keyed("k", ttl=10.0))
    await backend.advance(11.0)

    again = await broker.publish(channel, publication("b"), keyed("k", ttl=10.0))

    assert again == StreamPosition(2, first.epoch)
    assert [payload(d.pub) for d in await recorder.publications(2)] == ["a", "b"]


@needs_history
@needs_idempotency
async def test_short_idempotency_ttl_expires_behind_a_longer_one(
    backend: BackendFactory, broker: Broker, channel: str
) -> None:
    """A key expires on its own TTL even behind an older key with a longer TTL."""
    await broker.publish(channel, publication("long"), keyed("long", ttl=300.0))
    await broker.publish(channel, publication("short"), keyed("short", ttl=10.0))
    await backend.advance(20.0)

    again = await broker.publish(channel, publication("short again"), keyed("short", ttl=10.0))
    repeat = await broker.publish(channel, publication("long again"), keyed("long", ttl=300.0))

    assert again.offset == 3
    assert repeat.offset == 1


@needs_idempotency
async def test_idempotency_without_history_returns_the_empty_position(
    broker: Broker, recorder: BrokerRecorder, channel: str
) -> None:
    """A repeated key without history returns the empty position and is not delivered."""
    await broker.subscribe(channel)
    opts = keyed("k", opts=NO_HISTORY)
    first = await broker.publish(channel, publication("a"), opts)
    repeat = await broker.publish(channel, publication("b"), opts)
    await broker.publish(channel, publication("end"), NO_HISTORY)

    delivered = await recorder.publications(2)

    assert first == repeat == StreamPosition()
    assert [payload(d.pub) for d in delivered] == ["a", "end"]


# --- lifecycle ---------------------------------------------------------------------


async def test_aclose_is_idempotent(backend: BackendFactory) -> None:
    """Closing a started broker twice raises nothing."""
    broker = backend.broker()
    await broker.start(BrokerRecorder())

    await broker.aclose()
    await broker.aclose()
