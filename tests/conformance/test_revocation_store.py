"""RevocationStore conformance: the guarantees stated in ``parsec.auth.revocation_store``.

``backend.revocation_store()`` is one node's store; every store a factory makes shares
the same revocations (one Redis key prefix, or one in-memory store)."""

from __future__ import annotations

import asyncio

from parsec.auth.revocation_store import (
    FOREVER,
    Revocation,
    RevocationStore,
    StoreState,
    family_key,
    token_key,
    user_key,
)

from .factories import BackendFactory

NOW = 1_700_000_000


async def test_an_empty_store_has_no_generation(revocation_store: RevocationStore) -> None:
    """Before anything is added a store holds nothing and has no generation."""
    stored = await revocation_store.load()

    assert stored.state == StoreState(None, 0)
    assert stored.entries == {}
    assert await revocation_store.state() == StoreState(None, 0)


async def test_add_gives_the_store_a_generation_that_stays(
    revocation_store: RevocationStore,
) -> None:
    """The first add (even of nothing) creates a generation; later adds keep it."""
    first = await revocation_store.add({})
    assert first.generation is not None

    later = await revocation_store.add({token_key("j"): Revocation(NOW, NOW)})

    assert later.generation == first.generation
    assert (await revocation_store.state()).generation == first.generation


async def test_entries_are_shared_between_stores(backend: BackendFactory) -> None:
    """What one node's store adds, another node's store loads, whatever the keys hold."""
    entries = {
        token_key("jti-1"): Revocation(NOW + 10, NOW + 10),
        family_key("fid-1"): Revocation(NOW + 20, NOW + 20),
        user_key("a:b", "channel:c:d"): Revocation(NOW, FOREVER),
        user_key("a", "b:channel:c:d"): Revocation(NOW - 1, NOW + 5),
    }
    state = await backend.revocation_store().add(entries)

    stored = await backend.revocation_store().load()

    assert stored.entries == entries
    assert stored.state == state


async def test_add_only_ever_grows_each_value(revocation_store: RevocationStore) -> None:
    """Adding an entry again keeps the larger level and the larger until of the two."""
    key = user_key("alice", "*")
    await revocation_store.add({key: Revocation(NOW + 10, NOW + 100)})
    await revocation_store.add({key: Revocation(NOW, NOW + 500)})
    await revocation_store.add({key: Revocation(NOW + 20, NOW + 50)})

    assert (await revocation_store.load()).entries == {key: Revocation(NOW + 20, NOW + 500)}


async def test_the_version_moves_with_every_change_only(revocation_store: RevocationStore) -> None:
    """An add that changes an entry moves the version; one that changes nothing does not."""
    key = token_key("j")
    first = await revocation_store.add({key: Revocation(NOW, NOW)})
    same = await revocation_store.add({key: Revocation(NOW, NOW)})
    weaker = await revocation_store.add({key: Revocation(NOW - 5, NOW - 5)})
    stronger = await revocation_store.add({key: Revocation(NOW + 5, NOW + 5)})

    assert first.version == same.version == weaker.version
    assert stronger.version > first.version
    assert await revocation_store.state() == stronger


async def test_concurrent_first_adds_agree_on_one_generation(backend: BackendFactory) -> None:
    """Nodes adding to a store without a generation at once all get the same one, and
    every entry is kept."""
    stores = [backend.revocation_store() for _ in range(6)]

    states = await asyncio.gather(
        *(store.add({token_key(f"j{i}"): Revocation(NOW, NOW)}) for i, store in enumerate(stores))
    )

    assert len({state.generation for state in states}) == 1
    assert len((await stores[0].load()).entries) == 6


async def test_prune_forgets_what_ran_out_and_keeps_the_rest(
    revocation_store: RevocationStore,
) -> None:
    """Entries whose until is at or before now are forgotten; the generation and the
    version stay."""
    state = await revocation_store.add(
        {
            token_key("gone"): Revocation(NOW, NOW),
            token_key("kept"): Revocation(NOW + 1, NOW + 1),
            user_key("forever", "*"): Revocation(NOW, FOREVER),
        }
    )

    await revocation_store.prune(NOW)

    stored = await revocation_store.load()
    assert stored.entries.keys() == {token_key("kept"), user_key("forever", "*")}
    assert stored.state == state


async def test_a_store_that_lost_its_data_gets_a_new_generation(
    backend: BackendFactory,
) -> None:
    """Once the data is lost the store has no generation (so nodes can tell), and the
    next add gives it a new one."""
    store = backend.revocation_store()
    before = await store.add({token_key("j"): Revocation(NOW, NOW)})

    await backend.lose_data()

    assert await store.state() == StoreState(None, 0)
    after = await store.add({})
    assert after.generation not in (None, before.generation)
    assert (await store.load()).entries == {}
