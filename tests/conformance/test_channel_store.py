"""ChannelStore conformance: the guarantees stated in ``parsec.channels.store``."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsec.channels.store import Channel, ChannelState, ChannelStore

from .factories import BackendFactory

CONTENDERS = 10


def record(
    name: str, *, state: ChannelState = ChannelState.OPEN, last_active: float = 1_000.25
) -> Channel:
    """A record of channel `name`; only what the tests vary is a parameter."""
    visibility = name.partition(":")[0]
    return Channel(name, visibility, state, 900.5, 1_000.125, last_active)


@pytest.fixture
def name() -> str:
    """A channel name no other test uses."""
    return f"private:conformance.store.{uuid.uuid4().hex[:12]}"


async def test_unknown_name_is_absent(channel_store: ChannelStore, name: str) -> None:
    """A name nobody created reads as None and is not listed."""
    assert await channel_store.get(name) is None
    assert name not in [c.name for c in await channel_store.list()]


async def test_created_record_reads_back_exactly(channel_store: ChannelStore, name: str) -> None:
    """A created record is returned by get and list with every field unchanged."""
    created = record(name, state=ChannelState.CLOSED, last_active=1_234.5678)

    assert await channel_store.create_if_absent(created) is True

    assert await channel_store.get(name) == created
    assert created in await channel_store.list()


async def test_create_refuses_an_existing_name(channel_store: ChannelStore, name: str) -> None:
    """create_if_absent on a taken name returns False and keeps the first record."""
    first = record(name)
    await channel_store.create_if_absent(first)

    assert await channel_store.create_if_absent(record(name, last_active=5_000.0)) is False

    assert await channel_store.get(name) == first


async def test_concurrent_creators_have_one_winner(channel_store: ChannelStore, name: str) -> None:
    """Of many concurrent creators of one name exactly one succeeds, and its record is kept."""
    contenders = [record(name, last_active=float(i)) for i in range(CONTENDERS)]

    won = await asyncio.gather(*(channel_store.create_if_absent(c) for c in contenders))

    assert won.count(True) == 1
    assert await channel_store.get(name) == contenders[won.index(True)]


async def test_replace_swaps_the_current_record(channel_store: ChannelStore, name: str) -> None:
    """replace with the record as read stores the new one."""
    current = record(name)
    await channel_store.create_if_absent(current)
    new = dataclasses.replace(current, state=ChannelState.CLOSED)

    assert await channel_store.replace(current, new) is True

    assert await channel_store.get(name) == new


async def test_replace_with_a_stale_record_changes_nothing(
    channel_store: ChannelStore, name: str
) -> None:
    """replace returns False and keeps the stored record when it changed since it was read."""
    stale = record(name)
    await channel_store.create_if_absent(stale)
    fresh = dataclasses.replace(stale, last_active=2_000.0)
    await channel_store.replace(stale, fresh)

    assert await channel_store.replace(stale, record(name, last_active=3_000.0)) is False

    assert await channel_store.get(name) == fresh


async def test_replace_of_a_missing_record_stores_nothing(
    channel_store: ChannelStore, name: str
) -> None:
    """replace never creates: with no record under the name it returns False."""
    assert await channel_store.replace(record(name), record(name, last_active=2.0)) is False

    assert await channel_store.get(name) is None


async def test_replace_refuses_a_rename(channel_store: ChannelStore, name: str) -> None:
    """replace with a record of another name raises ValueError and changes nothing."""
    current = record(name)
    await channel_store.create_if_absent(current)

    with pytest.raises(ValueError, match="cannot replace"):
        await channel_store.replace(current, record(f"{name}x"))

    assert await channel_store.get(name) == current
    assert await channel_store.get(f"{name}x") is None


async def test_concurrent_replacers_have_one_winner(channel_store: ChannelStore, name: str) -> None:
    """Of many replacers holding the same read, exactly one succeeds."""
    current = record(name)
    await channel_store.create_if_absent(current)
    updates = [dataclasses.replace(current, last_active=float(i)) for i in range(CONTENDERS)]

    won = await asyncio.gather(*(channel_store.replace(current, u) for u in updates))

    assert won.count(True) == 1
    assert await channel_store.get(name) == updates[won.index(True)]


async def test_remove_frees_the_name(channel_store: ChannelStore, name: str) -> None:
    """remove deletes the record; the name can then be created again."""
    current = record(name)
    await channel_store.create_if_absent(current)

    assert await channel_store.remove(current) is True

    assert await channel_store.get(name) is None
    assert name not in [c.name for c in await channel_store.list()]
    assert await channel_store.create_if_absent(record(name, last_active=9.0)) is True


async def test_remove_with_a_stale_record_keeps_it(channel_store: ChannelStore, name: str) -> None:
    """remove returns False and keeps the record when it changed since it was read."""
    stale = record(name)
    await channel_store.create_if_absent(stale)
    fresh = dataclasses.replace(stale, last_active=2_000.0)
    await channel_store.replace(stale, fresh)

    assert await channel_store.remove(stale) is False
    assert await channel_store.remove(record(f"{name}x")) is False

    assert await channel_store.get(name) == fresh


async def test_list_is_sorted_by_name(channel_store: ChannelStore, name: str) -> None:
    """list returns every record, open or closed, in name order."""
    names = [f"{name}.c", f"{name}.a", f"{name}.b"]
    for n, state in zip(
        names, [ChannelState.OPEN, ChannelState.CLOSED, ChannelState.OPEN], strict=True
    ):
        await channel_store.create_if_absent(record(n, state=state))

    listed = [c for c in await channel_store.list() if c.name.startswith(name)]

    assert [c.name for c in listed] == sorted(names)
    assert [c.state for c in listed] == [ChannelState.CLOSED, ChannelState.OPEN, ChannelState.OPEN]


async def test_aclose_is_idempotent(backend: BackendFactory) -> None:
    """Closing a channel store twice raises nothing."""
    store = backend.channel_store()

    await store.aclose()
    await store.aclose()


operations = st.lists(
    st.tuples(
        st.sampled_from(["create", "replace", "remove"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=3),  # last_active of the record the op uses
        st.booleans(),  # whether the op passes the record it read (False: a stale one)
    ),
    max_size=30,
)


# The backend fixture is function-scoped on purpose: each example makes its own
# store from it and uses names of its own, so examples share no state.
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_store_agrees_with_a_model(
    backend: BackendFactory, ops: list[tuple[str, str, int, bool]]
) -> None:
    """After any mix of creates and fresh or stale replaces and removes, the store matches a
    dict that applies the same compare-and-set rules."""
    store = backend.channel_store()
    prefix = f"public:conformance.{uuid.uuid4().hex[:12]}"
    model: dict[str, Channel] = {}
    for op, suffix, stamp, fresh in ops:
        name = f"{prefix}.{suffix}"
        new = record(name, last_active=float(stamp))
        stored = model.get(name)
        read = stored if fresh and stored is not None else record(name, last_active=-1.0)
        if op == "create":
            assert await store.create_if_absent(new) is (stored is None)
            model.setdefault(name, new)
        elif op == "replace":
            assert await store.replace(read, new) is (stored == read)
            if stored == read:
                model[name] = new
        else:
            assert await store.remove(read) is (stored == read)
            if stored == read:
                del model[name]

    listed = [c for c in await store.list() if c.name.startswith(prefix)]

    assert listed == [model[n] for n in sorted(model)]
