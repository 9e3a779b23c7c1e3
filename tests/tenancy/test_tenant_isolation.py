"""Each org is its own Parsec (issue 14, item 6): a token of org A connects to A's
endpoint only, A's clients never see B's publications on the same channel name, the
operator's tokens reach no org, and the exchange hands a member a token of its org —
on SQLite and PostgreSQL, with the real centrifuge-python SDK over a real socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_github import FakeGitHub

from .conftest import Served, served_accounts


async def test_an_exchanged_token_connects_to_its_org_and_sees_only_its_org(
    org_server: Served,
) -> None:
    alice = await org_server.tenancy.browser("alice")
    bob = await org_server.tenancy.browser("bob")
    mine = await org_server.exchange(alice)
    theirs = await org_server.exchange(bob)
    assert mine["org"] == "alice"
    assert mine["websocket_url"] == "ws://parsec.test/orgs/alice/connection/websocket"

    async with (
        org_server.client(org_server.ws("/orgs/alice/connection/websocket"), mine["token"]) as (
            a,
            a_ev,
        ),
        org_server.client(org_server.ws("/orgs/bob/connection/websocket"), theirs["token"]) as (
            b,
            b_ev,
        ),
    ):
        await a_ev.next("connected")
        await b_ev.next("connected")
        sub_a = a.new_subscription("chat:room", events=a_ev)
        sub_b = b.new_subscription("chat:room", events=b_ev)
        await sub_a.subscribe()
        await sub_b.subscribe()
        await a_ev.next("subscribed")
        await b_ev.next("subscribed")

        await sub_b.publish({"from": "bob"})
        await sub_a.publish({"from": "alice"})
        assert (await a_ev.next("publication")).pub.data == {"from": "alice"}
        assert (await b_ev.next("publication")).pub.data == {"from": "bob"}
        # the same name is two channels: each org's history holds its own publication
        history_a = await sub_a.history(limit=10)
        history_b = await sub_b.history(limit=10)
        assert [p.data for p in history_a.publications] == [{"from": "alice"}]
        assert [p.data for p in history_b.publications] == [{"from": "bob"}]
        assert a_ev.pending("publication") == 0
        assert b_ev.pending("publication") == 0


@pytest.mark.parametrize("where", ["other org", "operator endpoint"])
async def test_an_org_token_connects_nowhere_else(org_server: Served, where: str) -> None:
    alice = await org_server.tenancy.browser("alice")
    await org_server.tenancy.browser("bob")
    token = (await org_server.exchange(alice))["token"]
    path = "/orgs/bob/connection/websocket" if where == "other org" else "/connection/websocket"
    async with org_server.client(org_server.ws(path), token) as (_, events):
        disconnected = await events.next("disconnected")
    assert disconnected.code == 3500  # invalid token: another keyring signed it


async def test_an_operator_token_reaches_no_org(org_server: Served) -> None:
    await org_server.tenancy.browser("alice")
    token = org_server.server.connection_token("alice")
    async with org_server.client(org_server.ws("/orgs/alice/connection/websocket"), token) as (
        _,
        ev,
    ):
        disconnected = await ev.next("disconnected")
    assert disconnected.code == 3500


async def test_an_unknown_org_is_not_found(org_server: Served) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        reply = await http.get(f"{org_server.server.url}/orgs/nobody/healthz")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "PARSEC_ORG_NOT_FOUND"


async def test_the_exchange_acts_in_the_chosen_org_only(org_server: Served) -> None:
    alice = await org_server.tenancy.browser("alice")
    await org_server.tenancy.browser("bob")
    foreign = await alice.post("/api/v1/auth/exchange", params={"org": "bob"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"
    anonymous = await org_server.tenancy.anonymous().post("/api/v1/auth/exchange")
    assert anonymous.status_code == 401
    bad = await alice.post("/api/v1/auth/exchange", json={"ttl_seconds": 5})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
    assert "ttl_seconds" in bad.json()["error"]["message"]


async def test_the_org_connection_quota(tmp_path: Path, fake_github: FakeGitHub) -> None:
    async with served_accounts(
        "sqlite", tmp_path, fake_github, org_max_connections=1
    ) as org_server:
        alice = await org_server.tenancy.browser("alice")
        url = org_server.ws("/orgs/alice/connection/websocket")
        first_token = (await org_server.exchange(alice))["token"]
        second_token = (await org_server.exchange(alice))["token"]
        async with org_server.client(url, first_token) as (_, first):
            await first.next("connected")
            async with org_server.client(url, second_token) as (_, second):
                disconnected = await second.next("disconnected")
            assert disconnected.code == 3504


async def test_the_operators_api_key_and_mgmt_token_reach_no_org(org_server: Served) -> None:
    """The org's server API is off and its management API knows only the org's keys:
    the operator's credentials publish nothing there."""
    await org_server.tenancy.browser("alice")
    operator = org_server.server.parsec.issue_mgmt("operator", ttl=60).token
    async with httpx.AsyncClient(base_url=org_server.server.url, trust_env=False) as http:
        api = await http.post(
            "/orgs/alice/api/publish",
            json={"channel": "chat:room", "data": {}},
            headers={"X-API-Key": org_server.server.api_key},
        )
        twirp = await http.post(
            "/orgs/alice/twirp/parsec.ParsecService/Publish",
            json={"channel": "chat:room", "data": {}},
            headers={"Authorization": f"Bearer {operator}"},
        )
    assert api.status_code in (401, 404), api.text
    assert twirp.status_code == 401, twirp.text


