"""What a caller may do in an org: roles for users, scopes for API keys.

Roles rank ``owner`` > ``admin`` > ``member``; an operation names the weakest role that
may run it. An API key has no role: it holds scopes, and an operation names the scope
it needs (:data:`SCOPES`). :func:`allowed` decides both ways, failing closed: an
unknown role or scope allows nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from parsec.accounts.errors import FORBIDDEN, AccountsError
from parsec.accounts.principal import Principal

__all__ = ["ROLE_RANK", "SCOPES", "OrgAccess", "allowed", "at_least"]

ROLE_RANK: Final[dict[str, int]] = {"owner": 3, "admin": 2, "member": 1}

SCOPES: Final = (
    "org:read",
    "org:write",
    "members:read",
    "members:write",
    "invites:read",
    "invites:write",
    "apikeys:read",
    "apikeys:write",
    "audit:read",
    "tokens:issue",
    "channels:read",
    "channels:publish",
)
"""Scopes an API key can hold; ``*:read`` lists and reads, ``*:write`` changes."""


def at_least(role: str | None, weakest: str) -> bool:
    """Whether ``role`` is ``weakest`` or stronger (unknown roles: never)."""
    if role is None or role not in ROLE_RANK or weakest not in ROLE_RANK:
        return False
    return ROLE_RANK[role] >= ROLE_RANK[weakest]


def allowed(principal: Principal, role: str | None, *, weakest: str, scope: str) -> bool:
    """Whether ``principal`` (with ``role`` in the org, for a user) may run an operation
    open to ``weakest`` and above, or to API keys holding ``scope``."""
    if principal.kind == "api_key":
        return principal.scopes is not None and scope in principal.scopes
    return at_least(role, weakest)


@dataclass(frozen=True, slots=True)
class OrgAccess:
    """A caller acting in one org: who (``principal``), where (the org's id, slug,
    name, personal flag) and as what (``role``: the user's effective role; None for an
    API key, which has scopes instead)."""

    principal: Principal
    org_id: uuid.UUID
    slug: str
    name: str
    personal: bool
    role: str | None

    def require(self, weakest: str, scope: str) -> None:
        """Go on only if the caller may run an operation open to ``weakest`` and above
        (users) or to keys holding ``scope``.

        Raises:
            AccountsError: ``PARSEC_PERMISSION_DENIED`` (403) otherwise.
        """
        if not allowed(self.principal, self.role, weakest=weakest, scope=scope):
            if self.principal.kind == "api_key":
                message = f"this API key lacks the scope {scope!r}"
            else:
                message = f"this needs the role {weakest!r} or above in {self.slug!r}"
            raise AccountsError(message, code=FORBIDDEN)
