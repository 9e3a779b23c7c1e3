"""The audit log: who did what to what, and when (table ``audit_events``).

:func:`record` adds an event to the caller's transaction, so the change and its event
commit together or not at all. :func:`events` reads an org's events newest first, a
page at a time (a cursor by id: ``before_id``), filtered by action and time.

Guarantees: an event's ``detail`` is whatever the writer gave — writers put names,
prefixes and scopes there, never a secret (no key, token, cookie or code). Event ids
only grow, so paging with ``before_id`` neither skips nor repeats an event, even while
new ones arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import select

from parsec.db.schema import AuditEvent, User

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from parsec.db import Database

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Actor",
    "AuditActor",
    "AuditPage",
    "Event",
    "events",
    "record",
]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500


class AuditActor(Protocol):
    """Who caused an event (a :class:`~parsec.accounts.principal.Principal` is one)."""

    @property
    def actor_kind(self) -> str: ...

    @property
    def actor_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """An actor that is no principal: ``operator`` or ``system``."""

    actor_kind: str
    actor_id: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the API shows it; ``actor`` is the acting user's username when the
    actor is a user who still exists, else None."""

    id: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of events, newest first; ``next_before_id`` continues it (None: no more)."""

    events: list[Event]
    next_before_id: int | None


def record(
    session: AsyncSession,
    org_id: uuid.UUID | None,
    actor: AuditActor,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add the event to ``session`` (committed with the change it records)."""
    session.add(
        AuditEvent(
            org_id=org_id,
            actor_kind=actor.actor_kind,
            actor_id=actor.actor_id,
            action=action,
            target=target,
            detail=dict(detail or {}),
        )
    )


async def events(
    db: Database,
    org_id: uuid.UUID,
    *,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """Up to ``limit`` events of ``org_id``, newest first: only ``action`` when given,
    at or after ``since``, with an id below ``before_id``.

    Raises:
        ValueError: ``limit`` outside 1..:data:`MAX_LIMIT`.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LIMIT}, not {limit}")
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    query = query.order_by(AuditEvent.id.desc()).limit(limit + 1)
    async with db.session() as session:
        rows = list(await session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        names = await _usernames(session, rows)
    page = [
        Event(
            id=row.id,
            at=row.at,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            actor=names.get(row.actor_id or "") if row.actor_kind == "user" else None,
            action=row.action,
            target=row.target,
            detail=dict(row.detail or {}),
        )
        for row in rows
    ]
    return AuditPage(page, rows[-1].id if more and rows else None)


async def _usernames(session: AsyncSession, rows: list[AuditEvent]) -> dict[str, str]:
    """``str(user id) -> username`` of the users acting in ``rows`` who still exist."""
    ids: set[uuid.UUID] = set()
    for row in rows:
        if row.actor_kind == "user" and row.actor_id:
            try:
                ids.add(uuid.UUID(row.actor_id))
            except ValueError:
                continue
    if not ids:
        return {}
    found = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {str(user_id): username for user_id, username in found}
