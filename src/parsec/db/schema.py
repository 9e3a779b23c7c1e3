"""The tables of accounts and tenancy, as typed declarative models.

Every table says what it is for in its docstring. Portable types only (``Uuid``,
``String``, ``Text``, ``JSON``, ``Boolean``, ``Integer``, :class:`UTCDateTime`), so one
schema serves SQLite and PostgreSQL; constraint names come from one naming convention,
so migrations name them the same on both. Timestamps are timezone-aware UTC on the way
in and out (SQLite stores them without a zone; :class:`UTCDateTime` puts it back).

Tables: ``users``, ``identities``, ``orgs``, ``members``, ``invites``, ``api_keys``,
``audit_events``, ``oauth_states``, ``device_codes``. Secrets are never stored: invite
tokens, API keys and device codes are kept as hashes (the caller picks the hash; SHA-256
hex fits every column); the org's NATS signing seed is the one exception, as in the seed
server, because Parsec must sign with it.

A change to these models needs a new revision in ``migrations/versions/``:
``tests/db/test_migrations.py`` fails while models and migrations disagree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "DEVICE_STATUSES",
    "ROLES",
    "ApiKey",
    "AuditEvent",
    "Base",
    "DeviceCode",
    "Identity",
    "Invite",
    "Member",
    "OAuthState",
    "Org",
    "UTCDateTime",
    "User",
    "utcnow",
]

ROLES: Final = ("owner", "admin", "member")
"""A member's roles, strongest first."""
DEVICE_STATUSES: Final = ("pending", "approved", "denied")
"""Where a device authorization (RFC 8628) stands."""

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends; a naive one is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime cannot be stored: give it a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person who logs in. ``username`` is their login (the GitHub login for GitHub
    users) and the slug of their personal org."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Identity(Base):
    """How a user logs in: one row per (provider, subject), e.g. ``("github", "583231")``
    or ``("oidc:https://sso.example.com/realms/x", "<sub>")``; a user may have several."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Org(Base):
    """An organisation: the unit of isolation (its own channels, keys, limits and, on
    NATS, its own account). ``personal`` marks the org made at a user's first login.
    The ``nats_*`` columns are set when its NATS account is provisioned."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    namespaces: Mapped[list[Any] | None] = mapped_column(JSON)
    """The org's own ``[[namespaces]]`` tables as set through the API (validated by
    :func:`parsec.config.build_org_namespaces`); None: the operator's namespaces."""
    nats_account_public_key: Mapped[str | None] = mapped_column(String(64))
    nats_account_jwt: Mapped[str | None] = mapped_column(Text)
    nats_signing_seed: Mapped[str | None] = mapped_column(Text)


class Member(Base):
    """A user's role in an org. The org's ``owner_user_id`` is the authority on who owns
    it; a member row saying ``owner`` for anyone else counts as ``admin``."""

    __tablename__ = "members"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invite(Base):
    """An invitation to join an org with a role, addressed to an email or a username,
    redeemed with a token of which only the hash is kept; open until accepted,
    declined or expired."""

    __tablename__ = "invites"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("email IS NOT NULL OR username IS NOT NULL", name="invitee"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    username: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An org's API key: a principal of its own (a service account, not its creator).
    The key is shown once; ``prefix`` (unique, shown in listings) finds the row and
    ``key_hash`` checks the rest. ``scopes`` is a JSON list."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who did what to what, and when: logins, org and role changes, invites, API keys,
    token issuance, bans. ``org_id`` is kept without a foreign key so the trail outlives
    the org; ``actor_kind`` is ``user``, ``api_key``, ``operator`` or ``system``."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "org_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OAuthState(Base):
    """A used OAuth ``state`` nonce, shared by every worker and node: the callback
    inserts the row, and only the inserter proceeds (a replay meets the primary key).
    Rows past ``expires_at`` can be purged (:mod:`parsec.accounts.sql_ledger`)."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DeviceCode(Base):
    """A device authorization (RFC 8628): the device code's hash, the ``user_code`` a
    person types on the verify page, and what they decided; ``interval`` and
    ``last_polled_at`` drive ``slow_down``."""

    __tablename__ = "device_codes"
    __table_args__ = (CheckConstraint(_in("status", DEVICE_STATUSES), name="status"),)

    device_code_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    scope: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    interval: Mapped[int] = mapped_column(Integer, default=5)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
