"""SharedKeyRing over the in-memory store: bootstrap, following, compare-and-set changes,
bad documents and an emptied store, as two nodes of one process see them."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from waiting import until

from parsec.auth.keyring import ACTIVE, FILE_NAME, VERIFY_ONLY, KeyRing, KeyRingError
from parsec.auth.keyring_store import MemoryKeyRingStore, StoredKeyRing
from parsec.auth.shared_keyring import CHECK_INTERVAL, SharedKeyRing

FAST = 0.02


def kids(ring: KeyRing) -> set[str]:
    return {key.id for key in ring.keys()}


class Silent(MemoryKeyRingStore):
    """A memory store whose announcements are all lost: nodes must poll."""

    async def watch(self, on_change: Callable[[], None]) -> None:
        pass


class Contended(MemoryKeyRingStore):
    """A memory store where, once, another writer's change lands just before a replace."""

    def __init__(self) -> None:
        super().__init__()
        self.interloper: Callable[[], Awaitable[None]] | None = None
        self.replaces = 0

    async def replace(self, document: bytes, *, current: StoredKeyRing) -> int | None:
        self.replaces += 1
        interloper, self.interloper = self.interloper, None
        if interloper is not None:
            await interloper()
        return await super().replace(document, current=current)


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., SharedKeyRing]]:
    """Makes started-later SharedKeyRings (``make(ring, store)``); closes them all."""
    async with AsyncExitStack() as stack:
        made: list[SharedKeyRing] = []

        def make(ring: KeyRing, store: MemoryKeyRingStore, interval: float = FAST) -> SharedKeyRing:
            shared = SharedKeyRing(ring, store, check_interval=interval)
            made.append(shared)
            stack.push_async_callback(shared.aclose)
            return shared

        yield make


def test_the_default_look_is_every_second() -> None:
    """Without announcements a node looks at the store's version every second."""
    assert CHECK_INTERVAL == 1.0


@pytest.mark.parametrize("interval", [0, -1, math.nan])
def test_check_interval_must_be_positive(interval: float) -> None:
    """A zero, negative or NaN interval is refused at construction."""
    with pytest.raises(ValueError, match="check_interval must be a positive number"):
        SharedKeyRing(KeyRing.in_memory(), MemoryKeyRingStore(), check_interval=interval)


async def test_the_first_node_seeds_the_store_with_its_keyring_file(
    tmp_path: Path, nodes: Callable[..., SharedKeyRing]
) -> None:
    """On an empty store, the first node's keyring.json becomes the shared keyring."""
    store = MemoryKeyRingStore()
    ring = KeyRing.open(tmp_path)
    document = ring.snapshot_json()

    await nodes(ring, store).start()

    stored = await store.load()
    assert stored is not None
    assert stored.document == document
    assert ring.snapshot_json() == document


async def test_a_later_node_adopts_the_store_and_caches_it_in_its_file(
    tmp_path: Path, nodes: Callable[..., SharedKeyRing]
) -> None:
    """A node with a keyring file of its own takes the shared ring, whose document then
    replaces its file, so local tools see the shared keys."""
    store = MemoryKeyRingStore()
    first = KeyRing.open(tmp_path / "a")
    await nodes(first, store).start()
    later = KeyRing.open(tmp_path / "b")
    own_kid = later.active.id

    await nodes(later, store).start()

    assert kids(later) == kids(first)
    assert own_kid not in kids(later)
    assert (tmp_path / "b" / FILE_NAME).read_bytes() == first.snapshot_json()
    assert KeyRing.open(tmp_path / "b").active.id == first.active.id


