"""An org's Parsec across a cluster: two nodes on one Redis and one database act as one
server for each org (a client on node A gets what node B publishes for its org), while
the org's keys in Redis carry the org's prefix and another org's same-named channel
stays apart."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from accounts_fixtures import Tenancy
from db_targets import database_url
from fake_github import FakeGitHub
from redis_keys import REDIS_URL, scratch_prefix

from parsec import BrokerOptions
from parsec.services import accounts as accounts_service
from parsec.testing import serve_for_tests

from .conftest import Served, org_options


@contextlib.asynccontextmanager
async def _cluster(
    tmp_path: Path, github: FakeGitHub, **accounts: Any
) -> AsyncIterator[tuple[Served, Served]]:
    with scratch_prefix() as prefix:
        async with database_url("sqlite", tmp_path) as url:
            options = org_options(url, tmp_path, github, **accounts)
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


async def test_an_org_deleted_on_one_node_stops_on_the_others(
    tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node A runs acme's Parsec with a client on it; acme is deleted through node B:
    node A's next check stops acme's Parsec, so the client is disconnected and cannot
    come back."""
    monkeypatch.setattr(accounts_service, "TENANT_CHECK_INTERVAL", 0.2)
    async with _cluster(tmp_path, fake_github) as (node_a, node_b):
        alice_a = await node_a.tenancy.browser("alice")
        made = await alice_a.post("/api/v1/orgs", json={"slug": "acme"})
        assert made.status_code == 201, made.text
        token = (await node_a.exchange(alice_a, org="acme"))["token"]
        async with node_a.client(node_a.ws("/orgs/acme/connection/websocket"), token) as (
            _client,
            events,
        ):
            await events.next("connected")
            assert (await events.next("connecting")).code == 0  # the first connect
            alice_b = await node_b.tenancy.browser("alice")
            assert (await alice_b.delete("/api/v1/orgs/acme")).status_code == 204
            # node A's Parsec of acme stopped: the client is told to reconnect (3001)
            assert (await events.next("connecting")).code == 3001
            assert events.pending("connected") == 0
        reply = await alice_a.get("/api/v1/orgs/acme")
        assert reply.status_code == 404


async def test_the_org_connection_quota_holds_across_the_cluster(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    """One connection per org: alice's client on node A counts on node B too (once A's
    report reached B), so a second client on node B is closed with 3504."""
    async with _cluster(tmp_path, fake_github, org_max_connections=1) as (node_a, node_b):
        alice_a = await node_a.tenancy.browser("alice")
        alice_b = await node_b.tenancy.browser("alice")
        first = (await node_a.exchange(alice_a))["token"]
        second = (await node_b.exchange(alice_b))["token"]
        async with node_a.client(node_a.ws("/orgs/alice/connection/websocket"), first) as (
            _,
            events_a,
        ):
            await events_a.next("connected")
            tenants = node_b.tenancy.parsec.accounts.tenants  # type: ignore[union-attr]
            assert tenants is not None
            (org_id,) = tenants.running_ids()
            tenant_b = tenants.running(org_id)
            assert tenant_b is not None
            nodes = tenant_b.node.controller.nodes
            async with asyncio.timeout(15):  # node A reports every 3 s; no event for it
                while not any(n.num_clients for n in await nodes()):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            url_b = node_b.ws("/orgs/alice/connection/websocket")
            async with node_b.client(url_b, second) as (_, events_b):
                assert (await events_b.next("disconnected")).code == 3504
