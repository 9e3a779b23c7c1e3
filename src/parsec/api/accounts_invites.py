"""``/api/v1`` invites (:mod:`parsec.accounts.invites`).

::

    POST   /api/v1/orgs/{slug}/invites          invite (admin+, invites:write; an admin
                                                invite needs the owner): 201 with the
                                                token, shown this once
    GET    /api/v1/orgs/{slug}/invites          the open invites (admin+, invites:read)
    DELETE /api/v1/orgs/{slug}/invites/{id}     revoke (admin+, invites:write)
    GET    /api/v1/invites                      the caller's open invites
    POST   /api/v1/invites/{id}/accept          accept one addressed to the caller
    POST   /api/v1/invites/{id}/decline         decline one addressed to the caller
    POST   /api/v1/invites/accept               accept with the token {token}

An invite that is not open (accepted, declined, revoked, expired), not the caller's or
of another org is one answer: 404 ``PARSEC_NOT_FOUND``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from parsec.accounts.invites import DEFAULT_TTL, MAX_TTL, InviteInfo, Invites
from parsec.accounts.members import ASSIGNABLE_ROLES
from parsec.api.accounts_v1 import PREFIX, Accounts, Caller, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["invites_router"]


class NewInvite(BaseModel):
    email: str | None = Field(default=None, description="Invite by email (or by username).")
    username: str | None = Field(default=None, description="Invite by username (or by email).")
    role: str = Field(
        description="admin (the owner only) or member.",
        json_schema_extra={"enum": list(ASSIGNABLE_ROLES)},
    )
    expires_in_seconds: int | None = Field(
        default=None, description=f"Default {DEFAULT_TTL} (7 days), at most {MAX_TTL} (30 days)."
    )


class InviteOut(BaseModel):
    """An open invite, as its org sees it."""

    id: uuid.UUID
    email: str | None
    username: str | None
    role: str
    expires_at: datetime

    @classmethod
    def of(cls, invite: InviteInfo) -> InviteOut:
        return cls(
            id=invite.id,
            email=invite.email,
            username=invite.username,
            role=invite.role,
            expires_at=invite.expires_at,
        )


class CreatedInviteOut(InviteOut):
    """A new invite, with its token: shown this once, never again."""

    token: str = Field(
        description="Give it to the invitee: `parsec invites accept --invite-token`."
    )


class MyInviteOut(BaseModel):
    """An open invite, as its invitee sees it."""

    id: uuid.UUID
    org: str = Field(description="The org's slug.")
    org_name: str
    role: str
    expires_at: datetime

    @classmethod
    def of(cls, invite: InviteInfo) -> MyInviteOut:
        return cls(
            id=invite.id,
            org=invite.org,
            org_name=invite.org_name,
            role=invite.role,
            expires_at=invite.expires_at,
        )


class TokenBody(BaseModel):
    token: str = Field(description="The token the invite was created with.")


def _invites(accounts: AccountsService) -> Invites:
    return Invites(accounts.db)


def invites_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.post(
        PREFIX + "/orgs/{slug}/invites",
        status_code=201,
        summary="Invite someone into an org",
        responses=responses(400, 403, 404, 409),
    )
    async def create_invite(body: NewInvite, org: InOrg, accounts: Accounts) -> CreatedInviteOut:
        made = await _invites(accounts).create(
            org,
            email=body.email,
            username=body.username,
            role=body.role,
            expires_in=body.expires_in_seconds,
        )
        return CreatedInviteOut(**InviteOut.of(made.invite).model_dump(), token=made.token)

    @routes.get(
        PREFIX + "/orgs/{slug}/invites",
        summary="List an org's open invites",
        responses=responses(403, 404),
    )
    async def list_invites(org: InOrg, accounts: Accounts) -> list[InviteOut]:
        return [InviteOut.of(i) for i in await _invites(accounts).list_open(org)]

    @routes.delete(
        PREFIX + "/orgs/{slug}/invites/{invite_id}",
        status_code=204,
        summary="Revoke an open invite",
        responses=responses(400, 403, 404),
    )
    async def revoke_invite(invite_id: uuid.UUID, org: InOrg, accounts: Accounts) -> Response:
        await _invites(accounts).revoke(org, invite_id)
        return Response(status_code=204)

    @routes.get(
        PREFIX + "/invites", summary="List the caller's open invites", responses=responses(403)
    )
    async def my_invites(accounts: Accounts, caller: Caller) -> list[MyInviteOut]:
        return [MyInviteOut.of(i) for i in await _invites(accounts).mine(caller)]

    @routes.post(
        PREFIX + "/invites/accept",
        summary="Accept an invite with its token",
        responses=responses(400, 403, 404, 409),
    )
    async def accept_by_token(body: TokenBody, accounts: Accounts, caller: Caller) -> MyInviteOut:
        return MyInviteOut.of(await _invites(accounts).accept_token(caller, body.token))

    @routes.post(
        PREFIX + "/invites/{invite_id}/accept",
        summary="Accept an invite addressed to the caller",
        responses=responses(400, 403, 404, 409),
    )
    async def accept_invite(
        invite_id: uuid.UUID, accounts: Accounts, caller: Caller
    ) -> MyInviteOut:
        return MyInviteOut.of(await _invites(accounts).accept(caller, invite_id))

    @routes.post(
        PREFIX + "/invites/{invite_id}/decline",
        status_code=204,
        summary="Decline an invite addressed to the caller",
        responses=responses(400, 403, 404),
    )
    async def decline_invite(invite_id: uuid.UUID, accounts: Accounts, caller: Caller) -> Response:
        await _invites(accounts).decline(caller, invite_id)
        return Response(status_code=204)

    return routes