async def test_two_nodes_starting_at_once_end_with_one_keyring(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """Two nodes bootstrapping concurrently on an empty store hold the same ring."""
    store = MemoryKeyRingStore()
    one, two = KeyRing.in_memory(), KeyRing.in_memory()

    await asyncio.gather(nodes(one, store).start(), nodes(two, store).start())

    assert one.snapshot_json() == two.snapshot_json()
    assert len(one.keys()) == 1


async def test_a_change_on_one_node_reaches_the_other(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """generate + promote through one node: the other signs with the new key soon after."""
    store = MemoryKeyRingStore()
    a = nodes(KeyRing.in_memory(), store)
    b = nodes(KeyRing.in_memory(), store)
    await a.start()
    await b.start()

    new = await a.update(lambda ring: ring.generate("ES256"))
    await a.update(lambda ring: ring.promote(new.id))

    assert a.keyring.active.id == new.id  # the changing node holds it at once
    await until(lambda: b.keyring.active.id == new.id)
    assert b.keyring.snapshot_json() == a.keyring.snapshot_json()


async def test_a_missed_announcement_still_converges(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """With every announcement lost, the other node still adopts the change by polling."""
    store = Silent()
    a = nodes(KeyRing.in_memory(), store)
    b = nodes(KeyRing.in_memory(), store)
    await a.start()
    await b.start()

    new = await a.update(lambda ring: ring.generate())

    await until(lambda: b.keyring.get(new.id) is not None)


async def test_a_lost_race_is_applied_again_on_the_fresh_document(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """When another node changes the ring between this node's load and its store, the
    change is re-applied on the fresh document: both changes are kept."""
    store = Contended()
    a = nodes(KeyRing.in_memory(), store)
    b = nodes(KeyRing.in_memory(), store)
    await a.start()
    await b.start()
    theirs: list[str] = []

    async def interloper() -> None:
        theirs.append((await b.update(lambda ring: ring.generate())).id)

    store.interloper = interloper
    mine = await a.update(lambda ring: ring.generate())

    assert store.replaces == 3  # a lost once, b won, a won on its second try
    stored = await store.load()
    assert stored is not None
    assert {mine.id, *theirs} <= kids(KeyRing.from_json(stored.document))
    assert {mine.id, *theirs} <= kids(a.keyring)


async def test_a_refused_change_stores_nothing(nodes: Callable[..., SharedKeyRing]) -> None:
    """Retiring the active key fails with PARSEC_KEY_ACTIVE and leaves the store as it was;
    promoting the active key stores nothing."""
    store = MemoryKeyRingStore()
    a = nodes(KeyRing.in_memory(), store)
    await a.start()
    before = await store.load()
    active = a.keyring.active.id

    with pytest.raises(KeyRingError) as refused:
        await a.update(lambda ring: ring.retire(active))
    await a.update(lambda ring: ring.promote(active))

    assert refused.value.code == "PARSEC_KEY_ACTIVE"
    assert await store.load() == before


async def test_an_invalid_document_stops_a_node_from_starting(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """A store holding something that is not a keyring is a PARSEC_INTERNAL error naming
    the store, not a crash; the node's ring is left as it was."""
    store = MemoryKeyRingStore()
    await store.create_if_absent(b'{"format_version": "2", "active_key_id": "k-1", "keys": []}')
    ring = KeyRing.in_memory()
    active = ring.active.id

    with pytest.raises(KeyRingError) as failure:
        await nodes(ring, store).start()

    assert failure.value.code == "PARSEC_INTERNAL"
    assert str(failure.value).startswith("the in-memory keyring store is not a valid keyring")
    assert ring.active.id == active


async def test_a_running_node_keeps_its_last_good_ring_when_the_document_goes_bad(
    nodes: Callable[..., SharedKeyRing], caplog: pytest.LogCaptureFixture
) -> None:
    """A document that goes bad is logged once; the node keeps signing with its last
    good ring, changes fail with PARSEC_INTERNAL, and a good document is adopted again."""
    store = MemoryKeyRingStore()
    a = nodes(KeyRing.in_memory(), store)
    await a.start()
    good = await store.load()
    assert good is not None
    active = a.keyring.active.id

    with caplog.at_level(logging.WARNING, logger="parsec.auth"):
        await store.replace(b"{not json", current=good)
        await until(lambda: "keeping the last good keyring" in caplog.text)
        bad = await store.load()
        assert bad is not None
        with pytest.raises(KeyRingError) as failure:
            await a.update(lambda ring: ring.generate())
        await asyncio.sleep(5 * FAST)  # several more looks at the same bad document

    assert failure.value.code == "PARSEC_INTERNAL"
    assert a.keyring.active.id == active
    assert caplog.text.count("keeping the last good keyring") == 1

    fixed = KeyRing.from_json(good.document)
    new = fixed.generate()
    await store.replace(fixed.snapshot_json(), current=bad)
    await until(lambda: a.keyring.get(new.id) is not None)


async def test_an_emptied_store_is_seeded_again_with_the_last_keyring(
    nodes: Callable[..., SharedKeyRing],
) -> None:
    """When the store loses its document (a flushed Redis), a node puts its ring back."""
    store = MemoryKeyRingStore()
    a = nodes(KeyRing.in_memory(), store)
    await a.start()
    new = await a.update(lambda ring: ring.generate())

    store.clear()

    await until(lambda: store.stored is not None)
    stored = store.stored
    assert stored is not None
    assert new.id in kids(KeyRing.from_json(stored.document))


async def test_reload_reads_the_store_now(nodes: Callable[..., SharedKeyRing]) -> None:
    """reload adopts the store's document at once, whatever the follower's schedule."""
    store = Silent()
    a = nodes(KeyRing.in_memory(), store, interval=3600)
    await a.start()
    stored = await store.load()
    assert stored is not None
    other = KeyRing.from_json(stored.document)
    new = other.generate()
    await store.replace(other.snapshot_json(), current=stored)

    await a.reload()

    assert a.keyring.get(new.id) is not None


async def test_check_soon_reads_the_store_at_once(nodes: Callable[..., SharedKeyRing]) -> None:
    """check_soon (SIGHUP) wakes a follower that would otherwise wait an hour."""
    store = Silent()
    a = nodes(KeyRing.in_memory(), store, interval=3600)
    await a.start()
    stored = await store.load()
    assert stored is not None
    other = KeyRing.from_json(stored.document)
    new = other.generate()
    await store.replace(other.snapshot_json(), current=stored)

    a.check_soon()

    await until(lambda: a.keyring.get(new.id) is not None)


async def test_start_twice_is_an_error(nodes: Callable[..., SharedKeyRing]) -> None:
    """A SharedKeyRing starts once; aclose is idempotent."""
    shared = nodes(KeyRing.in_memory(), MemoryKeyRingStore())
    await shared.start()
    with pytest.raises(RuntimeError, match="starts once"):
        await shared.start()
    await shared.aclose()
    await shared.aclose()


async def test_logs_name_key_ids_never_key_material(
    tmp_path: Path, nodes: Callable[..., SharedKeyRing], caplog: pytest.LogCaptureFixture
) -> None:
    """Bootstrap, adoption and changes log key ids only: no secret nor private key."""
    store = MemoryKeyRingStore()
    with caplog.at_level(logging.DEBUG):
        a = nodes(KeyRing.open(tmp_path / "a"), store)
        b = nodes(KeyRing.open(tmp_path / "b"), store)
        await a.start()
        await b.start()
        new = await a.update(lambda ring: ring.generate("EdDSA"))
        await a.update(lambda ring: ring.promote(new.id))
        await until(lambda: b.keyring.active.id == new.id)

    document = json.loads(a.keyring.snapshot_json())
    material = [k.get("secret_hex") or k["private_pem"].splitlines()[1] for k in document["keys"]]
    assert new.id in caplog.text
    for secret in material:
        assert secret[:32] not in caplog.text
    assert {k["role"] for k in document["keys"]} == {ACTIVE, VERIFY_ONLY}
