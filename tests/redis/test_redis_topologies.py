"""The Redis backends on the other topologies a deployment may point Parsec at: a Redis
Cluster of three masters (``redis+cluster://``) and a master watched by one Sentinel
(``redis+sentinel://``). Every server is a private redis-server on free loopback ports,
in the test's temporary directory, stopped after the test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot
from redis_helpers import ClusterNodeServer, Recorder, RedisServer, SentinelServer, payload
from redis_helpers import publication as new_publication

from parsec.auth.keyring_store import StoredKeyRing
from parsec.backends.factory import Backends, backends_for
from parsec.backends.redis import RedisBackends, from_url
from parsec.backends.redis.keys import Keys
from parsec.backends.redis.urls import PUBSUB_CONNECTIONS
from parsec.channels.store import Channel, ChannelState
from parsec.engine.broker import Broker, HistoryFilter, PublishOptions
from parsec.engine.types import ClientInfo
from parsec.errors import ParsecClientError

HISTORY = PublishOptions(history_size=10, history_ttl=60.0)
ALL = HistoryFilter(limit=-1)
PREFIX = "parsec-topology"
SERVICE = "mymaster"
CLUSTER_WAIT_SECONDS = 30.0
"""A bound on forming a cluster (redis-cli polls once a second: 2-5 s, more under load)."""
# Channels whose keys hash to slots of all three masters (the test checks it).
CHANNELS = [f"chat:room-{n}" for n in range(6)]
PUBLICATIONS = 3


# --- servers ---------------------------------------------------------------------------


@pytest.fixture
async def cluster_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh three-master Redis Cluster in state ok; its ``redis+cluster://`` URL
    names one master (the client finds the others)."""
    servers: list[ClusterNodeServer] = []
    try:
        for n in range(3):
            directory = tmp_path / f"cluster-{n}"
            directory.mkdir()
            servers.append(server := ClusterNodeServer(directory))
            await server.start()
        await _create_cluster([server.port for server in servers])
        yield f"redis+cluster://127.0.0.1:{servers[0].port}"
    finally:
        for server in servers:
            await server.stop()


