"""The device authorization grant (RFC 8628): how ``parsec login`` gets a user access
token without a browser of its own.

::

    CLI                                   Parsec                         person, in a browser
    POST /oauth/device/code  ──────────▶  start(): device_code, user_code
      shows the URL and BCDF-GHJK                                        opens the verify page,
                                          decide(user_code, user) ◀───── logs in, approves
    POST /oauth/device/token (polling) ─▶ poll(device_code): pending… then the user

State lives in the database (table ``device_codes``), so every worker and node agrees.
Only the SHA-256 hex of the device code is stored; the user code is stored normalised
(8 letters of :data:`USER_CODE_ALPHABET`, no hyphen) and shown as ``XXXX-XXXX``.

Guarantees of :class:`DeviceFlow`:

- ``poll`` answers the RFC's errors (:class:`DeviceFlowError`, ``error`` one of
  ``authorization_pending``, ``slow_down``, ``access_denied``, ``expired_token``,
  ``invalid_grant``) and, once approved, the user **once**: the row is locked and
  deleted in one transaction, so of any number of concurrent polls exactly one gets the
  user and the others ``invalid_grant``.
- A poll sooner than ``interval`` seconds after the previous one is ``slow_down`` and
  adds :data:`SLOW_DOWN_STEP` seconds to the stored interval (RFC 8628 §3.5).
- ``decide`` approves or denies a pending, unexpired code once; it returns False for an
  unknown, expired or already decided code.
- Time comes from the injectable ``clock`` (seconds since the epoch): tests drive expiry
  and intervals without sleeping.
- Every decision is audited (``device.approved`` / ``device.denied``), and so is the
  login a redeemed code makes (``user.login``, target ``device``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from parsec.accounts.signing import Clock
from parsec.db.schema import AuditEvent, DeviceCode, User

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from parsec.db import Database

__all__ = [
    "CLI_CLIENT_ID",
    "DEVICE_CODE_TTL",
    "GRANT_TYPE",
    "POLL_INTERVAL",
    "SLOW_DOWN_STEP",
    "USER_CODE_ALPHABET",
    "DeviceAuthorization",
    "DeviceFlow",
    "DeviceFlowError",
    "PendingDevice",
    "format_user_code",
    "hash_device_code",
    "normalize_user_code",
]

CLI_CLIENT_ID: Final = "parsec-cli"
"""The one client allowed to ask for device codes: the public client of ``parsec login``."""
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_TTL: Final = 600
"""Seconds a device code lives (``expires_in``)."""
POLL_INTERVAL: Final = 5
"""Seconds a client waits between polls, at first (``interval``)."""
SLOW_DOWN_STEP: Final = 5
"""Seconds added to the interval by each ``slow_down``."""
USER_CODE_ALPHABET: Final = "BCDFGHJKLMNPQRSTVWXZ"
"""Consonants only: no vowels (no words), no look-alikes of digits."""
USER_CODE_LENGTH: Final = 8
DEVICE_CODE_BYTES: Final = 32
MAX_DEVICE_CODE_LENGTH: Final = 512
PURGE_GRACE: Final = 3600.0
"""Seconds an expired device code is kept (answering ``expired_token``) before purging."""


class DeviceFlowError(Exception):
    """An OAuth error of the token endpoint (RFC 8628 §3.5, RFC 6749 §5.2): ``error`` is
    the code, ``description`` a sentence for people (never a code or a token)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """A fresh device authorization, as the device authorization endpoint answers it
    (without the URIs, which the HTTP layer adds)."""

    device_code: str
    user_code: str
    """Formatted: ``XXXX-XXXX``."""
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class PendingDevice:
    """A device code waiting for a person's decision, as the verify page shows it."""

    user_code: str
    """Formatted: ``XXXX-XXXX``."""
    scope: str
    expires_at: datetime


def hash_device_code(device_code: str) -> str:
    """What is stored of a device code: its SHA-256, hex."""
    return hashlib.sha256(device_code.encode("utf-8")).hexdigest()


def normalize_user_code(text: str | None) -> str | None:
    """``text`` as a stored user code (upper case, without hyphens or spaces), or None
    when it cannot be one. Total: never raises."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    code = text.replace("-", "").replace(" ", "").upper()
    if len(code) != USER_CODE_LENGTH or any(char not in USER_CODE_ALPHABET for char in code):
        return None
    return code


def format_user_code(code: str) -> str:
    """A stored user code as people read and type it: ``XXXX-XXXX``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def _new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


