"""Organisations and their members: creating, renaming, deleting and handing over an
org, listing its members, changing their roles and removing them.

The gates are seed 002's:

- the org row's ``owner_user_id`` decides who owns it (a stale ``owner`` member row
  reads as ``admin``: :func:`~parsec.accounts.directory.effective_role`);
- only the owner deletes the org, hands it over (:meth:`Members.transfer`) or changes
  roles; an admin renames it and removes plain members; anyone but the owner may leave;
- a role this code does not know grants nothing (fail closed).

Every gate is decided inside the transaction that makes the change, after the org row
is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
serialises writers): a transfer racing a role change, or two transfers, see each
other's result, so an org never ends up with two owners. Every change writes one audit
event (:func:`record`) in the same transaction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from parsec.accounts.access import ROLE_RANK, OrgAccess
from parsec.accounts.directory import Membership, effective_role
from parsec.accounts.errors import (
    CONFLICT,
    FORBIDDEN,
    INVALID_ARGUMENT,
    NOT_FOUND,
    ORG_NOT_FOUND,
    AccountsError,
)
from parsec.db.schema import AuditEvent, Member, Org, User

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from parsec.accounts.principal import Principal
    from parsec.db import Database

__all__ = [
    "ASSIGNABLE_ROLES",
    "MemberInfo",
    "Members",
    "check_assignable",
    "check_slug",
    "locked_access",
    "record",
    "user_only",
]

ASSIGNABLE_ROLES: Final = ("admin", "member")
"""Roles a member can be given or invited with; ownership moves only by a transfer."""
SLUG_RULE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_MIN, SLUG_MAX = 2, 40
NAME_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member of an org; ``role`` is their effective role."""

    username: str
    name: str | None
    role: str
    joined_at: datetime


def check_slug(slug: str) -> str:
    """``slug`` when it is one: lowercase letters, digits and single hyphens, 2-40
    characters, no hyphen first or last.

    Raises:
        AccountsError: ``PARSEC_INVALID_ARGUMENT`` otherwise.
    """
    if not SLUG_MIN <= len(slug) <= SLUG_MAX or SLUG_RULE.fullmatch(slug) is None:
        raise AccountsError(
            f"slug: {SLUG_MIN}-{SLUG_MAX} lowercase letters, digits and single hyphens, "
            "not starting or ending with a hyphen",
            code=INVALID_ARGUMENT,
        )
    return slug


