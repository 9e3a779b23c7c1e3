"""Helpers for tests of orgs, members and invites over ``/api/v1``: an org with an
owner, admins and members, made the way users make one (create, invite, accept).

::

    team = await Team.make(tenancy, "acme", owner="olga", admins=["adam"], members=["mia"])
    team["adam"]                      # adam's logged-in client
    await team.users.client("nick")   # someone who is not in acme
"""

from __future__ import annotations

from typing import Any

import httpx
from accounts_fixtures import Tenancy
from sqlalchemy import select

from parsec.db.schema import AuditEvent


class Users:
    """Logged-in clients by login, each logged in once per test."""

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def client(self, login: str) -> httpx.AsyncClient:
        if login not in self._clients:
            self._clients[login] = await self.tenancy.browser(login)
        return self._clients[login]


async def invite_and_accept(
    users: Users, slug: str, by: str, login: str, role: str
) -> dict[str, Any]:
    """``by`` invites ``login`` into ``slug`` with ``role`` (by username) and ``login``
    accepts by id; the accept's answer."""
    inviter = await users.client(by)
    invitee = await users.client(login)
    made = await inviter.post(
        f"/api/v1/orgs/{slug}/invites", json={"username": login, "role": role}
    )
    assert made.status_code == 201, made.text
    accepted = await invitee.post(f"/api/v1/invites/{made.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    answer: dict[str, Any] = accepted.json()
    return answer


class Team:
    """An org ``slug`` made by ``owner``, with its admins and members."""

    def __init__(self, users: Users, slug: str) -> None:
        self.users = users
        self.slug = slug

    @classmethod
    async def make(
        cls,
        tenancy: Tenancy,
        slug: str,
        *,
        owner: str,
        admins: tuple[str, ...] = (),
        members: tuple[str, ...] = (),
        users: Users | None = None,
    ) -> Team:
        users = users or Users(tenancy)
        created = await (await users.client(owner)).post("/api/v1/orgs", json={"slug": slug})
        assert created.status_code == 201, created.text
        for login in admins:
            await invite_and_accept(users, slug, owner, login, "admin")
        for login in members:
            await invite_and_accept(users, slug, owner, login, "member")
        return cls(users, slug)

    async def client(self, login: str) -> httpx.AsyncClient:
        return await self.users.client(login)

    async def roles(self) -> dict[str, str]:
        """username -> effective role, as the members list of the owner's view says."""
        for client in self.users._clients.values():
            listed = await client.get(f"/api/v1/orgs/{self.slug}/members")
            if listed.status_code == 200:
                return {m["username"]: m["role"] for m in listed.json()}
        raise AssertionError(f"nobody can list the members of {self.slug}")


async def audit_events(tenancy: Tenancy, action_prefix: str = "") -> list[AuditEvent]:
    """The audit events whose action starts with ``action_prefix``, in order."""
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith(action_prefix))
            .order_by(AuditEvent.id)
        )
        return list(rows)
