"""Invitations to join an org.

An admin invites a user by username or by email (exactly one), with the role ``member``
or ``admin`` (only the owner invites an admin), for ``expires_in`` seconds (7 days by
default, 30 at most). The invite's token (32 random bytes, URL-safe) is shown once, to
the inviter; only its SHA-256 (hex) is stored.

The invitee accepts or declines an invite addressed to them by its id (their username,
or the email of their user), or anyone logged in accepts with the token. Accepting adds
the member row with the invite's role.

Guarantees:

- an invite is open until it is accepted, declined, revoked (its row is deleted) or
  expired; any other one — and one of another org — is the same 404
  ``PARSEC_NOT_FOUND``: nobody learns which;
- an invite is used at most once: the accept claims it with a conditional ``UPDATE``
  (``accepted_at IS NULL …``) in the transaction that adds the member, so two accepts
  at once make one member row;
- every change writes its audit event (never the token).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from parsec.accounts.errors import CONFLICT, FORBIDDEN, INVALID_ARGUMENT, NOT_FOUND, AccountsError
from parsec.accounts.members import check_assignable, locked_access, record, user_only
from parsec.db.schema import Invite, Member, Org, User, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.elements import ColumnElement

    from parsec.accounts.access import OrgAccess
    from parsec.accounts.principal import Principal
    from parsec.db import Database

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "CreatedInvite",
    "InviteInfo",
    "Invites",
    "hash_token",
]

DEFAULT_TTL: Final = 7 * 24 * 3600
MAX_TTL: Final = 30 * 24 * 3600
TOKEN_BYTES: Final = 32
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_EMAIL_MAX: Final = 320
_GONE: Final = "no such invite, or it is no longer open"


@dataclass(frozen=True, slots=True)
class InviteInfo:
    """An open invite: to whom (``email`` or ``username``), into which org, with which
    role, until when."""

    id: uuid.UUID
    org: str
    org_name: str
    email: str | None
    username: str | None
    role: str
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedInvite:
    """A new invite and its token (shown this once)."""

    invite: InviteInfo
    token: str


def hash_token(token: str) -> str:
    """What the database keeps of an invite token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _info(invite: Invite, org: Org) -> InviteInfo:
    return InviteInfo(
        invite.id,
        org.slug,
        org.name,
        invite.email,
        invite.username,
        invite.role,
        invite.expires_at,
        invite.created_at,
    )


def _gone() -> AccountsError:
    return AccountsError(_GONE, code=NOT_FOUND)


