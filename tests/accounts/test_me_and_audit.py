"""``/api/v1/me`` (the caller and the org ``?org=`` picks) and ``/api/v1/orgs/{slug}/audit``
(newest first, paged by id, filtered by action and time) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from accounts_fixtures import Tenancy
from sqlalchemy import select

from parsec.db.schema import Member, Org, User


async def make_key(client: httpx.AsyncClient, org: str, name: str, scopes: list[str]) -> Any:
    reply = await client.post(f"/api/v1/orgs/{org}/apikeys", json={"name": name, "scopes": scopes})
    assert reply.status_code == 201, reply.text
    return reply.json()


def bearer(tenancy: Tenancy, key: str) -> httpx.AsyncClient:
    client = tenancy.anonymous()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


async def join(tenancy: Tenancy, username: str, slug: str, role: str) -> None:
    """Make ``username`` a member of org ``slug`` with ``role`` (straight in the DB: the
    members API is another part of issue 14)."""
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.transaction() as session:
        org_id = await session.scalar(select(Org.id).where(Org.slug == slug))
        user_id = await session.scalar(select(User.id).where(User.username == username))
        session.add(Member(org_id=org_id, user_id=user_id, role=role))


async def test_me_is_the_user_in_their_personal_org(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    reply = await alice.get("/api/v1/me")
    assert reply.status_code == 200
    assert reply.json() == {
        "kind": "user",
        "user": {"username": "alice", "name": "Alice Liddell", "email": "alice@example.com"},
        "api_key": None,
        "org": {"slug": "alice", "name": "Alice Liddell", "role": "owner"},
    }


async def test_org_picks_where_a_user_acts(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    await tenancy.browser("carol")
    await join(tenancy, "bob", "alice", "admin")
    chosen = await bob.get("/api/v1/me", params={"org": "alice"})
    assert chosen.status_code == 200
    assert chosen.json()["org"]["slug"] == "alice"
    assert chosen.json()["org"]["role"] == "admin"
    assert (await bob.get("/api/v1/me")).json()["org"]["slug"] == "bob"
    for slug in ("carol", "no-such-org"):
        denied = await alice.get("/api/v1/me", params={"org": slug})
        assert denied.status_code == 403, slug
        assert denied.json()["error"] == {
            "code": "PARSEC_PERMISSION_DENIED",
            "message": f"you are not a member of {slug!r}",
        }


async def test_me_is_the_api_key_in_its_own_org(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    await tenancy.browser("bob")
    created = await make_key(alice, "alice", "deploy", ["org:read", "audit:read"])
    robot = bearer(tenancy, created["key"])
    reply = await robot.get("/api/v1/me")
    assert reply.status_code == 200
    assert reply.json() == {
        "kind": "api_key",
        "user": None,
        "api_key": {
            "id": created["id"],
            "name": "deploy",
            "prefix": created["prefix"],
            "scopes": ["org:read", "audit:read"],
        },
        "org": {"slug": "alice", "name": "Alice Liddell", "role": None},
    }
    assert created["key"] not in reply.text
    assert (await robot.get("/api/v1/me", params={"org": "alice"})).status_code == 200
    other = await robot.get("/api/v1/me", params={"org": "bob"})
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"
    assert (await tenancy.anonymous().get("/api/v1/me")).status_code == 401


async def test_audit_pages_newest_first(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    made = [await make_key(alice, "alice", f"k{n}", []) for n in range(5)]
    for key in made[:2]:
        assert (await alice.delete(f"/api/v1/orgs/alice/apikeys/{key['id']}")).status_code == 204

    everything = (await alice.get("/api/v1/orgs/alice/audit")).json()
    assert everything["next_before_id"] is None
    actions = [e["action"] for e in everything["events"]]
    assert actions == ["apikey.revoked"] * 2 + ["apikey.created"] * 5 + ["org.created"]
    ids = [e["id"] for e in everything["events"]]
    assert ids == sorted(ids, reverse=True)
    newest = everything["events"][0]
    assert newest["actor_kind"] == "user"
    assert newest["actor"] == "alice"
    assert newest["target"] == made[1]["id"]
    assert newest["detail"] == {"name": "k1", "prefix": made[1]["prefix"]}
    created = everything["events"][2]
    assert created["detail"] == {"name": "k4", "prefix": made[4]["prefix"], "scopes": []}

    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await alice.get("/api/v1/orgs/alice/audit", params=params)).json()
        assert len(page["events"]) <= 3
        seen += [e["id"] for e in page["events"]]
        if page["next_before_id"] is None:
            break
        assert page["next_before_id"] == page["events"][-1]["id"]
        params["before_id"] = page["next_before_id"]
    assert seen == ids

    created_only = await alice.get(
        "/api/v1/orgs/alice/audit", params={"action": "apikey.created", "limit": 2}
    )
    page = created_only.json()
    assert [e["target"] for e in page["events"]] == [made[4]["id"], made[3]["id"]]
    assert page["next_before_id"] == page["events"][-1]["id"]
    assert (
        await alice.get("/api/v1/orgs/alice/audit", params={"action": "nothing.happened"})
    ).json() == {"events": [], "next_before_id": None}


async def test_audit_since(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    await make_key(alice, "alice", "k", [])
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    naive_past = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    later = await alice.get("/api/v1/orgs/alice/audit", params={"since": future})
    assert later.json()["events"] == []
    for since in (past, naive_past):
        earlier = await alice.get("/api/v1/orgs/alice/audit", params={"since": since})
        assert [e["action"] for e in earlier.json()["events"]] == [
            "apikey.created",
            "org.created",
        ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01T00:00:00Z"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"before_id": "0"}, "before_id"),
        ({"before_id": "x"}, "before_id"),
        ({"action": "a" * 65}, "action"),
    ],
    ids=[
        "since-word",
        "since-month",
        "limit-0",
        "limit-501",
        "limit-word",
        "before-0",
        "before-x",
        "action-long",
    ],
)
async def test_a_bad_audit_query_is_400(
    tenancy: Tenancy, params: dict[str, str], field: str
) -> None:
    alice = await tenancy.browser("alice")
    reply = await alice.get("/api/v1/orgs/alice/audit", params=params)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "PARSEC_INVALID_ARGUMENT"
    assert field in error["message"]


async def test_audit_is_the_orgs_own(tenancy: Tenancy) -> None:
    """An org's log shows its events only; a foreign org's is 404, to users and keys."""
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    await make_key(bob, "bob", "bobs", [])
    events = (await alice.get("/api/v1/orgs/alice/audit")).json()["events"]
    assert [e["action"] for e in events] == ["org.created"]
    assert (await alice.get("/api/v1/orgs/bob/audit")).status_code == 404
    auditor = bearer(tenancy, (await make_key(alice, "alice", "auditor", ["audit:read"]))["key"])
    assert (await auditor.get("/api/v1/orgs/alice/audit", params={"limit": 500})).status_code == 200
    assert (await auditor.get("/api/v1/orgs/bob/audit")).status_code == 404


async def test_the_openapi_document_lists_keys_audit_and_me(tenancy: Tenancy) -> None:
    document = (await tenancy.anonymous().get("/openapi.json")).json()
    paths = document["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/orgs/{slug}/apikeys"])
    assert "delete" in paths["/api/v1/orgs/{slug}/apikeys/{key_id}"]
    assert "201" in paths["/api/v1/orgs/{slug}/apikeys"]["post"]["responses"]
    assert {"400", "401", "403", "404"} <= set(
        paths["/api/v1/orgs/{slug}/audit"]["get"]["responses"]
    )
    assert "403" in paths["/api/v1/me"]["get"]["responses"]
    assert "422" not in paths["/api/v1/orgs/{slug}/apikeys"]["post"]["responses"]
