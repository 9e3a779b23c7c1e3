"""The token broker's policy contracts: who is asking, which channels they get, who may
act for whom, and what is recorded (the Go ``tokenbroker`` package's interfaces).

::

    Authenticator      bearer            -> Principal      (or Unauthenticated, 401)
    Authorizer         principal, chans  -> AuthDecision   (granted + denied with reasons)
    DelegateAuthorizer service, user     -> None           (or DelegationRefused, 403)
    AuditLogger        AuditEntry        -> None           (observation only)

Built-ins: :class:`AllowAll` / :class:`DenyAll` (also as :data:`ALLOW_ALL` /
:data:`DENY_ALL`), :class:`RoleAuthorizer` (roles read from a claim of the principal,
each role a list of channel globs), :class:`AdminOnly` (the default when no roles are
configured), :class:`DenyDelegation`, :class:`AllowDelegation` (an allow-list of
services; the default, empty unless ``delegators`` are configured, refuses everyone) and
:class:`LoggingAuditLogger` (one structured line per token on the ``parsec.audit``
logger). The authenticators are in :mod:`parsec.services.token_authn`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from parsec.auth.claims import claim_at, strings_at
from parsec.errors import ParsecError

__all__ = [
    "ALLOW_ALL",
    "DENY_ALL",
    "AdminOnly",
    "AllowAll",
    "AllowDelegation",
    "AuditEntry",
    "AuditLogger",
    "AuthDecision",
    "Authenticator",
    "Authorizer",
    "DelegateAuthorizer",
    "DelegationRefused",
    "DeniedChannel",
    "DenyAll",
    "DenyDelegation",
    "LoggingAuditLogger",
    "Principal",
    "RoleAuthorizer",
    "Unauthenticated",
    "claim_at",
]

audit_log = logging.getLogger("parsec.audit")


class Unauthenticated(ParsecError):
    """The bearer does not resolve to a principal: HTTP 401, code ``PARSEC_AUTH_MISSING``
    (no bearer, or one no authenticator recognises) or ``PARSEC_AUTH_EXPIRED``."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__("PARSEC_AUTH_EXPIRED" if expired else "PARSEC_AUTH_MISSING", message)