class Invites:
    """The invites on ``db`` (see the module); ``clock`` is the time now (UTC)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def _open(self) -> ColumnElement[bool]:
        """Whether an invite is open now."""
        return (
            Invite.accepted_at.is_(None)
            & Invite.declined_at.is_(None)
            & (Invite.expires_at > self.clock())
        )

    # --- the org's side ---------------------------------------------------------

    async def create(
        self,
        access: OrgAccess,
        *,
        email: str | None,
        username: str | None,
        role: str,
        expires_in: int | None,
    ) -> CreatedInvite:
        """Invite ``email`` or ``username`` (exactly one) with ``role`` (admin and
        above, or a key with ``invites:write``; an ``admin`` invite needs the owner).

        Raises:
            AccountsError: 400 for a bad argument, 403 when the caller may not, 404 for
                an unknown username, 409 when that user is already a member.
        """
        check_assignable(role)
        if (email is None) == (username is None):
            raise AccountsError("give exactly one of email and username", code=INVALID_ARGUMENT)
        if email is not None:
            email = email.strip().lower()
            if len(email) > _EMAIL_MAX or _EMAIL.fullmatch(email) is None:
                raise AccountsError("email: not an email address", code=INVALID_ARGUMENT)
        ttl = DEFAULT_TTL if expires_in is None else expires_in
        if not 1 <= ttl <= MAX_TTL:
            raise AccountsError(
                f"expires_in_seconds: 1 to {MAX_TTL} (30 days)", code=INVALID_ARGUMENT
            )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("admin", "invites:write")
            if role == "admin" and now.role != "owner":
                raise AccountsError("only the owner can invite an admin", code=FORBIDDEN)
            if username is not None:
                await self._check_invitable(session, org, username)
            invite = Invite(
                id=uuid.uuid4(),
                org_id=org.id,
                email=email,
                username=username,
                role=role,
                token_hash=hash_token(token),
                invited_by=access.principal.user_id,
                created_at=self.clock(),
                expires_at=self.clock() + timedelta(seconds=ttl),
            )
            session.add(invite)
            to = {"email": email} if email is not None else {"username": username}
            record(
                session, access.principal, org.id, "invite.created", str(invite.id),
                role=role, **to,
            )  # fmt: skip
            return CreatedInvite(_info(invite, org), token)

    @staticmethod
    async def _check_invitable(session: AsyncSession, org: Org, username: str) -> None:
        user_id = await session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise AccountsError(f"no user {username!r}", code=NOT_FOUND)
        if await session.get(Member, (org.id, user_id)) is not None:
            raise AccountsError(f"{username!r} is already a member of {org.slug!r}", code=CONFLICT)

    async def list_open(self, access: OrgAccess) -> list[InviteInfo]:
        """The org's open invites, oldest first (admin and above, or ``invites:read``)."""
        access.require("admin", "invites:read")
        async with self.db.session() as session:
            rows = await session.execute(
                select(Invite, Org)
                .join(Org, Org.id == Invite.org_id)
                .where(Invite.org_id == access.org_id, self._open())
                .order_by(Invite.created_at, Invite.id)
            )
            return [_info(invite, org) for invite, org in rows]

    async def revoke(self, access: OrgAccess, invite_id: uuid.UUID) -> None:
        """Revoke an open invite of the org (admin and above, or ``invites:write``); 404
        for any other id."""
        async with self.db.transaction() as session:
            org, now = await locked_access(session, access)
            now.require("admin", "invites:write")
            gone = await session.execute(
                delete(Invite).where(Invite.id == invite_id, Invite.org_id == org.id, self._open())
            )
            if gone.rowcount != 1:  # type: ignore[attr-defined]
                raise _gone()
            record(session, access.principal, org.id, "invite.revoked", str(invite_id))

    # --- the invitee's side -----------------------------------------------------

    async def mine(self, principal: Principal) -> list[InviteInfo]:
        """The open invites addressed to the calling user: to their username, or to
        their email."""
        user_id = user_only(principal, "have invites")
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                return []
            rows = await session.execute(
                select(Invite, Org)
                .join(Org, Org.id == Invite.org_id)
                .where(self._addressed_to(user), self._open())
                .order_by(Invite.created_at, Invite.id)
            )
            return [_info(invite, org) for invite, org in rows]

    @staticmethod
    def _addressed_to(user: User) -> ColumnElement[bool]:
        to_name = Invite.username == user.username
        if not user.email:
            return to_name
        return or_(to_name, func.lower(Invite.email) == user.email.strip().lower())

    async def accept(self, principal: Principal, invite_id: uuid.UUID) -> InviteInfo:
        """The calling user accepts the open invite ``invite_id`` addressed to them.

        Raises:
            AccountsError: 404 for an invite that is not open or not theirs, 409 when
                they are already a member of its org.
        """
        user_id = user_only(principal, "accept an invite")
        return await self._accept(principal, user_id, Invite.id == invite_id, addressed=True)

    async def accept_token(self, principal: Principal, token: str) -> InviteInfo:
        """The calling user accepts the open invite whose token is ``token``."""
        user_id = user_only(principal, "accept an invite")
        return await self._accept(
            principal, user_id, Invite.token_hash == hash_token(token), addressed=False
        )

    async def _accept(
        self,
        principal: Principal,
        user_id: uuid.UUID,
        which: ColumnElement[bool],
        *,
        addressed: bool,
    ) -> InviteInfo:
        try:
            async with self.db.transaction() as session:
                invite, org = await self._find(session, user_id, which, addressed=addressed)
                # the org's row first, as every change of the org takes it: accepting
                # while the org is deleted waits for it instead of deadlocking with it
                locked = select(Org.id).where(Org.id == org.id).with_for_update()
                if await session.scalar(locked) is None:
                    raise _gone()
                now = self.clock()
                claimed = await session.execute(
                    update(Invite)
                    .where(Invite.id == invite.id, self._open())
                    .values(accepted_at=now)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    raise _gone()  # accepted, declined or revoked meanwhile
                if await session.get(Member, (org.id, user_id)) is not None:
                    raise _already(org)
                session.add(Member(org_id=org.id, user_id=user_id, role=invite.role))
                await session.flush()
                record(
                    session, principal, org.id, "invite.accepted", str(invite.id),
                    role=invite.role,
                )  # fmt: skip
                return _info(invite, org)
        except IntegrityError:
            raise _already(None) from None  # joined by another invite meanwhile

    async def decline(self, principal: Principal, invite_id: uuid.UUID) -> None:
        """The calling user declines the open invite ``invite_id`` addressed to them
        (404 otherwise)."""
        user_id = user_only(principal, "decline an invite")
        async with self.db.transaction() as session:
            invite, org = await self._find(session, user_id, Invite.id == invite_id, addressed=True)
            declined = await session.execute(
                update(Invite)
                .where(Invite.id == invite.id, self._open())
                .values(declined_at=self.clock())
            )
            if declined.rowcount != 1:  # type: ignore[attr-defined]
                raise _gone()
            record(session, principal, org.id, "invite.declined", str(invite.id))

    async def _find(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        which: ColumnElement[bool],
        *,
        addressed: bool,
    ) -> tuple[Invite, Org]:
        """The open invite ``which`` (addressed to ``user_id`` when ``addressed``), or
        the one 404."""
        conditions = [which, self._open()]
        if addressed:
            user = await session.get(User, user_id)
            if user is None:
                raise _gone()
            conditions.append(self._addressed_to(user))
        row = (
            await session.execute(
                select(Invite, Org).join(Org, Org.id == Invite.org_id).where(*conditions)
            )
        ).first()
        if row is None:
            raise _gone()
        return row[0], row[1]


def _already(org: Org | None) -> AccountsError:
    where = f"of {org.slug!r}" if org is not None else "of this organisation"
    return AccountsError(f"you are already a member {where}", code=CONFLICT)
