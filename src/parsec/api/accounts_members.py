"""``/api/v1/orgs`` changes and members: creating, renaming, deleting and handing over
an org; listing, re-roling and removing its members (:mod:`parsec.accounts.members`).

::

    POST   /api/v1/orgs                              create (a user; 201, the org)
    PATCH  /api/v1/orgs/{slug}                       rename (admin+)
    DELETE /api/v1/orgs/{slug}                       delete (owner; not a personal org)
    POST   /api/v1/orgs/{slug}/transfer              hand over to a member (owner)
    GET    /api/v1/orgs/{slug}/members               the members (any member, members:read)
    PATCH  /api/v1/orgs/{slug}/members/{username}    set the role admin|member (owner)
    DELETE /api/v1/orgs/{slug}/members/{username}    remove (owner: anyone but themself;
                                                     admin, members:write: plain
                                                     members; anyone but the owner: leave)
    POST   /api/v1/orgs/{slug}/leave                 the caller leaves (not the owner)

Deleting an org stops its Parsec (:mod:`parsec.services.tenancy`) on this node; other
nodes answer 404 for it from their next request.

API keys create, rename, delete and transfer nothing and change no roles: those need a
user.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from parsec.accounts.members import ASSIGNABLE_ROLES, MemberInfo, Members
from parsec.api.accounts_orgs import OrgOut
from parsec.api.accounts_v1 import PREFIX, Accounts, Caller, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["members_router"]


class NewOrg(BaseModel):
    slug: str = Field(
        description="2-40 lowercase letters, digits and single hyphens; no hyphen first or last.",
        examples=["acme"],
    )
    name: str | None = Field(default=None, description="Default: the slug.")


class OrgRename(BaseModel):
    name: str = Field(description="1-200 characters.")


class Transfer(BaseModel):
    username: str = Field(description="A member, who becomes the owner.")


class RoleChange(BaseModel):
    role: str = Field(
        description="admin or member (an org changes owner by a transfer).",
        json_schema_extra={"enum": list(ASSIGNABLE_ROLES)},
    )


class MemberOut(BaseModel):
    """A member of an org."""

    username: str
    name: str | None
    role: str = Field(description="The effective role: owner, admin or member.")
    joined_at: datetime

    @classmethod
    def of(cls, member: MemberInfo) -> MemberOut:
        return cls(
            username=member.username, name=member.name, role=member.role, joined_at=member.joined_at
        )


def _members(accounts: AccountsService) -> Members:
    return Members(accounts.db)


def members_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.post(
        PREFIX + "/orgs",
        status_code=201,
        summary="Create an org (the caller owns it)",
        responses=responses(400, 403, 409),
    )
    async def create_org(body: NewOrg, accounts: Accounts, caller: Caller) -> OrgOut:
        made = await _members(accounts).create_org(caller, body.slug, body.name)
        return OrgOut(slug=made.slug, name=made.name, personal=made.personal, role=made.role)

    @routes.patch(
        PREFIX + "/orgs/{slug}", summary="Rename an org", responses=responses(400, 403, 404)
    )
    async def rename_org(body: OrgRename, org: InOrg, accounts: Accounts) -> OrgOut:
        renamed = await _members(accounts).rename(org, body.name)
        return OrgOut(
            slug=renamed.slug, name=renamed.name, personal=renamed.personal, role=renamed.role
        )

    @routes.delete(
        PREFIX + "/orgs/{slug}",
        status_code=204,
        summary="Delete an org",
        responses=responses(403, 404, 409),
    )
    async def delete_org(org: InOrg, accounts: Accounts) -> Response:
        await _members(accounts).delete_org(org)
        # at once on this node; the other nodes' checks follow within seconds
        await accounts.forget_org(org.org_id)
        return Response(status_code=204)

    @routes.post(
        PREFIX + "/orgs/{slug}/transfer",
        status_code=204,
        summary="Hand an org over to one of its members",
        responses=responses(400, 403, 404, 409),
    )
    async def transfer_org(body: Transfer, org: InOrg, accounts: Accounts) -> Response:
        await _members(accounts).transfer(org, body.username)
        return Response(status_code=204)

    @routes.get(
        PREFIX + "/orgs/{slug}/members",
        summary="List an org's members",
        responses=responses(403, 404),
    )
    async def list_members(org: InOrg, accounts: Accounts) -> list[MemberOut]:
        org.require("member", "members:read")
        return [MemberOut.of(m) for m in await _members(accounts).list_members(org)]

    @routes.patch(
        PREFIX + "/orgs/{slug}/members/{username}",
        summary="Change a member's role",
        responses=responses(400, 403, 404, 409),
    )
    async def set_role(
        username: str, body: RoleChange, org: InOrg, accounts: Accounts
    ) -> MemberOut:
        return MemberOut.of(await _members(accounts).set_role(org, username, body.role))

    @routes.delete(
        PREFIX + "/orgs/{slug}/members/{username}",
        status_code=204,
        summary="Remove a member, or leave",
        responses=responses(403, 404, 409),
    )
    async def remove_member(username: str, org: InOrg, accounts: Accounts) -> Response:
        await _members(accounts).remove(org, username)
        return Response(status_code=204)

    @routes.post(
        PREFIX + "/orgs/{slug}/leave",
        status_code=204,
        summary="Leave an org",
        responses=responses(403, 404, 409),
    )
    async def leave_org(org: InOrg, accounts: Accounts) -> Response:
        await _members(accounts).leave(org)
        return Response(status_code=204)

    return routes
