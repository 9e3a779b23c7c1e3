"""Invites: by username, by email, by token; declined, expired, revoked, of another
org; used once even when accepted twice at once; audited without the token."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from accounts_fixtures import Tenancy
from org_members import Team, Users, audit_events
from sqlalchemy import func, select, update

from parsec.db.schema import Invite, Member, Org


async def _invite(team: Team, by: str, **body: object) -> dict[str, object]:
    """``by`` invites into ``team``'s org (an invitee by username logs in first)."""
    if "username" in body:
        await team.client(str(body["username"]))
    made = await (await team.client(by)).post(f"/api/v1/orgs/{team.slug}/invites", json=body)
    assert made.status_code == 201, made.text
    answer: dict[str, object] = made.json()
    return answer


async def test_an_invite_by_username_is_seen_and_accepted_by_its_invitee(
    tenancy: Tenancy,
) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    bob = await team.client("bob")
    made = await _invite(team, "olga", username="bob", role="member")
    assert set(made) == {"id", "email", "username", "role", "expires_at", "token"}
    assert made["username"] == "bob"
    assert made["email"] is None
    expires = datetime.fromisoformat(str(made["expires_at"]))
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    listed = (await (await team.client("olga")).get("/api/v1/orgs/acme/invites")).json()
    assert [i["id"] for i in listed] == [made["id"]]
    assert "token" not in listed[0]
    mine = (await bob.get("/api/v1/invites")).json()
    assert mine == [
        {
            "id": made["id"],
            "org": "acme",
            "org_name": "acme",
            "role": "member",
            "expires_at": made["expires_at"],
        }
    ]
    outsider = await team.client("carol")
    assert (await outsider.get("/api/v1/invites")).json() == []
    stolen = await outsider.post(f"/api/v1/invites/{made['id']}/accept")
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "PARSEC_NOT_FOUND"
    accepted = await bob.post(f"/api/v1/invites/{made['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["org"] == "acme"
    assert (await team.roles()) == {"olga": "owner", "bob": "member"}
    assert (await bob.get("/api/v1/invites")).json() == []
    assert (await (await team.client("olga")).get("/api/v1/orgs/acme/invites")).json() == []
    again = await bob.post(f"/api/v1/invites/{made['id']}/accept")
    assert again.status_code == 404


async def test_an_invite_by_email_reaches_the_user_with_that_email(tenancy: Tenancy) -> None:
    """The fake GitHub gives each user <login>@example.com; case does not matter."""
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", email="Bob@Example.com", role="admin")
    assert made["email"] == "bob@example.com"
    bob = await team.client("bob")
    assert [i["id"] for i in (await bob.get("/api/v1/invites")).json()] == [made["id"]]
    assert (await bob.post(f"/api/v1/invites/{made['id']}/accept")).status_code == 200
    assert (await team.roles())["bob"] == "admin"


async def test_whoever_holds_the_token_accepts(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", email="someone@elsewhere.org", role="member")
    carol = await team.client("carol")
    assert (await carol.get("/api/v1/invites")).json() == []
    bad = await carol.post("/api/v1/invites/accept", json={"token": "not-the-token"})
    assert bad.status_code == 404
    accepted = await carol.post("/api/v1/invites/accept", json={"token": made["token"]})
    assert accepted.status_code == 200, accepted.text
    assert (await team.roles())["carol"] == "member"
    reused = await (await team.client("dave")).post(
        "/api/v1/invites/accept", json={"token": made["token"]}
    )
    assert reused.status_code == 404
    assert reused.json()["error"]["code"] == "PARSEC_NOT_FOUND"


async def test_only_the_token_hash_is_kept_and_no_event_holds_the_token(
    tenancy: Tenancy,
) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member")
    token = str(made["token"])
    assert len(token) >= 43
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        stored = await session.scalar(select(Invite.token_hash))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    for event in await audit_events(tenancy):
        assert token not in f"{event.target} {event.detail}"


async def test_a_declined_invite_is_gone(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member")
    bob = await team.client("bob")
    assert (await bob.post(f"/api/v1/invites/{made['id']}/decline")).status_code == 204
    assert (await bob.get("/api/v1/invites")).json() == []
    for path in ("accept", "decline"):
        reply = await bob.post(f"/api/v1/invites/{made['id']}/{path}")
        assert reply.status_code == 404
    by_token = await bob.post("/api/v1/invites/accept", json={"token": made["token"]})
    assert by_token.status_code == 404
    assert "bob" not in await team.roles()


async def test_an_expired_invite_is_gone(tenancy: Tenancy) -> None:
    """An invite whose expires_at has passed (written in the past through the
    database) is not listed and cannot be used."""
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member", expires_in_seconds=60)
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.transaction() as session:
        await session.execute(
            update(Invite).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    bob = await team.client("bob")
    assert (await bob.get("/api/v1/invites")).json() == []
    assert (await (await team.client("olga")).get("/api/v1/orgs/acme/invites")).json() == []
    for reply in (
        await bob.post(f"/api/v1/invites/{made['id']}/accept"),
        await bob.post("/api/v1/invites/accept", json={"token": made["token"]}),
        await bob.post(f"/api/v1/invites/{made['id']}/decline"),
        await (await team.client("olga")).delete(f"/api/v1/orgs/acme/invites/{made['id']}"),
    ):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"]["code"] == "PARSEC_NOT_FOUND"


async def test_a_revoked_invite_is_gone(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member")
    olga = await team.client("olga")
    assert (await olga.delete(f"/api/v1/orgs/acme/invites/{made['id']}")).status_code == 204
    assert (await olga.delete(f"/api/v1/orgs/acme/invites/{made['id']}")).status_code == 404
    bob = await team.client("bob")
    assert (await bob.get("/api/v1/invites")).json() == []
    assert (await bob.post(f"/api/v1/invites/{made['id']}/accept")).status_code == 404
    assert (
        await bob.post("/api/v1/invites/accept", json={"token": made["token"]})
    ).status_code == 404


async def test_an_invite_of_another_org_is_not_found(tenancy: Tenancy) -> None:
    users = Users(tenancy)
    acme = await Team.make(tenancy, "acme", owner="olga", users=users)
    await Team.make(tenancy, "globex", owner="olga", users=users)
    made = await _invite(acme, "olga", username="bob", role="member")
    olga = await users.client("olga")
    for reply in (
        await olga.delete(f"/api/v1/orgs/globex/invites/{made['id']}"),
        await olga.delete("/api/v1/orgs/globex/invites/00000000-0000-0000-0000-000000000000"),
    ):
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "PARSEC_NOT_FOUND"
    malformed = await olga.delete("/api/v1/orgs/acme/invites/not-an-id")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
    assert [i["id"] for i in (await olga.get("/api/v1/orgs/acme/invites")).json()] == [made["id"]]


async def test_a_member_accepting_again_is_a_conflict(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", members=("bob",))
    made = await _invite(team, "olga", email="bob@example.com", role="admin")
    reply = await (await team.client("bob")).post(f"/api/v1/invites/{made['id']}/accept")
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "PARSEC_CONFLICT"
    assert (await team.roles())["bob"] == "member"
    listed = await (await team.client("olga")).get("/api/v1/orgs/acme/invites")
    assert [i["id"] for i in listed.json()] == [made["id"]]  # still open: nothing used


async def test_two_accepts_at_once_make_one_member(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member")
    bob = await team.client("bob")
    first, second = await asyncio.gather(
        bob.post(f"/api/v1/invites/{made['id']}/accept"),
        bob.post("/api/v1/invites/accept", json={"token": made["token"]}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 404]
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Member).join(Org).where(Org.slug == "acme")
        )
    assert rows == 2  # olga and bob
    assert len(await audit_events(tenancy, "invite.accepted")) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"role": "member"}, "exactly one of email and username"),
        ({"email": "b@example.com", "username": "bob", "role": "member"}, "exactly one"),
        ({"username": "bob", "role": "owner"}, "transfer"),
        ({"username": "bob", "role": "superuser"}, "role"),
        ({"username": "bob"}, "role"),
        ({"email": "not an email", "role": "member"}, "email"),
        ({"username": "bob", "role": "member", "expires_in_seconds": 0}, "expires_in_seconds"),
        (
            {"username": "bob", "role": "member", "expires_in_seconds": 31 * 24 * 3600},
            "expires_in_seconds",
        ),
        ({"username": "bob", "role": "member", "expires_in_seconds": "soon"}, "expires"),
    ],
    ids=[
        "neither",
        "both",
        "owner",
        "unknown-role",
        "no-role",
        "bad-email",
        "zero-ttl",
        "ttl-over-30-days",
        "ttl-not-a-number",
    ],
)
async def test_a_bad_invite_is_400(tenancy: Tenancy, body: dict[str, object], words: str) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    await team.client("bob")
    reply = await (await team.client("olga")).post("/api/v1/orgs/acme/invites", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "PARSEC_INVALID_ARGUMENT"
    assert words in error["message"]


async def test_inviting_an_unknown_user_or_a_member(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga", members=("bob",))
    olga = await team.client("olga")
    unknown = await olga.post(
        "/api/v1/orgs/acme/invites", json={"username": "nobody-here", "role": "member"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "PARSEC_NOT_FOUND"
    member = await olga.post(
        "/api/v1/orgs/acme/invites", json={"username": "bob", "role": "member"}
    )
    assert member.status_code == 409
    assert member.json()["error"]["code"] == "PARSEC_CONFLICT"


async def test_invite_events_are_audited(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    await team.client("bob")
    accepted = await _invite(team, "olga", username="bob", role="member")
    declined = await _invite(team, "olga", email="carol@example.com", role="member")
    revoked = await _invite(team, "olga", email="x@example.com", role="admin")
    olga, bob, carol = [await team.client(n) for n in ("olga", "bob", "carol")]
    assert (await bob.post(f"/api/v1/invites/{accepted['id']}/accept")).status_code == 200
    assert (await carol.post(f"/api/v1/invites/{declined['id']}/decline")).status_code == 204
    assert (await olga.delete(f"/api/v1/orgs/acme/invites/{revoked['id']}")).status_code == 204
    events = [(e.action, e.target, e.detail) for e in await audit_events(tenancy, "invite.")]
    assert events == [
        ("invite.created", accepted["id"], {"role": "member", "username": "bob"}),
        ("invite.created", declined["id"], {"role": "member", "email": "carol@example.com"}),
        ("invite.created", revoked["id"], {"role": "admin", "email": "x@example.com"}),
        ("invite.accepted", accepted["id"], {"role": "member"}),
        ("invite.declined", declined["id"], {}),
        ("invite.revoked", revoked["id"], {}),
    ]
    actors = {e.actor_kind for e in await audit_events(tenancy, "invite.")}
    assert actors == {"user"}


async def test_accepting_while_the_org_is_deleted_is_never_a_500(tenancy: Tenancy) -> None:
    team = await Team.make(tenancy, "acme", owner="olga")
    made = await _invite(team, "olga", username="bob", role="member")
    bob, olga = await team.client("bob"), await team.client("olga")
    accepted, deleted = await asyncio.gather(
        bob.post(f"/api/v1/invites/{made['id']}/accept"),
        olga.delete("/api/v1/orgs/acme"),
    )
    assert deleted.status_code == 204
    assert accepted.status_code in (200, 404), accepted.text
    assert [o["slug"] for o in (await bob.get("/api/v1/orgs")).json()] == ["bob"]