class DelegationRefused(ParsecError):
    """The service may not act for that user (or may not do that): HTTP 403,
    code ``PARSEC_AUTH_DENIED``."""

    def __init__(self, message: str) -> None:
        super().__init__("PARSEC_AUTH_DENIED", message)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the user id the token broker issues for, the claims the bearer was
    resolved with (what an :class:`Authorizer` reads), whether it is an administrator
    (may revoke any token or user), and, for a delegated issuance, the service acting."""

    user_id: str
    claims: Mapping[str, object] = field(default_factory=dict)
    admin: bool = False
    delegator: str = ""


@dataclass(frozen=True, slots=True)
class DeniedChannel:
    """A refused channel and a reason a person can read (it is sent to the client)."""

    channel: str
    reason: str


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """An :class:`Authorizer`'s answer: every requested channel is in exactly one list."""

    granted: tuple[str, ...]
    denied: tuple[DeniedChannel, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One issued token: its id, who it was issued to, the service that asked for it on
    their behalf (``""`` when the holder asked), its channels, when it was issued and
    expires (UTC), and the caller's address (``""`` when unknown)."""

    token_id: str
    issued_to: str
    delegator: str
    channels: tuple[str, ...]
    expires_at: datetime
    issued_at: datetime
    remote_addr: str = ""


class Authenticator(Protocol):
    """Resolves a request's bearer to a :class:`Principal`.

    Guarantees expected: never returns a principal with an empty ``user_id``; raises
    :class:`Unauthenticated` for a bearer it does not recognise or that is invalid,
    expired or revoked — and nothing else for a bad bearer (an unexpected exception is
    a server error). The broker does no signature checks itself.
    """

    async def authenticate(self, bearer: str) -> Principal: ...


class Authorizer(Protocol):
    """Decides which of ``channels`` (valid names, no duplicates) ``principal`` may have.

    Guarantees expected: every channel is either granted or denied with a reason, never
    both; a channel it knows nothing about is denied (fail closed). Must not block.
    """

    def authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision: ...


class DelegateAuthorizer(Protocol):
    """Decides whether ``service`` (the bearer's principal) may mint a token on behalf
    of ``on_behalf_of``: returns to allow, raises :class:`DelegationRefused` to refuse."""

    async def check(self, service: Principal, on_behalf_of: str) -> None: ...


class AuditLogger(Protocol):
    """Receives one :class:`AuditEntry` per issued token, after it is minted.

    Pure observation: what it does never affects issuance; an exception it raises is
    logged (``parsec.audit``) and the token is still returned."""

    def audit(self, entry: AuditEntry) -> None: ...


# --- authorizers --------------------------------------------------------------------


class AllowAll:
    """Grants every requested channel. For development and single-tenant deployments."""

    def authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision:
        return AuthDecision(tuple(channels))


class DenyAll:
    """Grants nothing."""

    def authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision:
        return AuthDecision(
            (), tuple(DeniedChannel(ch, "no channel may be granted") for ch in channels)
        )


ALLOW_ALL: Final[Authorizer] = AllowAll()
DENY_ALL: Final[Authorizer] = DenyAll()


class AdminOnly:
    """Grants every channel to an administrator principal (an operator management
    token), nothing to anyone else: the token broker's default when no roles are
    configured."""

    def authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision:
        if principal.admin:
            return AuthDecision(tuple(channels))
        reason = "no roles are configured: only an administrator is granted channels"
        return AuthDecision((), tuple(DeniedChannel(ch, reason) for ch in channels))


class RoleAuthorizer:
    """Roles → channel patterns. The principal's roles are the strings of the claim at
    ``roles_claim`` (a dotted path, default ``roles``; a single string counts as one
    role, anything else as none). A channel is granted when at least one of those roles
    has a pattern matching it; patterns are globs over the whole name (``chat:*``,
    ``news:sport.*``; ``*`` matches any characters, ``:`` included), case-sensitive."""

    def __init__(self, roles: Mapping[str, Collection[str]], roles_claim: str = "roles") -> None:
        self.roles = {name: tuple(patterns) for name, patterns in roles.items()}
        self.roles_claim = roles_claim

    def roles_of(self, principal: Principal) -> tuple[str, ...]:
        return strings_at(principal.claims, self.roles_claim)

    def authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision:
        roles = [role for role in self.roles_of(principal) if role in self.roles]
        granted: list[str] = []
        denied: list[DeniedChannel] = []
        for channel in channels:
            if any(_matches(channel, self.roles[role]) for role in roles):
                granted.append(channel)
            elif not roles:
                reason = f"no configured role in claim {self.roles_claim!r}"
                denied.append(DeniedChannel(channel, reason))
            else:
                reason = f"no pattern of roles {', '.join(roles)} matches the channel"
                denied.append(DeniedChannel(channel, reason))
        return AuthDecision(tuple(granted), tuple(denied))


def _matches(channel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(channel, pattern) for pattern in patterns)


# --- delegation ---------------------------------------------------------------------


class DenyDelegation:
    """Refuses every delegation."""

    async def check(self, service: Principal, on_behalf_of: str) -> None:
        raise DelegationRefused("delegated issuance is not enabled")


class AllowDelegation:
    """Lets the services in ``services`` (user ids) act for any user, and refuses the
    others; with ``admins`` an administrator principal may too."""

    def __init__(self, services: Collection[str] = (), *, admins: bool = False) -> None:
        self.services = frozenset(services)
        self.admins = admins

    async def check(self, service: Principal, on_behalf_of: str) -> None:
        if service.user_id in self.services or (self.admins and service.admin):
            return
        raise DelegationRefused(f"{service.user_id!r} may not act on behalf of other users")


# --- audit --------------------------------------------------------------------------


class LoggingAuditLogger:
    """Logs one INFO line per issued token on ``parsec.audit``, with the entry's fields
    also in the record's ``extra`` (``token_id``, ``issued_to``, ``delegator``,
    ``channels``, ``expires_at``, ``issued_at``, ``remote_addr``)."""

    def audit(self, entry: AuditEntry) -> None:
        fields = {
            "token_id": entry.token_id,
            "issued_to": entry.issued_to,
            "delegator": entry.delegator,
            "channels": list(entry.channels),
            "expires_at": rfc3339(entry.expires_at),
            "issued_at": rfc3339(entry.issued_at),
            "remote_addr": entry.remote_addr,
        }
        audit_log.info(
            "token issued id=%s to=%s delegator=%s channels=%s expires_at=%s remote=%s",
            entry.token_id,
            entry.issued_to,
            entry.delegator or "-",
            ",".join(entry.channels),
            fields["expires_at"],
            entry.remote_addr or "-",
            extra={"audit": fields},
        )


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with a ``Z`` (Go's ``time.Time`` JSON form)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
