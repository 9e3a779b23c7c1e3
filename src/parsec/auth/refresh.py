"""Refresh-token rotation with reuse detection (parsec-reference.md §4 "Refresh rotation").

Every refresh token Parsec issues carries a ``jti`` and a family id ``fid``. Redeeming one
returns a new access token and a new refresh token of the same family; each ``jti`` can be
redeemed once. Presenting a redeemed ``jti`` again means the token leaked (or the client
misbehaves), so the whole family is revoked: that request and every later one with any
token of the family is refused with ``PARSEC_AUTH_DENIED``.

A :class:`RefreshStore` remembers redeemed ``jti`` values and revoked families.
:class:`MemoryRefreshStore` is the in-process one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from parsec.auth.parsec_tokens import REFRESH, ParsecTokens
from parsec.errors import ParsecError

__all__ = ["PRUNE_INTERVAL", "MemoryRefreshStore", "RefreshStore", "RotatedCredentials", "rotate"]

PRUNE_INTERVAL: Final = 60.0
"""Seconds between two prunes of a memory store's expired entries."""

_DENIED: Final = "PARSEC_AUTH_DENIED"


class RefreshStore(Protocol):
    """Where rotation state lives; shared by every node that redeems refresh tokens.

    ``exp`` arguments are unix seconds: the store keeps the entry at least until then and
    may forget it afterwards (the tokens concerned have expired by then).
    """

    async def mark_redeemed(self, jti: str, exp: int) -> bool:
        """Record that ``jti`` was redeemed. True the first time, False on every later call
        until ``exp``. Atomic: of concurrent calls with one ``jti``, exactly one gets True."""
        ...

    async def revoke_family(self, fid: str, exp: int) -> None:
        """Revoke family ``fid`` until ``exp``. Idempotent; a later ``exp`` extends it."""
        ...

    async def is_family_revoked(self, fid: str) -> bool:
        """Whether ``fid`` was revoked and its revocation has not run out."""
        ...


class MemoryRefreshStore:
    """A :class:`RefreshStore` in this process's memory, on the injected ``clock``.

    Expired entries are never reported and are dropped at most every
    :data:`PRUNE_INTERVAL` seconds, so memory follows the number of live tokens.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._redeemed: dict[str, int] = {}
        self._revoked: dict[str, int] = {}
        self._next_prune = clock() + PRUNE_INTERVAL

    def __len__(self) -> int:
        """How many entries (redeemed jti and revoked families) the store holds."""
        return len(self._redeemed) + len(self._revoked)

    async def mark_redeemed(self, jti: str, exp: int) -> bool:
        now = self._prune()
        if self._redeemed.get(jti, now) > now:
            return False
        self._redeemed[jti] = exp
        return True

    async def revoke_family(self, fid: str, exp: int) -> None:
        self._prune()
        self._revoked[fid] = max(exp, self._revoked.get(fid, exp))

    async def is_family_revoked(self, fid: str) -> bool:
        now = self._prune()
        return self._revoked.get(fid, now) > now

    def _prune(self) -> float:
        """Drop expired entries when a prune is due; return the current time."""
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self._redeemed = {jti: exp for jti, exp in self._redeemed.items() if exp > now}
            self._revoked = {fid: exp for fid, exp in self._revoked.items() if exp > now}
        return now


_store: type[RefreshStore] = MemoryRefreshStore


@dataclass(frozen=True, slots=True)
class RotatedCredentials:
    """What redeeming a refresh token gives. ``rotated`` False is a legacy refresh token
    (no ``jti``): only an access token, ``refresh_token`` "" and ``refresh_expires`` 0."""

    access_token: str
    access_expires: int
    refresh_token: str
    refresh_expires: int
    rotated: bool


async def rotate(
    tokens: ParsecTokens,
    store: RefreshStore,
    refresh_token: str,
    *,
    channel_ttl: Callable[[str], Awaitable[float]],
) -> RotatedCredentials:
    """Redeem ``refresh_token`` for a new access token and a new refresh token.

    In order: the token must verify as a refresh token naming exactly one channel;
    ``channel_ttl(channel)`` must return its TTL (it raises for a missing or closed
    channel); a token without ``jti`` (legacy) gets an access token only, not after its own
    ``exp``; otherwise the family must not be revoked and the ``jti`` must not have been
    redeemed before — a second redemption revokes the family. On success the new refresh
    token joins the same family and the new access token expires no later than it.

    Raises:
        ParsecError: ``PARSEC_AUTH_EXPIRED`` for an expired token; ``PARSEC_AUTH_DENIED``
            for an invalid token, a revoked family or a reused token; whatever
            ``channel_ttl`` raises.
    """
    claims = tokens.verify(refresh_token, REFRESH)
    if len(claims.chs) != 1:
        raise ParsecError(_DENIED, "a refresh token must name exactly one channel")
    channel = claims.chs[0]
    ttl = await channel_ttl(channel)
    if claims.jti is None:
        access = tokens.issue_access(claims.sub, claims.chs, claims.scopes, not_after=claims.exp)
        return RotatedCredentials(access.token, access.claims.exp, "", 0, rotated=False)
    if claims.fid is None:
        raise ParsecError(_DENIED, "refresh token has a jti but no family")
    if await store.is_family_revoked(claims.fid):
        raise ParsecError(_DENIED, "refresh token family is revoked")
    if not await store.mark_redeemed(claims.jti, claims.exp):
        await store.revoke_family(claims.fid, tokens.refresh_horizon())
        raise ParsecError(_DENIED, "refresh token was already redeemed; its family is revoked")
    refresh = tokens.issue_refresh(claims.sub, channel, claims.scopes, ttl=ttl, fid=claims.fid)
    access = tokens.issue_access(
        claims.sub, claims.chs, claims.scopes, not_after=refresh.claims.exp
    )
    return RotatedCredentials(
        access_token=access.token,
        access_expires=access.claims.exp,
        refresh_token=refresh.token,
        refresh_expires=refresh.claims.exp,
        rotated=True,
    )