FOREIGN_CALLS = [
    ("GET", "/api/v1/orgs/alice", None, None),
    ("GET", "/api/v1/orgs/alice/channels", None, None),
    ("POST", "/api/v1/orgs/alice/publish", None, {"channel": "chat:room", "data": {"x": 1}}),
    ("GET", "/api/v1/orgs/alice/history", {"channel": "chat:room"}, None),
    ("GET", "/api/v1/orgs/alice/presence", {"channel": "chat:room"}, None),
]


@pytest.mark.parametrize(
    ("method", "path", "params", "body"), FOREIGN_CALLS, ids=[c[1] for c in FOREIGN_CALLS]
)
async def test_every_call_on_a_foreign_org_is_not_found(
    org_server: Served, method: str, path: str, params: dict[str, str] | None, body: Any
) -> None:
    """Bob (a user of another org) gets the answer a missing org gets: 404, never 403,
    and nothing of alice's is touched."""
    alice = await org_server.tenancy.browser("alice")
    bob = await org_server.tenancy.browser("bob")
    reply = await bob.request(method, path, params=params, json=body)
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"]["code"] == "PARSEC_ORG_NOT_FOUND"
    missing = await bob.request(method, path.replace("alice", "nobody"), params=params, json=body)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": {"code": "PARSEC_ORG_NOT_FOUND", "message": "no organisation 'nobody'"}},
    )
    history = await alice.get("/api/v1/orgs/alice/history", params={"channel": "chat:room"})
    assert history.json()["publications"] == []


async def test_a_member_publishes_and_reads_its_org_over_the_api(org_server: Served) -> None:
    alice = await org_server.tenancy.browser("alice")
    bob = await org_server.tenancy.browser("bob")
    token = (await org_server.exchange(alice))["token"]
    async with org_server.client(org_server.ws("/orgs/alice/connection/websocket"), token) as (
        c,
        ev,
    ):
        sub = c.new_subscription("chat:room", events=ev)
        await sub.subscribe()
        await ev.next("subscribed")
        published = await alice.post(
            "/api/v1/orgs/alice/publish", json={"channel": "chat:room", "data": {"n": 1}}
        )
        assert published.status_code == 200, published.text
        assert published.json()["offset"] == 1
        assert (await ev.next("publication")).pub.data == {"n": 1}
        channels = await alice.get("/api/v1/orgs/alice/channels")
        assert channels.json() == {"channels": [{"channel": "chat:room", "subscribers": 1}]}
        # bob's org has the same channel name, empty
        assert (await bob.get("/api/v1/orgs/bob/channels")).json() == {"channels": []}
    history = await alice.get("/api/v1/orgs/alice/history", params={"channel": "chat:room"})
    assert [p["data"] for p in history.json()["publications"]] == [{"n": 1}]
    other = await bob.get("/api/v1/orgs/bob/history", params={"channel": "chat:room"})
    assert other.json()["publications"] == []


async def test_bad_channel_calls_are_400(org_server: Served) -> None:
    alice = await org_server.tenancy.browser("alice")
    no_history = await alice.get("/api/v1/orgs/alice/history", params={"channel": "room"})
    assert no_history.status_code == 400
    unknown_ns = await alice.post(
        "/api/v1/orgs/alice/publish", json={"channel": "nope:room", "data": 1}
    )
    assert unknown_ns.status_code == 400, unknown_ns.text
    missing = await alice.post("/api/v1/orgs/alice/publish", json={"data": 1})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"


async def test_the_org_publication_quota(tmp_path: Path, fake_github: FakeGitHub) -> None:
    """Over its publications-per-second quota an org's publish is 429
    PARSEC_RATE_LIMITED; another org's budget is its own."""
    async with served_accounts(
        "sqlite", tmp_path, fake_github, org_max_publications_per_second=3
    ) as org_server:
        alice = await org_server.tenancy.browser("alice")
        bob = await org_server.tenancy.browser("bob")
        body = {"channel": "chat:room", "data": {}}
        statuses = [
            (await alice.post("/api/v1/orgs/alice/publish", json=body)).status_code
            for _ in range(6)
        ]
        # a burst of 3, then refused (a refill of 3/s may admit one more meanwhile)
        assert statuses[:3] == [200, 200, 200]
        assert statuses.count(429) >= 2
        refused = await alice.post("/api/v1/orgs/alice/publish", json=body)
        if refused.status_code == 429:
            assert refused.json()["error"]["code"] == "PARSEC_RATE_LIMITED"
        assert (await bob.post("/api/v1/orgs/bob/publish", json=body)).status_code == 200