def check_name(name: str) -> str:
    """``name`` stripped, when it is 1-200 characters (400 otherwise)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise AccountsError(f"name: 1-{NAME_MAX} characters", code=INVALID_ARGUMENT)
    return name


def check_assignable(role: str) -> str:
    """``role`` when a member may be given it (``admin`` or ``member``; 400 otherwise,
    ``owner`` included: ownership moves by a transfer)."""
    if role not in ASSIGNABLE_ROLES:
        raise AccountsError(
            "role: 'admin' or 'member' (an org changes owner by a transfer)",
            code=INVALID_ARGUMENT,
        )
    return role


def user_only(principal: Principal, what: str) -> uuid.UUID:
    """The user id of ``principal``; 403 for an API key (``what`` says what it tried)."""
    if principal.user_id is None:
        raise AccountsError(f"only a user can {what}, not an API key", code=FORBIDDEN)
    return principal.user_id


def record(
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID | None,
    action: str,
    target: str | None,
    **detail: object,
) -> None:
    """Add the audit event of a change by ``principal`` to ``session``'s transaction
    (``detail`` never holds a secret)."""
    session.add(
        AuditEvent(
            org_id=org_id,
            actor_kind=principal.actor_kind,
            actor_id=principal.actor_id,
            action=action,
            target=target,
            detail=dict(detail),
        )
    )


async def locked_access(session: AsyncSession, access: OrgAccess) -> tuple[Org, OrgAccess]:
    """The org of ``access`` locked for this transaction, and the caller's access to it
    as it stands now (their role re-read under the lock).

    Raises:
        AccountsError: ``PARSEC_ORG_NOT_FOUND`` when the org is gone or the caller is
            no longer a member.
    """
    org = await session.scalar(select(Org).where(Org.id == access.org_id).with_for_update())
    if org is None:
        raise AccountsError(f"no organisation {access.slug!r}", code=ORG_NOT_FOUND)
    role: str | None = None
    principal = access.principal
    if principal.kind == "user":
        row = await session.get(Member, (org.id, principal.id))
        role = None if row is None else effective_role(org, row.role, principal.id)
        if role is None:
            raise AccountsError(f"no organisation {access.slug!r}", code=ORG_NOT_FOUND)
    elif principal.org_id != org.id:
        raise AccountsError(f"no organisation {access.slug!r}", code=ORG_NOT_FOUND)
    return org, OrgAccess(principal, org.id, org.slug, org.name, org.personal, role)


async def _member_row(
    session: AsyncSession, org: Org, username: str
) -> tuple[User, Member, str | None]:
    """The user ``username`` and their member row in ``org`` (404 when either is
    missing), with their effective role."""
    row = (
        await session.execute(
            select(User, Member)
            .join(Member, Member.user_id == User.id)
            .where(Member.org_id == org.id, User.username == username)
        )
    ).first()
    if row is None:
        raise AccountsError(f"{username!r} is not a member of {org.slug!r}", code=NOT_FOUND)
    user, member = row
    return user, member, effective_role(org, member.role, user.id)


class Members:
    """Orgs and members on ``db`` (see the module). Each method takes the caller's
    :class:`OrgAccess` (from the route) and re-checks it under the org's lock."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- orgs -------------------------------------------------------------------

    async def create_org(self, principal: Principal, slug: str, name: str | None) -> Membership:
        """A new org ``slug`` owned by the calling user (owner row and member row).

        Raises:
            AccountsError: 403 for an API key, 400 for a bad slug or name, 409 when the
                slug is taken.
        """
        user_id = user_only(principal, "create an organisation")
        check_slug(slug)
        name = check_name(name) if name is not None else slug
        try:
            async with self.db.transaction() as session:
                if await session.scalar(select(Org.id).where(Org.slug == slug)) is not None:
                    raise _taken(slug)
                org = Org(id=uuid.uuid4(), slug=slug, name=name, owner_user_id=user_id)
                org.personal = False
                session.add(org)
                await session.flush()
                session.add(Member(org_id=org.id, user_id=user_id, role="owner"))
                record(session, principal, org.id, "org.created", slug, name=name)
        except IntegrityError:
            raise _taken(slug) from None  # created by someone else meanwhile
        return Membership(org.id, slug, name, False, "owner")

    async def rename(self, access: OrgAccess, name: str) -> Membership:
        """Rename the org (admin and above; not API keys)."""
        user_only(access.principal, "rename an organisation")
        name = check_name(name)
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("admin", "org:write")
            old, org.name = org.name, name
            record(session, access.principal, org.id, "org.renamed", org.slug, name=name, old=old)
            assert now.role is not None
            return Membership(org.id, org.slug, name, org.personal, now.role)

    async def delete_org(self, access: OrgAccess) -> None:
        """Delete the org with its members, invites and keys (the owner; a personal org
        cannot be deleted: 409)."""
        user_only(access.principal, "delete an organisation")
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("owner", "org:write")
            if org.personal:
                raise AccountsError(
                    f"{org.slug!r} is a personal organisation: it cannot be deleted",
                    code=CONFLICT,
                )
            record(session, access.principal, org.id, "org.deleted", org.slug)
            await session.execute(delete(Org).where(Org.id == org.id))

    async def transfer(self, access: OrgAccess, username: str) -> None:
        """Make member ``username`` the owner; the old owner stays, as an admin (the
        owner only).

        Raises:
            AccountsError: 403 for anyone but the owner, 404 when ``username`` is not a
                member, 409 when they already own it.
        """
        user_only(access.principal, "transfer an organisation")
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("owner", "org:write")
            user, member, _role = await _member_row(session, org, username)
            if user.id == org.owner_user_id:
                raise AccountsError(f"{username!r} already owns {org.slug!r}", code=CONFLICT)
            old_owner = org.owner_user_id
            org.owner_user_id = user.id
            member.role = "owner"
            await session.execute(
                update(Member)
                .where(Member.org_id == org.id, Member.user_id == old_owner)
                .values(role="admin")
            )
            record(session, access.principal, org.id, "org.transferred", username, slug=org.slug)

    # --- members ----------------------------------------------------------------

    async def list_members(self, access: OrgAccess) -> list[MemberInfo]:
        """The org's members by username, each with their effective role (members
        whose role grants nothing are not listed)."""
        async with self.db.session() as session:
            org = await session.get(Org, access.org_id)
            if org is None:
                raise AccountsError(f"no organisation {access.slug!r}", code=ORG_NOT_FOUND)
            rows = await session.execute(
                select(User, Member)
                .join(Member, Member.user_id == User.id)
                .where(Member.org_id == org.id)
                .order_by(User.username)
            )
            found = [
                (user, member, effective_role(org, member.role, user.id)) for user, member in rows
            ]
        return [
            MemberInfo(user.username, user.name, role, member.created_at)
            for user, member, role in found
            if role is not None
        ]

    async def set_role(self, access: OrgAccess, username: str, role: str) -> MemberInfo:
        """Give member ``username`` the role ``admin`` or ``member`` (the owner only;
        the owner's own role changes only by a transfer: 409)."""
        user_only(access.principal, "change roles")
        check_assignable(role)
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("owner", "members:write")
            user, member, old = await _member_row(session, org, username)
            if user.id == org.owner_user_id:
                raise AccountsError(
                    f"{username!r} owns {org.slug!r}: transfer the org to change that",
                    code=CONFLICT,
                )
            member.role = role
            record(
                session, access.principal, org.id, "member.role_changed", username,
                role=role, old=old,
            )  # fmt: skip
            return MemberInfo(user.username, user.name, role, member.created_at)

    async def remove(self, access: OrgAccess, username: str) -> str:
        """Remove member ``username``; the audit action it was (``member.left`` when
        the caller removed themself, else ``member.removed``).

        The owner removes anyone but themself; an admin (or a key with
        ``members:write``) removes plain members; any member but the owner leaves.

        Raises:
            AccountsError: 404 when ``username`` is not a member, 403 when the caller
                may not remove them, 409 when the owner tries to leave.
        """
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            user, _member, role = await _member_row(session, org, username)
            leaving = access.principal.user_id == user.id
            if user.id == org.owner_user_id:
                if leaving:
                    raise AccountsError(
                        f"the owner cannot leave {org.slug!r}: transfer it first",
                        code=CONFLICT,
                    )
                raise AccountsError(f"{username!r} owns {org.slug!r}", code=FORBIDDEN)
            if not leaving:
                now.require("admin", "members:write")
                if now.role != "owner" and ROLE_RANK.get(role or "", 0) >= ROLE_RANK["admin"]:
                    raise AccountsError(
                        f"only the owner can remove the admin {username!r}", code=FORBIDDEN
                    )
            await session.execute(
                delete(Member).where(Member.org_id == org.id, Member.user_id == user.id)
            )
            action = "member.left" if leaving else "member.removed"
            record(session, access.principal, org.id, action, username, role=role)
            return action

    async def leave(self, access: OrgAccess) -> None:
        """The calling user leaves the org (anyone but the owner: 409 for them)."""
        user_id = user_only(access.principal, "leave an organisation")
        async with self.db.session() as session:
            username = await session.scalar(select(User.username).where(User.id == user_id))
        if username is None:
            raise AccountsError(f"no organisation {access.slug!r}", code=ORG_NOT_FOUND)
        await self.remove(access, username)


def _taken(slug: str) -> AccountsError:
    return AccountsError(f"the slug {slug!r} is taken", code=CONFLICT)
