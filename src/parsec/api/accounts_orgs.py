"""``/api/v1/orgs``: the caller's organisations.

::

    GET /api/v1/orgs          the caller's orgs, by slug: [{slug, name, personal, role}]
    GET /api/v1/orgs/{slug}   one of them; 404 PARSEC_ORG_NOT_FOUND when it is not theirs

An API key sees its own org only, with ``role`` null.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from parsec.accounts.access import OrgAccess
from parsec.api.accounts_v1 import PREFIX, Accounts, Caller, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["OrgOut", "orgs_router"]


class OrgOut(BaseModel):
    """An org as the caller sees it."""

    slug: str = Field(description="Unique; a personal org's slug is its user's login.")
    name: str
    personal: bool = Field(description="Made at its owner's first login.")
    role: str | None = Field(
        description="The caller's role: owner, admin or member (null for an API key)."
    )

    @classmethod
    def of(cls, access: OrgAccess) -> OrgOut:
        return cls(slug=access.slug, name=access.name, personal=access.personal, role=access.role)


def orgs_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.get(PREFIX + "/orgs", summary="List the caller's orgs", responses=responses())
    async def list_orgs(accounts: Accounts, caller: Caller) -> list[OrgOut]:
        if caller.kind == "api_key":
            return [OrgOut.of(await accounts.org_access(caller, None))]
        return [
            OrgOut(slug=m.slug, name=m.name, personal=m.personal, role=m.role)
            for m in await accounts.orgs(caller.id)
        ]

    @routes.get(PREFIX + "/orgs/{slug}", summary="Show one org", responses=responses(404))
    async def get_org(org: InOrg) -> OrgOut:
        org.require("member", "org:read")
        return OrgOut.of(org)

    return routes
