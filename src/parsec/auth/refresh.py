"""Refresh-token rotation with reuse detection (parsec-reference.md §4 "Refresh rotation").

Every refresh token Parsec issues carries a ``jti`` and a family id ``fid``, and so does
every access token issued with it. Redeeming a refresh token returns a new access token
and a new refresh token of the same family; each ``jti`` can be redeemed once. Presenting
a redeemed ``jti`` again means the token leaked (or the client misbehaves), so the whole
family is revoked (:meth:`~parsec.auth.revocation.Revocations.revoke_family`): that
request and every later one with any refresh or access token of the family is refused
with ``PARSEC_AUTH_DENIED``, and live subscriptions made with the family's access tokens
are ended.

A :class:`RefreshStore` remembers redeemed ``jti`` values; revoked families are
revocations like any other (``parsec.auth.revocation``). :class:`MemoryRefreshStore` is
the in-process store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from parsec.auth.parsec_tokens import REFRESH, ParsecTokens
from parsec.auth.revocation import Revocations
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


class MemoryRefreshStore:
    """A :class:`RefreshStore` in this process's memory, on the injected ``clock``.

    Expired entries are never reported and are dropped at most every
    :data:`PRUNE_INTERVAL` seconds, so memory follows the number of live tokens.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._redeemed: dict[str, int] = {}
        self._next_prune = clock() + PRUNE_INTERVAL

    def __len__(self) -> int:
        """How many redeemed jti the store holds."""
        return len(self._redeemed)

    async def mark_redeemed(self, jti: str, exp: int) -> bool:
        now = self._prune()
        if self._redeemed.get(jti, now) > now:
            return False
        self._redeemed[jti] = exp
        return True

    def _prune(self) -> float:
        """Drop expired entries when a prune is due; return the current time."""
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self._redeemed = {jti: exp for jti, exp in self._redeemed.items() if exp > now}
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
    revocations: Revocations,
    refresh_token: str,
    *,
    channel_ttl: Callable[[str], Awaitable[float]],
) -> RotatedCredentials:
    """Redeem ``refresh_token`` for a new access token and a new refresh token.

    In order: the token must verify as a refresh token and not be revoked (its ``jti``,
    its family or its subject's tokens); it must name exactly one channel;
    ``channel_ttl(channel)`` must return its TTL (it raises for a missing or closed
    channel); a token without ``jti`` (legacy) gets an access token only, not after its own
    ``exp``; otherwise the ``jti`` must not have been redeemed before — a second
    redemption revokes the family. On success the new refresh token and the new access
    token join the same family, and the access token expires no later than the refresh.

    Raises:
        ParsecError: ``PARSEC_AUTH_EXPIRED`` for an expired token; ``PARSEC_AUTH_DENIED``
            for an invalid or revoked token or a reused one (also when the family's
            revocation could not be written to the revocation store yet: it is in force
            on this node and written once the store is back); whatever ``channel_ttl``
            raises.
    """
    claims = tokens.verify(refresh_token, REFRESH)
    revocations.check(claims)
    if len(claims.chs) != 1:
        raise ParsecError(_DENIED, "a refresh token must name exactly one channel")
    channel = claims.chs[0]
    ttl = await channel_ttl(channel)
    if claims.jti is None:
        access = tokens.issue_access(claims.sub, claims.chs, claims.scopes, not_after=claims.exp)
        return RotatedCredentials(access.token, access.claims.exp, "", 0, rotated=False)
    if claims.fid is None:
        raise ParsecError(_DENIED, "refresh token has a jti but no family")
    if not await store.mark_redeemed(claims.jti, claims.exp):
        with contextlib.suppress(ParsecError):  # in force here; written to the store later
            await revocations.revoke_family(claims.fid, until=tokens.refresh_horizon())
        raise ParsecError(_DENIED, "refresh token was already redeemed; its family is revoked")
    refresh = tokens.issue_refresh(claims.sub, channel, claims.scopes, ttl=ttl, fid=claims.fid)
    access = tokens.issue_access(
        claims.sub, claims.chs, claims.scopes, not_after=refresh.claims.exp, fid=claims.fid
    )
    return RotatedCredentials(
        access_token=access.token,
        access_expires=access.claims.exp,
        refresh_token=refresh.token,
        refresh_expires=refresh.claims.exp,
        rotated=True,
    )
