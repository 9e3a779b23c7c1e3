"""``/api/v1/orgs/{slug}/apikeys``: an org's API keys (:mod:`parsec.accounts.api_keys`).

::

    POST   /api/v1/orgs/{slug}/apikeys       {name, scopes, expires_in_seconds?} → 201, the
                                             key's fields and ``key`` (shown this once)
    GET    /api/v1/orgs/{slug}/apikeys       the org's keys, never the keys themselves
    DELETE /api/v1/orgs/{slug}/apikeys/{id}  revoke: 204; the key is refused from the
                                             next request on

Users need the role admin or above; an API key needs ``apikeys:read`` to list and
``apikeys:write`` to create or revoke, and can only create keys whose scopes are among
its own (403 otherwise). An unknown scope is 400; a key id of another org, 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.responses import Response

from parsec.accounts.access import SCOPES
from parsec.accounts.api_keys import MAX_EXPIRES_IN, MAX_NAME_LENGTH, ApiKeyInfo, check_scopes
from parsec.accounts.errors import FORBIDDEN, NOT_FOUND, AccountsError
from parsec.api.accounts_v1 import PREFIX, Accounts, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyOut", "apikeys_router"]

_SCOPES_HELP = "What the key may do: any of " + ", ".join(SCOPES) + "."


class ApiKeyCreate(BaseModel):
    """A key to make."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["ci"])
    scopes: list[str] = Field(description=_SCOPES_HELP, examples=[["org:read"]])
    expires_in_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_IN,
        description="Seconds until the key expires (at most a year); none: never.",
    )


class ApiKeyCreated(BaseModel):
    """A new key, with the key itself: it is shown this once."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="Shown in listings; the key starts psk_<prefix>_.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    key: str = Field(description="The key (psk_…): store it now, it is never shown again.")


class ApiKeyOut(BaseModel):
    """A key as listings show it (never the key itself)."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    created_by: str | None = Field(description="The creating user's username (null: a key).")
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Recorded at most once a minute.")

    @classmethod
    def of(cls, key: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            created_by=key.created_by_username,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


def apikeys_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)
    path = PREFIX + "/orgs/{slug}/apikeys"

    @routes.post(
        path,
        status_code=201,
        summary="Create an API key",
        responses=responses(400, 403, 404),
    )
    async def create_key(org: InOrg, accounts: Accounts, body: ApiKeyCreate) -> ApiKeyCreated:
        org.require("admin", "apikeys:write")
        scopes = check_scopes(body.scopes)
        caller = org.principal
        if caller.kind == "api_key":
            wider = sorted(set(scopes).difference(caller.scopes or ()))
            if wider:
                raise AccountsError(
                    f"a key can only give scopes it holds; this one lacks {', '.join(wider)}",
                    code=FORBIDDEN,
                )
        created = await accounts.api_keys.create(
            org.org_id,
            body.name,
            scopes,
            by=caller,
            created_by=caller.user_id,
            expires_in=body.expires_in_seconds,
        )
        info = created.info
        return ApiKeyCreated(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            scopes=list(info.scopes),
            created_at=info.created_at,
            expires_at=info.expires_at,
            key=created.key,
        )

    @routes.get(path, summary="List the org's API keys", responses=responses(403, 404))
    async def list_keys(org: InOrg, accounts: Accounts) -> list[ApiKeyOut]:
        org.require("admin", "apikeys:read")
        return [ApiKeyOut.of(key) for key in await accounts.api_keys.list(org.org_id)]

    @routes.delete(
        path + "/{key_id}",
        status_code=204,
        response_class=Response,
        summary="Revoke an API key",
        responses=responses(403, 404),
    )
    async def revoke_key(
        org: InOrg,
        accounts: Accounts,
        key_id: Annotated[str, Path(description="The key's id.")],
    ) -> Response:
        org.require("admin", "apikeys:write")
        try:
            wanted = uuid.UUID(key_id)
        except ValueError:
            raise AccountsError("no such API key", code=NOT_FOUND) from None
        await accounts.api_keys.revoke(org.org_id, wanted, by=org.principal)
        return Response(status_code=204)

    return routes
