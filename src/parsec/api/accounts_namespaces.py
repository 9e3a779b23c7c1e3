"""An org's namespaces — the channel rules of its own channel space::

    GET    /api/v1/orgs/{slug}/namespaces   {"namespaces": [...], "own": bool}
    PUT    /api/v1/orgs/{slug}/namespaces   {"namespaces": [{"name": "chat", ...}]}
    DELETE /api/v1/orgs/{slug}/namespaces   back to the operator's

A namespace is written as a ``[[namespaces]]`` table of the configuration file is
(durations as ``"30s"`` or seconds), within what the shared server allows
(:func:`parsec.config.build_org_namespaces`); a bad one is 400 naming its key. Reading
needs membership (``org:read``), changing needs an admin (``org:write``). A change
restarts the org's Parsec: its clients reconnect under the new rules.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from parsec.accounts.access import OrgAccess
from parsec.api.accounts_v1 import PREFIX, Accounts, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["namespaces_router"]


class NamespacesIn(BaseModel):
    namespaces: list[dict[str, Any]] = Field(
        description="[[namespaces]] tables, as in the configuration file."
    )


class NamespacesOut(BaseModel):
    namespaces: list[dict[str, Any]] = Field(description="Every option of each namespace.")
    own: bool = Field(description="The org's own (false: the operator's).")


async def _answer(accounts: AccountsService, org: OrgAccess) -> NamespacesOut:
    found = await accounts.directory.org_by_id(org.org_id)
    own = None if found is None else accounts.namespaces_of(found)
    effective = own if own is not None else accounts.operator_namespaces()
    return NamespacesOut(namespaces=[dataclasses.asdict(n) for n in effective], own=own is not None)


def namespaces_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)
    path = PREFIX + "/orgs/{slug}/namespaces"

    @routes.get(path, summary="The org's namespaces", responses=responses(403, 404))
    async def get_namespaces(accounts: Accounts, org: InOrg) -> NamespacesOut:
        org.require("member", "org:read")
        return await _answer(accounts, org)

    @routes.put(path, summary="Set the org's namespaces", responses=responses(400, 403, 404))
    async def put_namespaces(accounts: Accounts, org: InOrg, body: NamespacesIn) -> NamespacesOut:
        await accounts.set_namespaces(org, body.namespaces)
        return await _answer(accounts, org)

    @routes.delete(path, summary="Back to the operator's namespaces", responses=responses(403, 404))
    async def delete_namespaces(accounts: Accounts, org: InOrg) -> NamespacesOut:
        await accounts.set_namespaces(org, None)
        return await _answer(accounts, org)

    return routes
