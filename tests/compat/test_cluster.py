"""Three ``parsec serve`` processes sharing the real Redis act as one server: a
publication sent through ``cent`` to one node reaches SDK clients on every node, in
order with contiguous offsets, and presence and ``info`` see the whole cluster."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import cent
import pytest

import redis

from .parsec_process import ParsecServer, ServerFactory
from .sdk_events import EventLog, sdk_client

REDIS_URL = "redis://127.0.0.1:6379/0"
PUBLICATIONS = 20
REPORT_WAIT = 8.0


@pytest.fixture(scope="module")
def cluster(server_factory: ServerFactory) -> Iterator[list[ParsecServer]]:
    """Three nodes on one Redis key prefix; their keys are deleted afterwards."""
    prefix = f"parsec-cluster-{uuid.uuid4().hex[:10]}"
    broker = f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
    nodes = [server_factory.start(broker) for _ in range(3)]
    yield nodes
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


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
