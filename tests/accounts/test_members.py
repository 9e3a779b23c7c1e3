"""Orgs and members: creating, renaming, deleting and handing over an org; listing,
re-roling and removing members; what each change leaves in the audit log."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from accounts_fixtures import Tenancy
from org_members import Team, audit_events
from sqlalchemy import func, select

from parsec.db.schema import Member, Org


async def test_a_user_creates_an_org_and_owns_it(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    made = await alice.post("/api/v1/orgs", json={"slug": "acme-labs", "name": "Acme Labs"})
    assert made.status_code == 201, made.text
    assert made.json() == {
        "slug": "acme-labs",
        "name": "Acme Labs",
        "personal": False,
        "role": "owner",
    }
    assert (await alice.get("/api/v1/orgs/acme-labs")).json() == made.json()
    assert [o["slug"] for o in (await alice.get("/api/v1/orgs")).json()] == ["acme-labs", "alice"]
    members = (await alice.get("/api/v1/orgs/acme-labs/members")).json()
    assert [(m["username"], m["role"]) for m in members] == [("alice", "owner")]
    assert set(members[0]) == {"username", "name", "role", "joined_at"}
    datetime.fromisoformat(members[0]["joined_at"])
    unnamed = await alice.post("/api/v1/orgs", json={"slug": "globex"})
    assert unnamed.json()["name"] == "globex"


@pytest.mark.parametrize(
    "slug",
    ["a", "x" * 41, "Acme", "acme_labs", "-acme", "acme-", "ac--me", "ac me", "acmé", ""],
    ids=[
        "short",
        "long",
        "upper",
        "underscore",
        "lead",
        "trail",
        "double",
        "space",
        "accent",
        "empty",
    ],
)
async def test_a_bad_slug_is_400(tenancy: Tenancy, slug: str) -> None:
    alice = await tenancy.browser("alice")
    reply = await alice.post("/api/v1/orgs", json={"slug": slug})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
    assert "slug" in reply.json()["error"]["message"]


async def test_a_taken_slug_is_409(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    assert (await alice.post("/api/v1/orgs", json={"slug": "acme"})).status_code == 201
    for client, slug in ((bob, "acme"), (bob, "alice"), (alice, "acme")):
        reply = await client.post("/api/v1/orgs", json={"slug": slug})
        assert reply.status_code == 409
        assert reply.json()["error"]["code"] == "PARSEC_CONFLICT"


async def test_bad_bodies_are_400(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    for reply in (
        await alice.post("/api/v1/orgs", json={}),
        await alice.post(
            "/api/v1/orgs", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        await alice.post("/api/v1/orgs", json={"slug": "acme", "name": "  "}),
        await alice.patch("/api/v1/orgs/alice", json={"name": "x" * 201}),
        await alice.post("/api/v1/orgs/alice/transfer", json={}),
    ):
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"


async def test_anonymous_callers_are_401(tenancy: Tenancy) -> None:
    anonymous = tenancy.anonymous()
    for reply in (
        await anonymous.post("/api/v1/orgs", json={"slug": "acme"}),
        await anonymous.get("/api/v1/invites"),
        await anonymous.post("/api/v1/invites/accept", json={"token": "x"}),
    ):
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "PARSEC_UNAUTHENTICATED"


async def test_renaming_and_deleting(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", admins=("adam",), members=("mia",))
    olga = await team.client("olga")
    renamed = await (await team.client("adam")).patch("/api/v1/orgs/acme", json={"name": " Acme "})
    assert renamed.json() == {"slug": "acme", "name": "Acme", "personal": False, "role": "admin"}
    personal = await olga.delete("/api/v1/orgs/olga")
    assert personal.status_code == 409
    assert personal.json()["error"]["code"] == "PARSEC_CONFLICT"
    await olga.post("/api/v1/orgs/acme/invites", json={"email": "x@example.com", "role": "member"})
    assert (await olga.delete("/api/v1/orgs/acme")).status_code == 204
    assert (await olga.get("/api/v1/orgs/acme")).status_code == 404
    assert [o["slug"] for o in (await (await team.client("mia")).get("/api/v1/orgs")).json()] == [
        "mia"
    ]
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Org)) == 3  # personal orgs
        assert await session.scalar(select(func.count()).select_from(Member)) == 3
    assert (await olga.post("/api/v1/orgs", json={"slug": "acme"})).status_code == 201


async def test_a_transfer_hands_the_org_to_a_member(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", members=("mia",))
    olga = await team.client("olga")
    outsider = await team.client("nick")
    assert outsider is not None
    for username, status, code in (
        ("nick", 404, "PARSEC_NOT_FOUND"),
        ("nobody-at-all", 404, "PARSEC_NOT_FOUND"),
        ("olga", 409, "PARSEC_CONFLICT"),
    ):
        reply = await olga.post("/api/v1/orgs/acme/transfer", json={"username": username})
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code)
    assert (
        await olga.post("/api/v1/orgs/acme/transfer", json={"username": "mia"})
    ).status_code == 204
    assert await team.roles() == {"mia": "owner", "olga": "admin"}
    refused = await olga.post("/api/v1/orgs/acme/transfer", json={"username": "olga"})
    assert refused.status_code == 403
    mia = await team.client("mia")
    assert (await mia.get("/api/v1/orgs/acme")).json()["role"] == "owner"
    left = await mia.delete("/api/v1/orgs/acme/members/mia")
    assert left.status_code == 409  # the owner transfers before leaving
    assert (await olga.delete("/api/v1/orgs/acme/members/olga")).status_code == 204
    assert await team.roles() == {"mia": "owner"}


async def test_roles_change_between_admin_and_member_only(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", members=("mia",))
    olga = await team.client("olga")
    promoted = await olga.patch("/api/v1/orgs/acme/members/mia", json={"role": "admin"})
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    assert (await team.roles())["mia"] == "admin"
    for role, words in (("owner", "transfer"), ("root", "role"), ("", "role")):
        reply = await olga.patch("/api/v1/orgs/acme/members/mia", json={"role": role})
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
        assert words in reply.json()["error"]["message"]
    for username in ("nick", "nobody-at-all"):
        await team.users.client("nick")
        reply = await olga.patch(f"/api/v1/orgs/acme/members/{username}", json={"role": "member"})
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "PARSEC_NOT_FOUND"
        removed = await olga.delete(f"/api/v1/orgs/acme/members/{username}")
        assert removed.status_code == 404
    assert (await team.roles())["mia"] == "admin"


async def test_a_transfer_racing_a_role_change_leaves_one_owner(tenancy: Tenancy) -> None:
    """The owner hands the org to adam while, at once, demoting him: whichever runs
    second sees the first, so the org has exactly one owner."""
    team = await Team.make(tenancy, "acme", owner="olga", admins=("adam",))
    olga = await team.client("olga")
    transfer, demote = await asyncio.gather(
        olga.post("/api/v1/orgs/acme/transfer", json={"username": "adam"}),
        olga.patch("/api/v1/orgs/acme/members/adam", json={"role": "member"}),
    )
    assert transfer.status_code == 204
    assert demote.status_code in (200, 403)
    assert await team.roles() == {"adam": "owner", "olga": "admin"}
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        owners = await session.scalar(
            select(func.count())
            .select_from(Member)
            .join(Org)
            .where(Org.slug == "acme", Member.role == "owner")
        )
    assert owners == 1


async def test_two_transfers_at_once_make_one_owner(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", admins=("adam", "abe"))
    olga = await team.client("olga")
    replies = await asyncio.gather(
        olga.post("/api/v1/orgs/acme/transfer", json={"username": "adam"}),
        olga.post("/api/v1/orgs/acme/transfer", json={"username": "abe"}),
    )
    assert sorted(r.status_code for r in replies) == [204, 403]
    assert sorted((await team.roles()).values()) == ["admin", "admin", "owner"]


async def test_org_and_member_changes_are_audited(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", admins=("adam",), members=("mia", "max"))
    olga, adam, mia = [await team.client(n) for n in ("olga", "adam", "mia")]
    await adam.patch("/api/v1/orgs/acme", json={"name": "Acme"})
    await olga.patch("/api/v1/orgs/acme/members/mia", json={"role": "admin"})
    await adam.delete("/api/v1/orgs/acme/members/max")
    await mia.delete("/api/v1/orgs/acme/members/mia")
    await olga.post("/api/v1/orgs/acme/transfer", json={"username": "adam"})
    await adam.delete("/api/v1/orgs/acme")
    everything = await audit_events(tenancy)
    acme = next(e.org_id for e in everything if (e.action, e.target) == ("org.created", "acme"))
    events = [
        (e.action, e.target, e.detail)
        for e in everything
        if e.org_id == acme and e.action.startswith(("org.", "member."))
    ]
    assert events == [
        ("org.created", "acme", {"name": "acme"}),
        ("org.renamed", "acme", {"name": "Acme", "old": "acme"}),
        ("member.role_changed", "mia", {"role": "admin", "old": "member"}),
        ("member.removed", "max", {"role": "member"}),
        ("member.left", "mia", {"role": "admin"}),
        ("org.transferred", "adam", {"slug": "acme"}),
        ("org.deleted", "acme", {}),
    ]
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    adam_id = accounts.cookies.verify(adam.cookies["parsec_session"]).user_id
    deleted = (await audit_events(tenancy, "org.deleted"))[0]
    assert (deleted.actor_kind, deleted.actor_id) == ("user", str(adam_id))


async def test_the_openapi_document_lists_the_new_routes(tenancy: Tenancy) -> None:
    paths = (await tenancy.anonymous().get("/openapi.json")).json()["paths"]
    create = paths["/api/v1/orgs"]["post"]
    assert {"201", "400", "401", "403", "409"} <= set(create["responses"])
    assert "422" not in create["responses"]
    for path, method in (
        ("/api/v1/orgs/{slug}", "patch"),
        ("/api/v1/orgs/{slug}", "delete"),
        ("/api/v1/orgs/{slug}/transfer", "post"),
        ("/api/v1/orgs/{slug}/leave", "post"),
        ("/api/v1/orgs/{slug}/members", "get"),
        ("/api/v1/orgs/{slug}/members/{username}", "patch"),
        ("/api/v1/orgs/{slug}/members/{username}", "delete"),
        ("/api/v1/orgs/{slug}/invites", "post"),
        ("/api/v1/orgs/{slug}/invites", "get"),
        ("/api/v1/orgs/{slug}/invites/{invite_id}", "delete"),
        ("/api/v1/invites", "get"),
        ("/api/v1/invites/accept", "post"),
        ("/api/v1/invites/{invite_id}/accept", "post"),
        ("/api/v1/invites/{invite_id}/decline", "post"),
    ):
        responses = paths[path][method]["responses"]
        assert "401" in responses, (path, method)
        assert "422" not in responses, (path, method)


async def test_deleting_an_org_stops_its_parsec(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    assert (await alice.post("/api/v1/orgs", json={"slug": "acme"})).status_code == 201
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    assert accounts.tenants is not None
    org = await accounts.directory.org_by_slug("acme")
    assert org is not None
    await accounts.tenant(org.id)
    assert accounts.tenants.running(org.id) is not None
    assert (await alice.delete("/api/v1/orgs/acme")).status_code == 204
    assert accounts.tenants.running(org.id) is None
    assert (await alice.get("/orgs/acme/parsec/jwks.json")).status_code == 404
