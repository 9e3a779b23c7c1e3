"""An org's Parsec across a cluster: two nodes on one Redis and one database act as one
server for each org (a client on node A gets what node B publishes for its org), while
the org's keys in Redis carry the org's prefix and another org's same-named channel
stays apart."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from accounts_fixtures import Tenancy
from db_targets import database_url
from fake_github import FakeGitHub
from redis_keys import REDIS_URL, scratch_prefix

from parsec import BrokerOptions
from parsec.testing import serve_for_tests

from .conftest import Served, org_options


@contextlib.asynccontextmanager
async def _cluster(tmp_path: Path, github: FakeGitHub) -> AsyncIterator[tuple[Served, Served]]:
    with scratch_prefix() as prefix:
        async with database_url("sqlite", tmp_path) as url:
            options = org_options(url, tmp_path, github)
            options.broker = BrokerOptions(url=REDIS_URL, key_prefix=prefix)
            one = dataclasses.replace(options, auth=dataclasses.replace(options.auth))
            two = dataclasses.replace(options, auth=dataclasses.replace(options.auth))
            two.auth.state_dir = tmp_path / "state-two"
            async with (
                serve_for_tests(one) as node_a,
                serve_for_tests(two) as node_b,
                contextlib.AsyncExitStack() as stack,
            ):
                yield (
                    Served(node_a, Tenancy(node_a.parsec, github, stack)),
                    Served(node_b, Tenancy(node_b.parsec, github, stack)),
                )


async def test_an_org_spans_the_cluster_and_stays_apart_in_redis(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    async with _cluster(tmp_path, fake_github) as (node_a, node_b):
        alice_a = await node_a.tenancy.browser("alice")
        bob_b = await node_b.tenancy.browser("bob")
        # the login on node A made the user; node B knows them from the database
        token = (await node_b.exchange(await node_b.tenancy.browser("alice")))["token"]
        url = node_a.ws("/orgs/alice/connection/websocket")
        async with node_a.client(url, token) as (client, events):
            sub = client.new_subscription("chat:room", events=events)
            await sub.subscribe()
            await events.next("subscribed")
            # a token signed on node B verifies on node A: the org's keyring is shared
            body = {"channel": "chat:room", "data": {"via": "b"}}
            alice_b = await node_b.tenancy.browser("alice")
            assert (await alice_b.post("/api/v1/orgs/alice/publish", json=body)).status_code == 200
            assert (await events.next("publication")).pub.data == {"via": "b"}
            # bob's org, same channel name, publishes on node B: alice hears nothing
            other = await bob_b.post("/api/v1/orgs/bob/publish", json=body)
            assert other.status_code == 200
            history = await alice_a.get(
                "/api/v1/orgs/alice/history", params={"channel": "chat:room"}
            )
            assert [p["data"] for p in history.json()["publications"]] == [{"via": "b"}]
            assert events.pending("publication") == 0

        root = node_a.server.parsec.options.broker.key_prefix
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [k.decode() async for k in redis.scan_iter(match=f"{root}*")]
        finally:
            await redis.aclose()
        org_keys = [k for k in keys if "-org-" in k]
        assert org_keys, keys
        history_keys = [k for k in org_keys if ":stream:" in k]
        # two orgs, one channel name each: two streams under two org prefixes
        assert len({k.split(":stream:")[0] for k in history_keys}) == 2, history_keys


async def test_the_org_answers_on_every_node(tmp_path: Path, fake_github: FakeGitHub) -> None:
    async with _cluster(tmp_path, fake_github) as (node_a, node_b):
        await node_a.tenancy.browser("alice")
        async with httpx.AsyncClient(trust_env=False) as http:
            for node in (node_a, node_b):
                reply = await http.get(f"{node.server.url}/orgs/alice/healthz")
                assert reply.status_code == 200
