"""The KeyRingStore contract (``parsec.auth.keyring_store``), on every store: the in-memory
one and Redis (the real one, under a prefix unique to the test, deleted afterwards).

``stores()`` hands out one store per node; the nodes of a test share one keyring.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from parsec.auth.keyring import KeyRing
from parsec.auth.keyring_store import KeyRingStore, MemoryKeyRingStore
from parsec.backends.redis.keyring import RedisKeyRingStore

from .redis_backend import REDIS_URL

WAIT = 5.0

Stores = Callable[[], KeyRingStore]


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    """Makes the stores of the nodes of one shared keyring; closes them afterwards."""
    made: list[KeyRingStore] = []
    if request.param == "memory":
        shared = MemoryKeyRingStore()
        made.append(shared)
        yield lambda: shared
        await shared.aclose()
        return
    prefix = f"parsec-conformance-{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(REDIS_URL)

    def make() -> KeyRingStore:
        store = RedisKeyRingStore(client, prefix=prefix)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.aclose()
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def document() -> bytes:
    """A fresh, valid keyring document."""
    return KeyRing.in_memory().snapshot_json()


async def test_an_empty_store_holds_nothing(stores: Stores) -> None:
    """Before anyone seeds it, a store has no document and no version."""
    store = stores()
    assert await store.load() is None
    assert await store.version() is None


async def test_of_concurrent_seeders_exactly_one_wins(stores: Stores) -> None:
    """Nodes seeding an empty store at once all get the one document that was stored."""
    offered = [document() for _ in range(6)]
    results = await asyncio.gather(*(stores().create_if_absent(d) for d in offered))

    stored = await stores().load()
    assert stored is not None
    assert stored.document in offered
    assert {result.document for result in results} == {stored.document}
    assert await stores().create_if_absent(document()) == stored


async def test_replace_is_compare_and_set(stores: Stores) -> None:
    """A replace against the stored document swaps it and moves the version; a replace
    against a document that was replaced meanwhile changes nothing."""
    store, other = stores(), stores()
    seeded = await store.create_if_absent(document())
    mine, theirs = document(), document()

    version = await other.replace(theirs, current=seeded)
    lost = await store.replace(mine, current=seeded)

    assert version is not None
    assert version > seeded.version
    assert lost is None
    stored = await store.load()
    assert stored is not None
    assert (stored.document, stored.version) == (theirs, version)
    assert await store.version() == version


async def test_every_change_moves_the_version_forward(stores: Stores) -> None:
    """Each stored change gives a larger version."""
    store = stores()
    current = await store.create_if_absent(document())
    versions = [current.version]
    for _ in range(3):
        new = document()
        version = await store.replace(new, current=current)
        assert version is not None
        versions.append(version)
        current = await store.load() or current
    assert versions == sorted(set(versions))


async def test_watchers_of_every_node_hear_of_a_change(stores: Stores) -> None:
    """A change made through one node's store calls the watchers of every node."""
    store, other = stores(), stores()
    heard = asyncio.Event()
    await other.watch(heard.set)
    seeded = await store.create_if_absent(document())
    async with asyncio.timeout(WAIT):
        await heard.wait()

    heard.clear()
    await store.replace(document(), current=seeded)
    async with asyncio.timeout(WAIT):
        await heard.wait()


async def test_aclose_is_idempotent(stores: Stores) -> None:
    """Closing a store twice is fine."""
    store = stores()
    await store.watch(lambda: None)
    await store.aclose()
    await store.aclose()
