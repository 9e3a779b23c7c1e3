"""Three ``parsec serve`` processes sharing the real Redis act as one server: a
publication sent through ``cent`` to one node reaches SDK clients on every node, in
order with contiguous offsets, and presence, ``info`` and ``channels`` see the whole
cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import cent
import pytest
import websockets

import redis

from .parsec_process import ParsecServer, ServerFactory
from .sdk_events import EventLog, sdk_client

REDIS_URL = "redis://127.0.0.1:6379/0"
PUBLICATIONS = 20
REPORT_WAIT = 8.0


@pytest.fixture(scope="module")
def broker_tomls() -> Iterator[Callable[[], str]]:
    """Makes [broker] tables on the real Redis, each with a key prefix of its own (one
    per cluster); every prefix's keys are deleted afterwards."""
    prefixes: list[str] = []

    def make() -> str:
        prefixes.append(f"parsec-cluster-{uuid.uuid4().hex[:10]}")
        return f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefixes[-1]}"\n'

    yield make
    client = redis.Redis.from_url(REDIS_URL)
    for prefix in prefixes:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def cluster_factory(
    tmp_path_factory: pytest.TempPathFactory, broker_tomls: Callable[[], str]
) -> Iterator[ServerFactory]:
    """Starts this module's nodes and stops them at its end — before ``broker_tomls``
    deletes their keys, so no running node writes any back."""
    factory = ServerFactory(tmp_path_factory.mktemp("cluster"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def broker_toml(broker_tomls: Callable[[], str]) -> str:
    """The [broker] table of the three-node cluster."""
    return broker_tomls()


@pytest.fixture(scope="module")
def cluster(cluster_factory: ServerFactory, broker_toml: str) -> list[ParsecServer]:
    """Three nodes sharing one Redis key prefix."""
    return [cluster_factory.start(broker_toml) for _ in range(3)]


def _api(node: ParsecServer) -> cent.Client:
    return cent.Client(api_url=node.api_url, api_key=node.api_key)


async def test_every_client_on_every_node_gets_every_publication_in_order(
    cluster: list[ParsecServer],
) -> None:
    """centrifuge-python clients on three nodes each receive all publications sent to
    one node, in order, offsets 1..N; presence and info (asked of another node) list
    all three clients and all three nodes."""
    channel = f"chat:{uuid.uuid4().hex[:12]}"
    async with contextlib.AsyncExitStack() as stack:
        logs: list[EventLog] = []
        for i, node in enumerate(cluster):
            client, events = await stack.enter_async_context(sdk_client(node, f"user-{i}"))
            await client.connect()
            await events.next("connected")
            log = EventLog()
            sub = client.new_subscription(channel, events=log)
            await sub.subscribe()
            await log.next("subscribed")
            logs.append(log)

        with _api(cluster[0]) as api:
            for n in range(1, PUBLICATIONS + 1):
                api.publish(cent.PublishRequest(channel=channel, data={"n": n}))

        for log in logs:
            received = [(await log.next("publication")).pub for _ in range(PUBLICATIONS)]
            assert [p.offset for p in received] == list(range(1, PUBLICATIONS + 1))
            assert [p.data["n"] for p in received] == list(range(1, PUBLICATIONS + 1))

        with _api(cluster[1]) as api:
            presence = api.presence(cent.PresenceRequest(channel=channel)).presence
            assert sorted(c.user for c in presence.values()) == ["user-0", "user-1", "user-2"]
            # other nodes' counts are their last report (every 3 s): wait for one
            deadline = time.monotonic() + REPORT_WAIT
            while True:
                nodes = api.info(cent.InfoRequest()).nodes
                if sum(n.num_clients for n in nodes) >= 3 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert len(nodes) == 3
        assert sorted(n.num_clients for n in nodes) == [1, 1, 1]


async def test_channels_lists_the_whole_cluster_with_summed_counts(
    cluster: list[ParsecServer],
) -> None:
    """The server API channels method, asked of any node, lists the channels whose
    subscribers are on other nodes, with num_clients summed over the nodes."""
    tag = uuid.uuid4().hex[:12]
    shared, single = f"chat:{tag}-shared", f"chat:{tag}-single"
    placement = [(cluster[0], shared), (cluster[0], shared), (cluster[1], shared)]
    placement.append((cluster[1], single))
    async with contextlib.AsyncExitStack() as stack:
        for i, (node, channel) in enumerate(placement):
            ws = await stack.enter_async_context(websockets.connect(node.ws_url))
            await ws.send(
                _frame(
                    {"id": 1, "connect": {"token": node.connection_token(f"c{i}")}},
                    {"id": 2, "subscribe": {"channel": channel}},
                )
            )
            await _until(ws, lambda msgs: any(m.get("id") == 2 for m in msgs))

        for node in (cluster[2], cluster[0]):
            with _api(node) as api:
                found = api.channels(cent.ChannelsRequest(pattern=f"chat:{tag}-*")).channels
            assert {ch: info.num_clients for ch, info in found.items()} == {shared: 3, single: 1}


async def test_a_client_of_a_killed_node_recovers_on_another(
    cluster_factory: ServerFactory, cluster: list[ParsecServer], broker_toml: str
) -> None:
    """A node crashes (SIGKILL) under a subscribed client; publications continue through
    another node; the client reconnects to a third node with its position and gets
    exactly the publications it missed (recovered: true)."""
    victim = cluster_factory.start(broker_toml)
    channel = f"chat:{uuid.uuid4().hex[:12]}"
    survivor, other = cluster[0], cluster[2]
    with _api(survivor) as api:
        async with websockets.connect(victim.ws_url) as ws:
            await ws.send(
                _frame(
                    {"id": 1, "connect": {"token": victim.connection_token("u")}},
                    {"id": 2, "subscribe": {"channel": channel}},
                )
            )
            replies = await _until(ws, lambda msgs: len([m for m in msgs if "id" in m]) >= 2)
            position = next(m for m in replies if m.get("id") == 2)["subscribe"]
            api.publish(cent.PublishRequest(channel=channel, data={"n": 1}))
            seen = await _until(ws, lambda msgs: any("push" in m for m in msgs))
            last = next(m for m in seen if "push" in m)["push"]["pub"]["offset"]

            cluster_factory.kill(victim)
            for n in range(2, 6):
                api.publish(cent.PublishRequest(channel=channel, data={"n": n}))

        async with websockets.connect(other.ws_url) as ws:
            resubscribe = {
                "channel": channel,
                "recover": True,
                "offset": last,
                "epoch": position["epoch"],
            }
            await ws.send(
                _frame(
                    {"id": 1, "connect": {"token": other.connection_token("u")}},
                    {"id": 2, "subscribe": resubscribe},
                )
            )
            replies = await _until(ws, lambda msgs: any(m.get("id") == 2 for m in msgs))
    result = next(m for m in replies if m.get("id") == 2)["subscribe"]
    assert result["recovered"] is True
    assert [p["data"]["n"] for p in result["publications"]] == [2, 3, 4, 5]
    assert [p["offset"] for p in result["publications"]] == [2, 3, 4, 5]


def _frame(*commands: dict[str, Any]) -> str:
    return "\n".join(json.dumps(c) for c in commands)


async def _until(ws: Any, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Messages received until ``done`` says enough (answering pings)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not done(got):
            for line in str(await ws.recv()).split("\n"):
                message = json.loads(line)
                if message == {}:
                    await ws.send("{}")
                else:
                    got.append(message)
    return got


async def test_workers_serve_one_port_as_one_server(
    cluster_factory: ServerFactory, broker_tomls: Callable[[], str]
) -> None:
    """parsec serve --workers 2: two processes on one port (info lists both), and a
    publication through the API reaches every client whichever worker holds it."""
    server = cluster_factory.start(broker_tomls(), args=["--workers", "2"])
    channel = f"chat:{uuid.uuid4().hex[:12]}"
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for i in range(8):
            ws = await stack.enter_async_context(websockets.connect(server.ws_url))
            await ws.send(
                _frame(
                    {"id": 1, "connect": {"token": server.connection_token(f"w{i}")}},
                    {"id": 2, "subscribe": {"channel": channel}},
                )
            )
            await _until(ws, lambda msgs: any(m.get("id") == 2 for m in msgs))
            sockets.append(ws)
        with _api(server) as api:
            deadline = time.monotonic() + REPORT_WAIT
            while True:
                nodes = api.info(cent.InfoRequest()).nodes
                if (len(nodes) == 2 and sum(n.num_clients for n in nodes) == 8) or (
                    time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.2)
            api.publish(cent.PublishRequest(channel=channel, data={"to": "all"}))
        for ws in sockets:
            got = await _until(ws, lambda msgs: any("push" in m for m in msgs))
            assert next(m for m in got if "push" in m)["push"]["pub"]["data"] == {"to": "all"}
    assert len(nodes) == 2
    assert sum(n.num_clients for n in nodes) == 8
