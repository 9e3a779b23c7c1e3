"""``/api/v1/orgs/{slug}/audit``: an org's audit log (:mod:`parsec.accounts.audit`).

::

    GET /api/v1/orgs/{slug}/audit?action=&since=&before_id=&limit=
        {"events": [{id, at, actor_kind, actor_id, actor, action, target, detail}],
         "next_before_id": N | null}

Newest first; ``limit`` 50 by default, at most 500; pass ``next_before_id`` back as
``before_id`` for the next page. ``since`` is an ISO 8601 time (UTC when it names no
zone). Users need the role admin or above, API keys the scope ``audit:read``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from parsec.accounts import audit
from parsec.api.accounts_v1 import PREFIX, Accounts, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["AuditEventOut", "AuditPageOut", "audit_router"]


class AuditEventOut(BaseModel):
    """Who did what to what, and when."""

    id: int
    at: datetime
    actor_kind: str = Field(description="user, api_key, operator or system.")
    actor_id: str | None
    actor: str | None = Field(description="The acting user's username, when known.")
    action: str = Field(examples=["apikey.created"])
    target: str | None
    detail: dict[str, Any]


class AuditPageOut(BaseModel):
    """A page of events, newest first."""

    events: list[AuditEventOut]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next page; null when there is none."
    )


def audit_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.get(
        PREFIX + "/orgs/{slug}/audit",
        summary="Read the org's audit log",
        responses=responses(400, 403, 404),
    )
    async def list_events(
        org: InOrg,
        accounts: Accounts,
        action: Annotated[str | None, Query(max_length=64, description="Only this action.")] = None,
        since: Annotated[
            datetime | None, Query(description="Only events at or after this ISO 8601 time.")
        ] = None,
        before_id: Annotated[
            int | None, Query(ge=1, description="Only events older than this id (paging).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = audit.DEFAULT_LIMIT,
    ) -> AuditPageOut:
        org.require("admin", "audit:read")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        page = await audit.events(
            accounts.db, org.org_id, action=action, since=since, before_id=before_id, limit=limit
        )
        return AuditPageOut(
            events=[
                AuditEventOut(
                    id=e.id,
                    at=e.at,
                    actor_kind=e.actor_kind,
                    actor_id=e.actor_id,
                    actor=e.actor,
                    action=e.action,
                    target=e.target,
                    detail=e.detail,
                )
                for e in page.events
            ],
            next_before_id=page.next_before_id,
        )

    return routes
