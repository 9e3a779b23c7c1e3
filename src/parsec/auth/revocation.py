"""Token revocation: by token id (``jti``) and by user (parsec-reference.md §4 "Revocation").

Revoking a ``jti`` refuses that one token until it would have expired anyway. Revoking a
user sets a cutoff: every token of that ``sub`` issued at or before the cutoff (``iat <=
cutoff``) is refused, and tokens issued after it are accepted. :func:`check_not_revoked`
applies both rules to verified claims.

A :class:`RevocationStore` is shared by every node that verifies tokens;
:class:`MemoryRevocationStore` is the in-process one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from parsec.auth.parsec_tokens import MAX_MGMT_TTL, ParsecClaims
from parsec.errors import ParsecError

__all__ = ["PRUNE_INTERVAL", "MemoryRevocationStore", "RevocationStore", "check_not_revoked"]

PRUNE_INTERVAL: Final = 60.0
"""Seconds between two prunes of a memory store's expired entries."""

_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


class RevocationStore(Protocol):
    """Revoked token ids and per-user cutoffs (unix seconds).

    ``user`` and ``reason`` are for audit; a store may keep or drop them.
    """

    async def revoke(self, jti: str, *, user: str = "", reason: str = "", until: int) -> None:
        """Revoke token ``jti``, remembered at least until ``until`` (its ``exp``).
        Idempotent; a later ``until`` extends it.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` when ``jti`` is empty.
        """
        ...

    async def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` was revoked and the revocation has not run out."""
        ...

    async def revoke_user(self, user: str, *, cutoff: int, reason: str = "") -> None:
        """Refuse every token of ``user`` issued at or before ``cutoff``. Cutoffs only move
        forward: an earlier cutoff than the current one changes nothing.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` when ``user`` is empty.
        """
        ...

    async def user_cutoff(self, user: str) -> int | None:
        """The cutoff of ``user``, or None when the user was never revoked (or so long ago
        that none of the tokens it covers can still be valid)."""
        ...


class MemoryRevocationStore:
    """A :class:`RevocationStore` in this process's memory, on the injected ``clock``.

    It keeps ids and cutoffs, not ``user`` / ``reason``. A user cutoff is kept
    ``user_retention`` seconds (default: the longest token lifetime, 7 days), after which
    every token it covers has expired. Expired entries are dropped at most every
    :data:`PRUNE_INTERVAL` seconds.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, *, user_retention: float = MAX_MGMT_TTL
    ) -> None:
        self._clock = clock
        self._user_retention = user_retention
        self._tokens: dict[str, int] = {}
        self._users: dict[str, int] = {}
        self._next_prune = clock() + PRUNE_INTERVAL

    def __len__(self) -> int:
        """How many entries (revoked ids and user cutoffs) the store holds."""
        return len(self._tokens) + len(self._users)

    async def revoke(self, jti: str, *, user: str = "", reason: str = "", until: int) -> None:
        if not jti:
            raise ParsecError(_INVALID, "a token id to revoke must not be empty")
        self._prune()
        self._tokens[jti] = max(until, self._tokens.get(jti, until))

    async def is_revoked(self, jti: str) -> bool:
        now = self._prune()
        return self._tokens.get(jti, now) > now

    async def revoke_user(self, user: str, *, cutoff: int, reason: str = "") -> None:
        if not user:
            raise ParsecError(_INVALID, "a user to revoke must not be empty")
        self._prune()
        self._users[user] = max(cutoff, self._users.get(user, cutoff))

    async def user_cutoff(self, user: str) -> int | None:
        now = self._prune()
        cutoff = self._users.get(user)
        if cutoff is None or self._user_expired(cutoff, now):
            return None
        return cutoff

    def _user_expired(self, cutoff: int, now: float) -> bool:
        return cutoff + self._user_retention <= now

    def _prune(self) -> float:
        """Drop expired entries when a prune is due; return the current time."""
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self._tokens = {jti: until for jti, until in self._tokens.items() if until > now}
            self._users = {
                user: cutoff
                for user, cutoff in self._users.items()
                if not self._user_expired(cutoff, now)
            }
        return now


_store: type[RevocationStore] = MemoryRevocationStore


async def check_not_revoked(claims: ParsecClaims, store: RevocationStore) -> None:
    """Refuse ``claims`` whose ``jti`` is revoked or whose ``iat`` is at or before its
    subject's cutoff.

    Raises:
        ParsecError: ``PARSEC_AUTH_DENIED`` when the token is revoked.
    """
    if claims.jti is not None and await store.is_revoked(claims.jti):
        raise ParsecError("PARSEC_AUTH_DENIED", "token has been revoked")
    cutoff = await store.user_cutoff(claims.sub)
    if cutoff is not None and claims.iat <= cutoff:
        raise ParsecError("PARSEC_AUTH_DENIED", "tokens of this user issued so far are revoked")
