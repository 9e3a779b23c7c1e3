"""API keys: an org's service accounts (table ``api_keys``), with scopes, an optional
expiry, revocation and a record of last use.

A key is ``psk_<prefix>_<secret>``: ``prefix`` is 12 random lowercase hex characters,
unique, shown in listings and used to find the row; ``secret`` is 32 random bytes,
URL-safe base64 (43 characters). Only the SHA-256 (hex) of the whole key is stored, and
the key itself is returned once, by :meth:`ApiKeys.create`; nothing here logs it.

Guarantees of :class:`ApiKeys`:

- :meth:`~ApiKeys.verify` returns the key's row when the key is well-formed, its prefix
  known, its secret right (compared in constant time), not revoked, not expired and its
  org still there; anything else is the one
  :class:`~parsec.accounts.errors.Unauthenticated`, whose message names no reason.
- A revoked key fails the very next :meth:`~ApiKeys.verify` (every call reads the row).
- ``last_used_at`` is written at most once per :data:`LAST_USED_EVERY` seconds per key:
  a request within that time of the recorded use writes nothing.
- Creating and revoking are audited (``apikey.created``, ``apikey.revoked``), in the
  same transaction; the event's detail holds the name, prefix and scopes, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from parsec.accounts.access import SCOPES
from parsec.accounts.audit import AuditActor, record
from parsec.accounts.errors import INVALID_ARGUMENT, NOT_FOUND, AccountsError, Unauthenticated
from parsec.accounts.principal import API_KEY_PREFIX
from parsec.accounts.signing import Clock
from parsec.db.schema import ApiKey, Org, User

if TYPE_CHECKING:
    from parsec.db import Database

__all__ = [
    "LAST_USED_EVERY",
    "MAX_EXPIRES_IN",
    "MAX_NAME_LENGTH",
    "ApiKeyInfo",
    "ApiKeys",
    "CreatedKey",
    "check_scopes",
]

PREFIX_LENGTH: Final = 12
SECRET_BYTES: Final = 32
MAX_EXPIRES_IN: Final = 365 * 86400
"""The longest life a key can be given: one year, in seconds."""
MAX_NAME_LENGTH: Final = 100
LAST_USED_EVERY: Final = 60
"""Seconds between two writes of a key's ``last_used_at``."""
_KEY: Final = re.compile(
    re.escape(API_KEY_PREFIX) + rf"([0-9a-f]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})"
)
_INVALID: Final = "invalid API key"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as listings show it (never the key itself); ``created_by_username`` is the
    creating user's username while they exist (None for a key made by a key)."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: uuid.UUID | None
    created_by_username: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its row, and the key (``psk_…``), shown this once."""

    info: ApiKeyInfo
    key: str


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` without repeats, in :data:`~parsec.accounts.access.SCOPES` order.

    Raises:
        AccountsError: ``PARSEC_INVALID_ARGUMENT`` naming the scopes Parsec does not know.
    """
    wanted = set(scopes)
    unknown = sorted(wanted.difference(SCOPES))
    if unknown:
        raise AccountsError(
            f"unknown scope(s) {', '.join(map(repr, unknown))}; known: {', '.join(SCOPES)}",
            code=INVALID_ARGUMENT,
        )
    return tuple(scope for scope in SCOPES if scope in wanted)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(key: ApiKey, username: str | None) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=key.id,
        org_id=key.org_id,
        name=key.name,
        prefix=key.prefix,
        scopes=tuple(str(scope) for scope in key.scopes or ()),
        created_at=key.created_at,
        created_by=key.created_by,
        created_by_username=username,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


