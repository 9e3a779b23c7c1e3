"""Who is who: users, their logins, their organisations and their roles, on Parsec's
database (:mod:`parsec.db`).

:meth:`Directory.login` is the first-login rule of seed 002: a login by an identity
never seen (``("github", "<GitHub id>")``) creates its user and a personal organisation
whose slug is the user's login, with the user as its owner; a later login by the same
identity is the same user. Every login is audited (``user.login``), and so are the user
and org it creates.

Roles follow the seed's gates: the org's ``owner_user_id`` is the authority on who owns
it; a member row claiming ``owner`` for anyone else reads as ``admin`` (a stale owner
row demotes); a role this code does not know grants nothing (the member is treated as
not a member: fail closed).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from parsec.db.schema import ROLES, AuditEvent, Identity, Member, Org, User

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import InstrumentedAttribute

    from parsec.db import Database

__all__ = ["Directory", "Login", "Membership", "effective_role"]

OWNER: Final = "owner"
ADMIN: Final = "admin"
_SLUG_LIMIT: Final = 100
_NOT_SLUG: Final = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Login:
    """Who logged in: the user, and whether this login created them."""

    user_id: uuid.UUID
    username: str
    created: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """An org as one of its members sees it: ``role`` is their effective role."""

    org_id: uuid.UUID
    slug: str
    name: str
    personal: bool
    role: str

    def to_json(self) -> dict[str, object]:
        return {"slug": self.slug, "name": self.name, "personal": self.personal, "role": self.role}


class Directory:
    """The users and orgs of ``db`` (open and migrated)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- logins -----------------------------------------------------------------

    async def login(
        self, provider: str, subject: str, *, username: str, email: str | None, name: str | None
    ) -> Login:
        """The user of identity ``(provider, subject)``, created with its personal org at
        its first login (``username`` wanted as its username and org slug; a taken one
        gets a numbered suffix). Two first logins at once make one user."""
        for _attempt in range(3):
            try:
                return await self._login(provider, subject, username, email, name)
            except IntegrityError:
                continue  # a concurrent first login, or a username taken meanwhile
        return await self._login(provider, subject, username, email, name)

    async def _login(
        self, provider: str, subject: str, wanted: str, email: str | None, name: str | None
    ) -> Login:
        async with self.db.transaction() as session:
            found = await session.scalar(
                select(User)
                .join(Identity, Identity.user_id == User.id)
                .where(Identity.provider == provider, Identity.subject == subject)
            )
            if found is not None:
                _audit(session, None, found.id, "user.login", provider)
                return Login(found.id, found.username, created=False)
            username = await _free(session, User.username, _slug(wanted))
            user = User(id=uuid.uuid4(), username=username, email=email, name=name)
            session.add(user)
            await session.flush()
            session.add(Identity(user_id=user.id, provider=provider, subject=subject))
            slug = await _free(session, Org.slug, username)
            org = Org(id=uuid.uuid4(), slug=slug, name=name or username, owner_user_id=user.id)
            org.personal = True
            session.add(org)
            await session.flush()
            session.add(Member(org_id=org.id, user_id=user.id, role=OWNER))
            _audit(session, None, user.id, "user.created", provider)
            _audit(session, org.id, user.id, "org.created", slug)
            _audit(session, None, user.id, "user.login", provider)
            return Login(user.id, username, created=True)

    # --- orgs -------------------------------------------------------------------

    async def memberships(self, user_id: uuid.UUID) -> list[Membership]:
        """The orgs ``user_id`` belongs to, by slug."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(Org, Member.role)
                .join(Member, Member.org_id == Org.id)
                .where(Member.user_id == user_id)
                .order_by(Org.slug)
            )
            found = [_membership(org, role, user_id) for org, role in rows]
        return [membership for membership in found if membership is not None]

    async def membership(self, user_id: uuid.UUID, slug: str) -> Membership | None:
        """The org ``slug`` as ``user_id`` sees it; None when there is no such org or
        they are not a member (the two are not told apart)."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(Org, Member.role)
                    .join(Member, Member.org_id == Org.id)
                    .where(Member.user_id == user_id, Org.slug == slug)
                )
            ).first()
        return None if row is None else _membership(row[0], row[1], user_id)

    async def org_by_slug(self, slug: str) -> Org | None:
        """The org ``slug`` (detached), whoever asks: callers check access first."""
        async with self.db.session() as session:
            found: Org | None = await session.scalar(select(Org).where(Org.slug == slug))
            return found

    async def org_by_id(self, org_id: uuid.UUID) -> Org | None:
        async with self.db.session() as session:
            return await session.get(Org, org_id)

    async def orgs_by_id(self, org_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Org]:
        """The orgs of ``org_ids`` that exist, by id (one query)."""
        if not org_ids:
            return {}
        async with self.db.session() as session:
            found = await session.scalars(select(Org).where(Org.id.in_(list(org_ids))))
            return {org.id: org for org in found}

    async def user_exists(self, user_id: uuid.UUID) -> bool:
        async with self.db.session() as session:
            return await session.get(User, user_id) is not None


def effective_role(org: Org, role: str, user_id: uuid.UUID) -> str | None:
    """The role member ``user_id`` whose row says ``role`` has in ``org`` (see the
    module): the owner row decides who owns, a stale ``owner`` row reads as ``admin``,
    a role this code does not know is None (grants nothing)."""
    if org.owner_user_id == user_id:
        return OWNER
    if role == OWNER:
        return ADMIN  # a stale owner row: the org row says someone else owns it
    if role in ROLES:
        return role
    return None


def _membership(org: Org, role: str, user_id: uuid.UUID) -> Membership | None:
    """The member's view of ``org``; None for a role that grants nothing."""
    effective = effective_role(org, role, user_id)
    if effective is None:
        return None
    return Membership(org.id, org.slug, org.name, org.personal, effective)


def _slug(wanted: str) -> str:
    """``wanted`` as a slug: letters, digits, ``_ . -``; never empty."""
    slug = _NOT_SLUG.sub("-", wanted).strip("-.")[: _SLUG_LIMIT - 8]
    return slug or "user"


async def _free(session: AsyncSession, column: InstrumentedAttribute[str], wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``… : the first value ``column`` (a unique
    string column) does not hold yet."""
    candidate, n = wanted, 1
    while await session.scalar(select(column).where(column == candidate)) is not None:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _audit(
    session: AsyncSession,
    org_id: uuid.UUID | None,
    user_id: uuid.UUID,
    action: str,
    target: str | None,
) -> None:
    session.add(
        AuditEvent(
            org_id=org_id, actor_kind="user", actor_id=str(user_id), action=action, target=target
        )
    )
