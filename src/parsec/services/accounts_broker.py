"""The token broker with ``[accounts]``: accounts' callers may ask for connection tokens.

:class:`AccountsBrokerAuthenticator` (a token broker
:class:`~parsec.services.token_policy.Authenticator`) accepts, besides what the broker
accepted before (its ``fallback``: management tokens, the identity provider's tokens):

- a user access token (``Bearer psu_…``) → the user (the principal's ``user_id`` is the
  user's id);
- an API key (``Bearer psk_…``) holding the scope ``tokens:issue`` → the key
  (``user_id`` ``apikey:<key id>``); a valid key without that scope is 403
  ``PARSEC_AUTH_DENIED``;
- the session cookie of a browser login (no ``Authorization`` header), through
  :meth:`~AccountsBrokerAuthenticator.authenticate_session`.

A ``psu_`` or ``psk_`` bearer is decided here and never handed to the fallback; every
other bearer goes to the fallback only. Any bad accounts credential is the one 401
``PARSEC_AUTH_MISSING``. Principals carry the claims ``parsec_principal`` (``user`` or
``api_key``) and, for a key, ``org_id``, for an authorizer to read.

:class:`AccountsAuditLogger` passes every entry to the logger it wraps, and records
``token.issued`` in the audit log for tokens an accounts principal asked for (the user,
or the key — its org's event), detail ``{token_id, issued_to, channels, expires_at}``,
never the token. The write runs beside the request (an audit logger must not block
issuance); :meth:`~AccountsAuditLogger.drain` waits for the writes under way.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from parsec.accounts.errors import AccountsError
from parsec.accounts.principal import BearerKind, bearer_kind
from parsec.accounts.principal import Principal as AccountsPrincipal
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.services.token_broker import TokenBrokerSettings
from parsec.services.token_policy import (
    AuditEntry,
    AuditLogger,
    Authenticator,
    DelegationRefused,
    Principal,
    Unauthenticated,
    rfc3339,
)

if TYPE_CHECKING:
    from parsec.services.accounts import AccountsService
    from parsec.services.token_broker import TokenBroker

__all__ = [
    "API_KEY_SUBJECT",
    "ISSUE_SCOPE",
    "SESSION_COOKIE",
    "AccountsAuditLogger",
    "AccountsBrokerAuthenticator",
    "SessionAuthenticator",
    "accept_accounts",
]

log = logging.getLogger("parsec.audit")

ISSUE_SCOPE: Final = "tokens:issue"
SESSION_COOKIE: Final = COOKIE_NAME
API_KEY_SUBJECT: Final = "apikey:"
"""An API key's principal is ``apikey:<key id>``."""
_INVALID: Final = "invalid or expired credential"


@runtime_checkable
class SessionAuthenticator(Protocol):
    """An authenticator that also takes a browser's session cookie."""

    async def authenticate_session(self, cookie: str) -> Principal: ...


def accept_accounts(broker: TokenBroker, accounts: AccountsService) -> AccountsAuditLogger:
    """Let ``broker`` take accounts' callers (its authenticator and audit logger wrapped,
    see the module); the audit logger, to drain before the accounts close."""
    audit = AccountsAuditLogger(accounts, broker.audit_logger)
    broker.configure(
        TokenBrokerSettings(
            authenticator=AccountsBrokerAuthenticator(accounts, broker.authenticator),
            audit_logger=audit,
        )
    )
    return audit


class AccountsBrokerAuthenticator:
    """See the module: accounts' bearers and cookies, else ``fallback``."""

    def __init__(self, accounts: AccountsService, fallback: Authenticator) -> None:
        self.accounts = accounts
        self.fallback = fallback

    async def authenticate(self, bearer: str) -> Principal:
        if bearer_kind(bearer) is BearerKind.UNKNOWN:
            return await self.fallback.authenticate(bearer)
        try:
            caller = await self.accounts.authenticate(cookie=None, bearer=bearer)
        except AccountsError:
            raise Unauthenticated(_INVALID) from None
        return _principal(caller)

    async def authenticate_session(self, cookie: str) -> Principal:
        """The user of a session cookie (401 ``PARSEC_AUTH_MISSING`` for a bad one)."""
        try:
            caller = await self.accounts.authenticate(cookie=cookie, bearer=None)
        except AccountsError:
            raise Unauthenticated(_INVALID) from None
        return _principal(caller)


def _principal(caller: AccountsPrincipal) -> Principal:
    if caller.kind == "api_key":
        if ISSUE_SCOPE not in (caller.scopes or ()):
            raise DelegationRefused(f"this API key lacks the scope {ISSUE_SCOPE!r}")
        return Principal(
            f"{API_KEY_SUBJECT}{caller.id}",
            {"parsec_principal": "api_key", "org_id": str(caller.org_id)},
        )
    return Principal(str(caller.id), {"parsec_principal": "user"})


class AccountsAuditLogger:
    """See the module: ``token.issued`` events in the audit log, and ``inner``'s."""

    def __init__(self, accounts: AccountsService, inner: AuditLogger) -> None:
        self.accounts = accounts
        self.inner = inner
        self._writes: set[asyncio.Task[None]] = set()

    def audit(self, entry: AuditEntry) -> None:
        self.inner.audit(entry)
        actor = entry.delegator or entry.issued_to
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on a loop: nothing can write
        task = loop.create_task(self._record(actor, entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def start(self) -> None:
        """Nothing to open (the accounts' database is the accounts service's)."""

    async def drain(self) -> None:
        """Wait for the audit writes under way (run before the database closes)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _record(self, actor: str, entry: AuditEntry) -> None:
        # imported here: SQLAlchemy loads only with accounts
        from parsec.accounts.audit import record

        try:
            principal = await self._actor(actor)
            if principal is None:
                return
            async with self.accounts.db.transaction() as session:
                record(
                    session,
                    principal.org_id,
                    principal,
                    "token.issued",
                    entry.token_id,
                    {
                        "token_id": entry.token_id,
                        "issued_to": entry.issued_to,
                        "channels": list(entry.channels),
                        "expires_at": rfc3339(entry.expires_at),
                    },
                )
        except Exception:
            log.exception("could not record token %s in the audit log", entry.token_id)

    async def _actor(self, actor: str) -> AccountsPrincipal | None:
        """The accounts principal ``actor`` names (``apikey:<id>`` or a user's id);
        None for any other actor (an operator, an identity provider's subject)."""
        from sqlalchemy import select

        from parsec.db.schema import ApiKey

        try:
            wanted = uuid.UUID(actor.removeprefix(API_KEY_SUBJECT))
        except ValueError:
            return None
        if actor.startswith(API_KEY_SUBJECT):
            async with self.accounts.db.session() as session:
                org_id = await session.scalar(select(ApiKey.org_id).where(ApiKey.id == wanted))
            return None if org_id is None else AccountsPrincipal("api_key", wanted, org_id=org_id)
        if await self.accounts.directory.user_exists(wanted):
            return AccountsPrincipal.user(wanted)
        return None