class ApiKeys:
    """The API keys of ``db`` (open and migrated); time comes from ``clock``."""

    def __init__(self, db: Database, *, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def create(
        self,
        org_id: uuid.UUID,
        name: str,
        scopes: Iterable[str],
        *,
        by: AuditActor,
        created_by: uuid.UUID | None = None,
        expires_in: int | None = None,
    ) -> CreatedKey:
        """A new key of ``org_id`` named ``name`` holding ``scopes``, expiring
        ``expires_in`` seconds from now (None: never); audited as ``by``'s act.

        Raises:
            AccountsError: ``PARSEC_INVALID_ARGUMENT`` for an empty or too long name, an
                unknown scope, or an expiry outside 1 s .. one year.
        """
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise AccountsError(
                f"a key's name must have 1 to {MAX_NAME_LENGTH} characters", code=INVALID_ARGUMENT
            )
        held = check_scopes(scopes)
        if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise AccountsError(
                f"expires_in must be within 1..{MAX_EXPIRES_IN} seconds (one year)",
                code=INVALID_ARGUMENT,
            )
        now = self._now()
        expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
        for _attempt in range(3):
            prefix = secrets.token_hex(PREFIX_LENGTH // 2)
            key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
            row = ApiKey(
                id=uuid.uuid4(),
                org_id=org_id,
                name=name,
                prefix=prefix,
                key_hash=_hash(key),
                scopes=list(held),
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
            try:
                async with self.db.transaction() as session:
                    session.add(row)
                    record(
                        session,
                        org_id,
                        by,
                        "apikey.created",
                        str(row.id),
                        {"name": name, "prefix": prefix, "scopes": list(held)},
                    )
                    await session.flush()
                    username = (
                        await session.scalar(select(User.username).where(User.id == created_by))
                        if created_by is not None
                        else None
                    )
                    return CreatedKey(_info(row, username), key)
            except IntegrityError:
                continue  # a prefix taken (2^-48 odds), or the org deleted meanwhile
        raise AccountsError("could not create the key; try again", code=INVALID_ARGUMENT)

    async def list(self, org_id: uuid.UUID) -> list[ApiKeyInfo]:
        """The keys of ``org_id``, revoked and expired ones included, oldest first."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(ApiKey, User.username)
                .outerjoin(User, User.id == ApiKey.created_by)
                .where(ApiKey.org_id == org_id)
                .order_by(ApiKey.created_at, ApiKey.prefix)
            )
            return [_info(key, username) for key, username in rows]

    async def get(self, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKeyInfo | None:
        """Key ``key_id`` of ``org_id``; None when ``org_id`` has no such key."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(ApiKey, User.username)
                    .outerjoin(User, User.id == ApiKey.created_by)
                    .where(ApiKey.id == key_id, ApiKey.org_id == org_id)
                )
            ).first()
        return None if row is None else _info(row[0], row[1])

    async def revoke(self, org_id: uuid.UUID, key_id: uuid.UUID, *, by: AuditActor) -> ApiKeyInfo:
        """Revoke key ``key_id`` of ``org_id`` now (a key revoked already stays revoked
        as it was, and is not audited again).

        Raises:
            AccountsError: ``PARSEC_NOT_FOUND`` when ``org_id`` has no such key (a key
                of another org is not found either).
        """
        async with self.db.transaction() as session:
            key = await session.scalar(
                select(ApiKey).where(ApiKey.id == key_id, ApiKey.org_id == org_id)
            )
            if key is None:
                raise AccountsError("no such API key", code=NOT_FOUND)
            if key.revoked_at is None:
                key.revoked_at = self._now()
                record(
                    session,
                    org_id,
                    by,
                    "apikey.revoked",
                    str(key.id),
                    {"name": key.name, "prefix": key.prefix},
                )
            await session.flush()
            return _info(key, None)

    async def verify(self, token: str) -> ApiKeyInfo:
        """The key ``token`` is, valid now; its use recorded (see the module).

        Raises:
            Unauthenticated: for any other value, whatever is wrong with it.
        """
        match = _KEY.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise Unauthenticated(_INVALID)
        async with self.db.session() as session:
            key = await session.scalar(
                select(ApiKey)
                .join(Org, Org.id == ApiKey.org_id)
                .where(ApiKey.prefix == match.group(1))
            )
        now = self._now()
        if (
            key is None
            or not hmac.compare_digest(key.key_hash, _hash(token))
            or key.revoked_at is not None
            or (key.expires_at is not None and key.expires_at <= now)
        ):
            raise Unauthenticated(_INVALID)
        if key.last_used_at is None or now - key.last_used_at >= timedelta(seconds=LAST_USED_EVERY):
            await self._used(key.id, now)
        return _info(key, None)

    async def _used(self, key_id: uuid.UUID, now: datetime) -> None:
        """Record a use at ``now`` unless one within :data:`LAST_USED_EVERY` seconds was
        recorded meanwhile (by another request, worker or node)."""
        stale = now - timedelta(seconds=LAST_USED_EVERY)
        async with self.db.transaction() as session:
            await session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale),
                )
                .values(last_used_at=now)
            )
