"""API keys end to end on SQLite and PostgreSQL: made by an admin, shown once, acting
as their org's service account with their scopes, refused once revoked or expired, and
never written to an answer, a log or the audit trail."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from accounts_fixtures import Tenancy
from sqlalchemy import delete, select, update

from parsec.accounts.api_keys import ApiKeys
from parsec.accounts.errors import Unauthenticated
from parsec.accounts.principal import Principal
from parsec.db.schema import ApiKey, Member, Org, User
from parsec.services.accounts import AccountsService

from .conftest import Clock


def service(tenancy: Tenancy) -> AccountsService:
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    return accounts


async def make_key(
    client: httpx.AsyncClient, org: str, scopes: list[str], **extra: Any
) -> dict[str, Any]:
    reply = await client.post(
        f"/api/v1/orgs/{org}/apikeys", json={"name": "ci", "scopes": scopes, **extra}
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def bearer(tenancy: Tenancy, key: str) -> httpx.AsyncClient:
    client = tenancy.anonymous()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


async def test_a_key_is_made_used_and_revoked(
    tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    """Create → use (its org only) → revoke → 401; the key itself shows only once."""
    caplog.set_level(logging.DEBUG)
    alice = await tenancy.browser("alice")
    await tenancy.browser("bob")
    created = await make_key(alice, "alice", ["org:read", "apikeys:read"])
    key = created["key"]
    assert key.startswith(f"psk_{created['prefix']}_")
    assert len(created["prefix"]) == 12
    assert created["scopes"] == ["org:read", "apikeys:read"]
    assert created["expires_at"] is None

    robot = bearer(tenancy, key)
    orgs = await robot.get("/api/v1/orgs")
    assert orgs.status_code == 200
    assert [(o["slug"], o["role"]) for o in orgs.json()] == [("alice", None)]
    assert (await robot.get("/api/v1/orgs/alice")).status_code == 200
    foreign = await robot.get("/api/v1/orgs/bob")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "PARSEC_ORG_NOT_FOUND"

    listed = await alice.get("/api/v1/orgs/alice/apikeys")
    assert listed.status_code == 200
    (row,) = listed.json()
    assert row["id"] == created["id"]
    assert row["created_by"] == "alice"
    assert row["revoked_at"] is None
    assert row["last_used_at"] is not None
    assert "key" not in row
    assert key not in listed.text
    assert key.split("_", 2)[2] not in listed.text
    assert (await robot.get("/api/v1/orgs/alice/apikeys")).status_code == 200

    revoked = await alice.delete(f"/api/v1/orgs/alice/apikeys/{created['id']}")
    assert revoked.status_code == 204
    refused = await robot.get("/api/v1/orgs")
    assert refused.status_code == 401
    assert refused.json()["error"] == {
        "code": "PARSEC_UNAUTHENTICATED",
        "message": "invalid API key",
    }
    (row,) = (await alice.get("/api/v1/orgs/alice/apikeys")).json()
    assert row["revoked_at"] is not None
    again = await alice.delete(f"/api/v1/orgs/alice/apikeys/{created['id']}")
    assert again.status_code == 204  # revoking twice changes nothing

    audit = await alice.get("/api/v1/orgs/alice/audit", params={"action": "apikey.created"})
    assert [e["target"] for e in audit.json()["events"]] == [created["id"]]
    revocations = await alice.get("/api/v1/orgs/alice/audit", params={"action": "apikey.revoked"})
    assert len(revocations.json()["events"]) == 1
    everything = await alice.get("/api/v1/orgs/alice/audit")
    assert key not in everything.text
    assert key.split("_", 2)[2] not in everything.text
    assert key not in caplog.text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB"),
        lambda key: key[:4] + "0" * 12 + key[16:],
        lambda key: key + "x",
        lambda key: key[:-1],
        lambda key: key[:17] + key[17:].swapcase(),
        lambda key: "psk_",
        lambda key: "psk_" + "a" * 12,
    ],
    ids=["wrong-secret", "unknown-prefix", "longer", "shorter", "secret-case", "bare", "no-secret"],
)
async def test_a_bad_key_is_the_one_401(tenancy: Tenancy, mangle: Any) -> None:
    """Whatever is wrong with a key, the answer is the same and names no reason."""
    alice = await tenancy.browser("alice")
    key = (await make_key(alice, "alice", ["org:read"]))["key"]
    reply = await bearer(tenancy, mangle(key)).get("/api/v1/orgs")
    assert reply.status_code == 401
    assert reply.json()["error"] == {"code": "PARSEC_UNAUTHENTICATED", "message": "invalid API key"}
    assert (await bearer(tenancy, key).get("/api/v1/orgs")).status_code == 200


async def test_an_expired_key_is_refused(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    created = await make_key(alice, "alice", ["org:read"], expires_in_seconds=3600)
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    robot = bearer(tenancy, created["key"])
    assert (await robot.get("/api/v1/orgs")).status_code == 200
    async with service(tenancy).db.transaction() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused = await robot.get("/api/v1/orgs")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "invalid API key"


async def test_a_key_expires_by_the_clock(tenancy: Tenancy, clock: Clock) -> None:
    """Valid until ``expires_in`` seconds have passed, refused from then on."""
    accounts = service(tenancy)
    accounts.api_keys.clock = clock
    alice = await tenancy.browser("alice")
    created = await make_key(alice, "alice", ["org:read"], expires_in_seconds=60)
    robot = bearer(tenancy, created["key"])
    clock.now += 59
    assert (await robot.get("/api/v1/orgs")).status_code == 200
    clock.now += 1
    assert (await robot.get("/api/v1/orgs")).status_code == 401


async def test_last_use_is_recorded_at_most_once_a_minute(tenancy: Tenancy, clock: Clock) -> None:
    accounts = service(tenancy)
    accounts.api_keys.clock = clock
    alice = await tenancy.browser("alice")
    created = await make_key(alice, "alice", ["org:read"])
    robot = bearer(tenancy, created["key"])

    async def last_used() -> datetime | None:
        async with accounts.db.session() as session:
            used: datetime | None = await session.scalar(
                select(ApiKey.last_used_at).where(ApiKey.id == uuid.UUID(created["id"]))
            )
            return used

    assert await last_used() is None
    start = datetime.fromtimestamp(clock.now, UTC)
    await robot.get("/api/v1/orgs")
    assert await last_used() == start
    clock.now += 59
    await robot.get("/api/v1/orgs")
    await robot.get("/api/v1/orgs")
    assert await last_used() == start  # within the minute: nothing written
    clock.now += 1
    await robot.get("/api/v1/orgs")
    assert await last_used() == start + timedelta(seconds=60)
    listed = (await alice.get("/api/v1/orgs/alice/apikeys")).json()
    assert datetime.fromisoformat(listed[0]["last_used_at"]) == start + timedelta(seconds=60)


async def test_scopes_are_enforced(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    reader = bearer(tenancy, (await make_key(alice, "alice", ["org:read"]))["key"])
    for path in ("/api/v1/orgs/alice/audit", "/api/v1/orgs/alice/apikeys"):
        denied = await reader.get(path)
        assert denied.status_code == 403, path
        assert denied.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"
    assert (
        await reader.post("/api/v1/orgs/alice/apikeys", json={"name": "x", "scopes": []})
    ).status_code == 403
    auditor = bearer(tenancy, (await make_key(alice, "alice", ["audit:read"]))["key"])
    assert (await auditor.get("/api/v1/orgs/alice/audit")).status_code == 200
    assert (await auditor.get("/api/v1/orgs/alice")).status_code == 403


async def test_a_key_gives_only_scopes_it_holds(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    creator = await make_key(alice, "alice", ["org:read", "apikeys:write"])
    robot = bearer(tenancy, creator["key"])
    child = await make_key(robot, "alice", ["org:read"])
    assert child["scopes"] == ["org:read"]
    same = await make_key(robot, "alice", ["apikeys:write", "org:read"])
    assert same["scopes"] == ["org:read", "apikeys:write"]
    wider = await robot.post(
        "/api/v1/orgs/alice/apikeys", json={"name": "x", "scopes": ["org:read", "audit:read"]}
    )
    assert wider.status_code == 403
    assert wider.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"
    assert "audit:read" in wider.json()["error"]["message"]
    listed = (await alice.get("/api/v1/orgs/alice/apikeys")).json()
    made_by_key = [k for k in listed if k["id"] == child["id"]]
    assert made_by_key[0]["created_by"] is None
    events = (
        await alice.get("/api/v1/orgs/alice/audit", params={"action": "apikey.created"})
    ).json()["events"]
    by_key = next(e for e in events if e["target"] == child["id"])
    assert by_key["actor_kind"] == "api_key"
    assert by_key["actor_id"] == creator["id"]
    assert by_key["actor"] is None
    # a key revokes keys of its org, itself included
    assert (await robot.delete(f"/api/v1/orgs/alice/apikeys/{child['id']}")).status_code == 204
    assert (await robot.delete(f"/api/v1/orgs/alice/apikeys/{creator['id']}")).status_code == 204
    assert (await robot.get("/api/v1/orgs")).status_code == 401


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "scopes": ["org:read", "root"]}, "root"),
        ({"name": "x", "scopes": ["ORG:READ"]}, "ORG:READ"),
        ({"name": "", "scopes": []}, "name"),
        ({"name": "   ", "scopes": []}, "name"),
        ({"name": "x" * 101, "scopes": []}, "name"),
        ({"scopes": []}, "name"),
        ({"name": "x", "scopes": "org:read"}, "scopes"),
        ({"name": "x", "scopes": [], "expires_in_seconds": 0}, "expires_in_seconds"),
        ({"name": "x", "scopes": [], "expires_in_seconds": 366 * 86400}, "expires_in_seconds"),
    ],
    ids=[
        "unknown-scope",
        "scope-case",
        "empty-name",
        "blank-name",
        "long-name",
        "no-name",
        "scopes-not-list",
        "expires-zero",
        "expires-over-a-year",
    ],
)
async def test_a_bad_create_is_400(tenancy: Tenancy, body: dict[str, Any], needle: str) -> None:
    alice = await tenancy.browser("alice")
    reply = await alice.post("/api/v1/orgs/alice/apikeys", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
    assert needle in reply.json()["error"]["message"]
    assert (await alice.get("/api/v1/orgs/alice/apikeys")).json() == []


async def test_keys_of_another_org_are_not_found(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    bobs = await make_key(bob, "bob", ["org:read"])
    for key_id in (bobs["id"], str(uuid.uuid4()), "not-a-uuid"):
        reply = await alice.delete(f"/api/v1/orgs/alice/apikeys/{key_id}")
        assert reply.status_code == 404, key_id
        assert reply.json()["error"] == {
            "code": "PARSEC_NOT_FOUND",
            "message": "no such API key",
        }
    assert (await bearer(tenancy, bobs["key"]).get("/api/v1/orgs")).status_code == 200
    assert (await alice.get("/api/v1/orgs/bob/apikeys")).status_code == 404
    assert (
        await alice.post("/api/v1/orgs/bob/apikeys", json={"name": "x", "scopes": []})
    ).status_code == 404
    # a key of alice's org cannot touch bob's keys either
    robot = bearer(tenancy, (await make_key(alice, "alice", ["apikeys:write"]))["key"])
    reply = await robot.delete(f"/api/v1/orgs/bob/apikeys/{bobs['id']}")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "PARSEC_ORG_NOT_FOUND"


async def test_a_member_below_admin_manages_no_keys(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    accounts = service(tenancy)
    async with accounts.db.transaction() as session:
        org_id = await session.scalar(select(Org.id).where(Org.slug == "alice"))
        bob_id = await session.scalar(select(User.id).where(User.username == "bob"))
        session.add(Member(org_id=org_id, user_id=bob_id, role="member"))
    created = await make_key(alice, "alice", ["org:read"])
    assert (await bob.get("/api/v1/orgs/alice")).status_code == 200
    for reply in (
        await bob.get("/api/v1/orgs/alice/apikeys"),
        await bob.post("/api/v1/orgs/alice/apikeys", json={"name": "x", "scopes": []}),
        await bob.delete(f"/api/v1/orgs/alice/apikeys/{created['id']}"),
        await bob.get("/api/v1/orgs/alice/audit"),
    ):
        assert reply.status_code == 403
        assert reply.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"


async def test_the_service_verifies_keys_itself(tenancy: Tenancy, clock: Clock) -> None:
    """ApiKeys over the database: a revoked or expired key, or one whose org is gone,
    is the one Unauthenticated."""
    accounts = service(tenancy)
    await tenancy.browser("alice")
    keys = ApiKeys(accounts.db, clock=clock)
    async with accounts.db.session() as session:
        alice_id = await session.scalar(select(User.id).where(User.username == "alice"))
        org_id = await session.scalar(select(Org.id).where(Org.slug == "alice"))
    assert alice_id is not None
    assert org_id is not None
    by = Principal.user(alice_id)
    lasting = await keys.create(org_id, "a", ["org:read"], by=by, created_by=alice_id)
    short = await keys.create(org_id, "b", [], by=by, expires_in=10)
    assert (await keys.verify(lasting.key)).id == lasting.info.id
    assert (await keys.verify(short.key)).scopes == ()
    clock.now += 10
    with pytest.raises(Unauthenticated) as expired:
        await keys.verify(short.key)
    assert expired.value.message == "invalid API key"
    await keys.revoke(org_id, lasting.info.id, by=by)
    with pytest.raises(Unauthenticated):
        await keys.verify(lasting.key)
    orphan = await keys.create(org_id, "c", [], by=by)
    assert (await keys.verify(orphan.key)).name == "c"
    async with accounts.db.transaction() as session:
        await session.execute(delete(Org).where(Org.id == org_id))
    with pytest.raises(Unauthenticated):
        await keys.verify(orphan.key)