class DeviceFlow:
    """Device authorizations on ``db`` (open, migrated); see the module.

    ``ttl`` and ``interval`` are what new codes get; ``clock`` is read on every call
    (tests replace it, or move the one they gave).
    """

    def __init__(
        self,
        db: Database,
        *,
        ttl: int = DEVICE_CODE_TTL,
        interval: int = POLL_INTERVAL,
        clock: Clock = time.time,
    ) -> None:
        if ttl < 1 or interval < 1:
            raise ValueError("a device code's TTL and interval must be at least 1 second")
        self.db = db
        self.ttl = ttl
        self.interval = interval
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- the device ------------------------------------------------------------

    async def start(self, scope: str = "") -> DeviceAuthorization:
        """A new pending device authorization for ``scope``. Purges codes that expired
        more than :data:`PURGE_GRACE` seconds ago."""
        now = self._now()
        device_code = secrets.token_urlsafe(DEVICE_CODE_BYTES)
        await self._purge(now)
        for _attempt in range(5):
            user_code = _new_user_code()
            row = DeviceCode(
                device_code_hash=hash_device_code(device_code),
                user_code=user_code,
                scope=scope,
                status="pending",
                created_at=now,
                expires_at=now + timedelta(seconds=self.ttl),
                interval=self.interval,
            )
            try:
                async with self.db.transaction() as session:
                    session.add(row)
            except IntegrityError:
                continue  # a user code in use: 20**8 codes make this rare
            return DeviceAuthorization(
                device_code, format_user_code(user_code), self.ttl, self.interval
            )
        raise RuntimeError("no free user code after 5 attempts")

    async def poll(self, device_code: str) -> uuid.UUID:
        """The user who approved ``device_code``, once; the code is then gone.

        Raises:
            DeviceFlowError: ``invalid_grant`` (unknown or already redeemed),
                ``expired_token``, ``access_denied``, ``slow_down`` or
                ``authorization_pending``.
        """
        if not device_code or len(device_code) > MAX_DEVICE_CODE_LENGTH:
            raise DeviceFlowError("invalid_grant", "unknown device code")
        code_hash = hash_device_code(device_code)
        now = self._now()
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(DeviceCode).where(DeviceCode.device_code_hash == code_hash).with_for_update()
            )
            if row is None:
                raise DeviceFlowError("invalid_grant", "unknown or already used device code")
            if now >= row.expires_at:
                raise DeviceFlowError("expired_token", "the device code has expired; start again")
            if row.status == "approved" and row.user_id is not None:
                return await self._redeem(session, code_hash, row.user_id)
            if row.status == "denied":
                raise DeviceFlowError("access_denied", "the login was denied")
            too_soon = row.last_polled_at is not None and now < row.last_polled_at + timedelta(
                seconds=row.interval
            )
            row.last_polled_at = now
            if too_soon:
                row.interval += SLOW_DOWN_STEP
                slow_down = DeviceFlowError(
                    "slow_down", f"polling too often: wait {row.interval} seconds between polls"
                )
            else:
                slow_down = None
        if slow_down is not None:
            raise slow_down
        raise DeviceFlowError("authorization_pending", "the login is not approved yet")

    async def _redeem(self, session: AsyncSession, code_hash: str, user_id: uuid.UUID) -> uuid.UUID:
        gone = await session.execute(
            delete(DeviceCode).where(
                DeviceCode.device_code_hash == code_hash, DeviceCode.status == "approved"
            )
        )
        if getattr(gone, "rowcount", 0) != 1:
            raise DeviceFlowError("invalid_grant", "unknown or already used device code")
        session.add(
            AuditEvent(
                org_id=None,
                actor_kind="user",
                actor_id=str(user_id),
                action="user.login",
                target="device",
            )
        )
        return user_id

    # --- the person ------------------------------------------------------------

    async def pending(self, user_code: str | None) -> PendingDevice | None:
        """The pending, unexpired authorization of ``user_code`` (any case, hyphen
        optional); None for any other value."""
        code = normalize_user_code(user_code)
        if code is None:
            return None
        async with self.db.session() as session:
            row = await session.scalar(
                select(DeviceCode).where(
                    DeviceCode.user_code == code,
                    DeviceCode.status == "pending",
                    DeviceCode.expires_at > self._now(),
                )
            )
        if row is None:
            return None
        return PendingDevice(format_user_code(code), row.scope, row.expires_at)

    async def decide(self, user_code: str | None, user_id: uuid.UUID, *, approve: bool) -> bool:
        """Approve (for ``user_id``) or deny the pending, unexpired ``user_code``, and
        audit it; False (nothing changed) for any other code."""
        code = normalize_user_code(user_code)
        if code is None:
            return False
        status = "approved" if approve else "denied"
        async with self.db.transaction() as session:
            changed = await session.execute(
                update(DeviceCode)
                .where(
                    DeviceCode.user_code == code,
                    DeviceCode.status == "pending",
                    DeviceCode.expires_at > self._now(),
                )
                .values(status=status, user_id=user_id if approve else None)
            )
            if getattr(changed, "rowcount", 0) != 1:
                return False
            session.add(
                AuditEvent(
                    org_id=None,
                    actor_kind="user",
                    actor_id=str(user_id),
                    action=f"device.{status}",
                    target=format_user_code(code),
                )
            )
        return True

    async def username(self, user_id: uuid.UUID) -> str | None:
        """The username of ``user_id`` (the verify page says who is approving)."""
        async with self.db.session() as session:
            user = await session.get(User, user_id)
        return None if user is None else user.username

    async def _purge(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=PURGE_GRACE)
        async with self.db.transaction() as session:
            await session.execute(delete(DeviceCode).where(DeviceCode.expires_at < horizon))
