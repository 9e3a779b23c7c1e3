"""``/api/v1/me``: who is calling, and the org it acts in.

::

    GET /api/v1/me?org=SLUG
        {"kind": "user" | "api_key",
         "user": {username, name, email} | null,
         "api_key": {id, name, prefix, scopes} | null,
         "org": {slug, name, role}}

Without ``?org=``, the caller's default org (a user's personal org, an API key's own);
``?org=`` naming an org the caller is not in is 403 ``PARSEC_PERMISSION_DENIED``.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from parsec.accounts.errors import Unauthenticated
from parsec.accounts.profiles import profile
from parsec.api.accounts_v1 import PREFIX, Accounts, ChosenOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["MeOut", "me_router"]


class MeUser(BaseModel):
    username: str
    name: str | None
    email: str | None


class MeApiKey(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]


class MeOrg(BaseModel):
    slug: str
    name: str
    role: str | None = Field(description="The user's role; null for an API key.")


class MeOut(BaseModel):
    """The caller and the org it acts in."""

    kind: str = Field(description="user or api_key.")
    user: MeUser | None
    api_key: MeApiKey | None
    org: MeOrg


def me_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.get(PREFIX + "/me", summary="Who is calling", responses=responses(403, 404))
    async def me(org: ChosenOrg, accounts: Accounts) -> MeOut:
        caller = org.principal
        user: MeUser | None = None
        api_key: MeApiKey | None = None
        if caller.kind == "user":
            found = await profile(accounts.db, caller.id)
            if found is None:
                raise Unauthenticated
            user = MeUser(username=found.username, name=found.name, email=found.email)
        else:
            key = await accounts.api_keys.get(org.org_id, caller.id)
            if key is None:
                raise Unauthenticated
            api_key = MeApiKey(id=key.id, name=key.name, prefix=key.prefix, scopes=list(key.scopes))
        return MeOut(
            kind=caller.kind,
            user=user,
            api_key=api_key,
            org=MeOrg(slug=org.slug, name=org.name, role=org.role),
        )

    return routes