async def _create_cluster(ports: list[int]) -> None:
    """Join the masters into one cluster and wait until every one reports it ok."""
    process = await asyncio.create_subprocess_exec(
        *("redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports)),
        *("--cluster-replicas", "0", "--cluster-yes"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(CLUSTER_WAIT_SECONDS):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # timed out: leave no redis-cli behind
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode(errors="replace")
    deadline = time.monotonic() + CLUSTER_WAIT_SECONDS
    for port in ports:
        await _until_cluster_ok(port, deadline)


async def _until_cluster_ok(port: int, deadline: float) -> None:
    client = Redis(host="127.0.0.1", port=port)
    try:
        while (info := await client.cluster("INFO"))["cluster_state"] != "ok":
            assert time.monotonic() < deadline, f"cluster node {port} never became ok: {info}"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@pytest.fixture
async def sentinel_url(
    tmp_path: Path, redis_server: Callable[[bool], Awaitable[RedisServer]]
) -> AsyncIterator[str]:
    """A master and one Sentinel monitoring it as ``mymaster``; the Sentinel URL."""
    master = await redis_server(False)
    directory = tmp_path / "sentinel"
    directory.mkdir()
    sentinel = SentinelServer(directory, master_port=master.port, service=SERVICE)
    try:
        await sentinel.start()
        yield f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}/0"
    finally:
        await sentinel.stop()


# --- nodes ---------------------------------------------------------------------------


Node = tuple[RedisBackends, Recorder]
OpenNodes = Callable[[str], Awaitable[tuple[Node, Node]]]


@pytest.fixture
async def open_nodes() -> AsyncIterator[OpenNodes]:
    """Two nodes' Broker and PresenceManager on a URL, each with a client of its own
    (``from_url``) and its broker started with a Recorder; closed after the test."""
    opened: list[RedisBackends] = []

    async def open_(url: str) -> tuple[Node, Node]:
        nodes = []
        for _ in range(2):
            opened.append(backends := from_url(url, key_prefix=PREFIX))
            await backends.broker.start(recorder := Recorder())
            nodes.append((backends, recorder))
        return nodes[0], nodes[1]

    try:
        yield open_
    finally:
        for backends in opened:
            await backends.broker.aclose()
            await backends.presence.aclose()


async def _started(url: str, node_id: str) -> tuple[Backends, Recorder]:
    backends = backends_for(url, key_prefix=PREFIX, node_id=node_id)
    recorder = Recorder()
    assert backends.broker is not None
    await backends.broker.start(recorder)
    return backends, recorder


async def _publish_everywhere_and_read(
    publisher: Broker, subscriber: Broker, at_subscriber: Recorder, channels: list[str]
) -> None:
    """``subscriber`` receives every publication ``publisher`` makes on ``channels``,
    offsets 1..N per channel, and reads the same back from history."""
    for channel in channels:
        await subscriber.subscribe(channel)
    positions = {
        channel: [
            await publisher.publish(channel, new_publication(f"{channel}/{n}"), HISTORY)
            for n in range(PUBLICATIONS)
        ]
        for channel in channels
    }

    delivered = await at_subscriber.publications(PUBLICATIONS * len(channels))
    for channel in channels:
        got = [d for d in delivered if d.channel == channel]
        assert [d.position.offset for d in got] == list(range(1, PUBLICATIONS + 1))
        assert [d.position for d in got] == positions[channel]
        assert [payload(d.pub) for d in got] == [f"{channel}/{n}" for n in range(PUBLICATIONS)]
        history = await subscriber.history(channel, ALL)
        assert history.position == positions[channel][-1]
        assert [(p.offset, payload(p)) for p in history.publications] == [
            (n + 1, f"{channel}/{n}") for n in range(PUBLICATIONS)
        ]


async def _crowd_on_a_small_pool(url: str, pool_size: int) -> tuple[RedisBackends, int]:
    """Five hundred presence writes and reads at once through a client of
    ``pool_size`` connections, spread over CHANNELS: every one succeeds (each channel's
    presence holds its share). The backends (open) and the most connections the client
    holds to any one server."""
    name = f"small-pool-{uuid.uuid4().hex[:8]}"
    backends = from_url(f"{url}?client_name={name}", key_prefix=PREFIX, pool_size=pool_size)

    async def arrive(n: int) -> None:
        channel = CHANNELS[n % len(CHANNELS)]
        info = ClientInfo(f"u{n}", f"c{n}")
        await backends.presence.add_presence(channel, f"c{n}", info, 60.0)
        await backends.presence.presence_stats(channel)

    await asyncio.gather(*(arrive(n) for n in range(500)))
    for channel in CHANNELS:
        assert len(await backends.presence.presence(channel)) == 500 // len(CHANNELS) + (
            CHANNELS.index(channel) < 500 % len(CHANNELS)
        )
    client = backends.broker.client
    if isinstance(client, RedisCluster):
        servers = [(node.host, node.port) for node in client.get_primaries()]
    else:
        kwargs = client.connection_pool.connection_kwargs
        servers = [await client.connection_pool.get_master_address()]  # type: ignore[attr-defined]
        assert kwargs["client_name"] == name
    most = 0
    for host, port in servers:
        admin = Redis(host=host, port=int(port))
        try:
            clients = await admin.client_list()
        finally:
            await admin.aclose()
        most = max(most, sum(1 for c in clients if c["name"] == name))
    return backends, most


# --- Redis Cluster -------------------------------------------------------------------


async def test_cluster_commands_beyond_the_pool_wait_their_turn(cluster_url: str) -> None:
    """On a Cluster (whose redis-py node pools refuse at once when full) five hundred
    commands at once on a pool of 2 all succeed, within every master's bound (redis-py
    also asks a node for the slots, outside the commands' turns); a command that gets
    no turn within pool_timeout fails saying so."""
    backends, most = await _crowd_on_a_small_pool(cluster_url, pool_size=2)
    try:
        assert 1 <= most <= 2 + PUBSUB_CONNECTIONS
    finally:
        await backends.broker.aclose()
        await backends.presence.aclose()

    backends = from_url(cluster_url, key_prefix=PREFIX, pool_size=1, pool_timeout=0.2)
    try:
        client = backends.broker.client
        slow = asyncio.ensure_future(client.blpop([f"{PREFIX}:nothing"], timeout=1))
        await asyncio.sleep(0)  # the slow command takes the pool's one turn
        with pytest.raises(ParsecClientError) as caught:
            await backends.presence.presence(CHANNELS[0])
        await slow
    finally:
        await backends.broker.aclose()
        await backends.presence.aclose()
    assert caught.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"
    assert "no free redis connection" in caught.value.parsec_error.message


async def test_cluster_channels_spread_over_every_master(cluster_url: str) -> None:
    """The test channels' keys sit in slots of all three masters, so the cluster tests
    below cross nodes (a channel's keys share one slot)."""
    backends = from_url(cluster_url, key_prefix=PREFIX)
    client = backends.broker.client
    keys = Keys(PREFIX)
    try:
        await client.ping()
        owners = set()
        for channel in CHANNELS:
            slots = {key_slot(key.encode()) for key in (keys.stream(channel), keys.meta(channel))}
            assert len(slots) == 1
            owners.add(client.get_node_from_key(keys.stream(channel)).port)  # type: ignore[union-attr]
        assert len(owners) == 3
    finally:
        await backends.broker.aclose()
        await backends.presence.aclose()


async def test_cluster_publications_reach_another_node_with_history(
    cluster_url: str, open_nodes: OpenNodes
) -> None:
    """Through redis+cluster://, a publication on one node reaches the other with
    offsets 1..N per channel, and history reads them back, on every master's slots."""
    (a, _), (b, at_b) = await open_nodes(cluster_url)

    await _publish_everywhere_and_read(a.broker, b.broker, at_b, CHANNELS)


async def test_cluster_presence_on_one_node_is_seen_from_the_other(
    cluster_url: str, open_nodes: OpenNodes
) -> None:
    """Presence recorded through one node is read, counted and removed from the other."""
    (a, _), (b, _) = await open_nodes(cluster_url)
    for n, channel in enumerate(CHANNELS):
        await a.presence.add_presence(channel, f"c{n}", ClientInfo(f"u{n}", f"c{n}"), 60.0)

    for n, channel in enumerate(CHANNELS):
        assert await b.presence.presence(channel) == {f"c{n}": ClientInfo(f"u{n}", f"c{n}")}
        stats = await b.presence.presence_stats(channel)
        assert (stats.num_clients, stats.num_users) == (1, 1)
        await b.presence.remove_presence(channel, f"c{n}", f"u{n}")
        assert await a.presence.presence(channel) == {}


async def test_cluster_backends_for_shares_broker_presence_and_stores(cluster_url: str) -> None:
    """Two nodes built by ``backends_for`` on the cluster: fan-out with history,
    presence, the channel registry and the keyring (seed, load, compare-and-set, change
    notice) are shared between them."""
    a, _ = await _started(cluster_url, "node-a")
    b, at_b = await _started(cluster_url, "node-b")
    try:
        assert a.broker is not None
        assert b.broker is not None
        await _publish_everywhere_and_read(a.broker, b.broker, at_b, CHANNELS[:3])

        assert a.presence is not None
        assert b.presence is not None
        await a.presence.add_presence(CHANNELS[0], "c1", ClientInfo("u1", "c1"), 60.0)
        assert list(await b.presence.presence(CHANNELS[0])) == ["c1"]

        assert a.channel_store is not None
        assert b.channel_store is not None
        record = Channel("public:news", "public", ChannelState.OPEN, 60.0, 1.0, 1.0)
        assert await a.channel_store.create_if_absent(record)
        assert await b.channel_store.get("public:news") == record
        assert await b.channel_store.list() == [record]

        assert a.keyring_store is not None
        assert b.keyring_store is not None
        changed = asyncio.Event()
        await b.keyring_store.watch(changed.set)
        seeded = await a.keyring_store.create_if_absent(b'{"v":1}')
        assert await b.keyring_store.create_if_absent(b'{"v":"other"}') == seeded
        assert await b.keyring_store.load() == seeded
        version = await b.keyring_store.replace(b'{"v":2}', current=seeded)
        assert version is not None
        assert version > seeded.version
        assert await a.keyring_store.replace(b'{"v":3}', current=seeded) is None
        assert await a.keyring_store.load() == StoredKeyRing(b'{"v":2}', version)
        async with asyncio.timeout(5):
            await changed.wait()
    finally:
        await a.aclose()
        await b.aclose()


# --- Redis Sentinel ------------------------------------------------------------------


async def test_sentinel_commands_beyond_the_pool_wait_their_turn(sentinel_url: str) -> None:
    """Through Sentinel, five hundred commands at once on a pool of 2 all succeed, on
    at most 2 connections to the master."""
    backends, most = await _crowd_on_a_small_pool(sentinel_url, pool_size=2)
    try:
        assert 1 <= most <= 2
    finally:
        await backends.broker.aclose()
        await backends.presence.aclose()


async def test_sentinel_publications_reach_another_node_with_history(
    sentinel_url: str, open_nodes: OpenNodes
) -> None:
    """Through redis+sentinel://host/service/db, nodes find the master: a publication
    on one reaches the other with offsets 1..N, and history reads them back."""
    (a, _), (b, at_b) = await open_nodes(sentinel_url)

    await _publish_everywhere_and_read(a.broker, b.broker, at_b, CHANNELS[:2])
    await a.presence.add_presence(CHANNELS[0], "c1", ClientInfo("u1", "c1"), 60.0)
    assert list(await b.presence.presence(CHANNELS[0])) == ["c1"]


async def test_cluster_keyring_watch_works_on_a_client_that_sent_nothing_yet(
    cluster_url: str,
) -> None:
    """A node whose first Redis use is watching the keyring (its pub/sub before any
    command) is told of another node's change."""
    a = backends_for(cluster_url, key_prefix=PREFIX, node_id="node-a")
    b = backends_for(cluster_url, key_prefix=PREFIX, node_id="node-b")
    try:
        assert a.keyring_store is not None
        assert b.keyring_store is not None
        changed = asyncio.Event()
        await b.keyring_store.watch(changed.set)
        await a.keyring_store.create_if_absent(b'{"v":1}')
        async with asyncio.timeout(5):
            await changed.wait()
    finally:
        await a.aclose()
        await b.aclose()
