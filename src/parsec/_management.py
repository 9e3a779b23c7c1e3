"""Parsec's management operations: channel lifecycle, tokens, keys.

Surface-agnostic: the ParsecService HTTP routes, the CLI and embedders call these.
Every failure is a ParsecError with a stable PARSEC_* code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from parsec.auth.keyring import Key, KeyRing, KeyRingError
from parsec.auth.parsec_tokens import MGMT, IssuedToken, ParsecClaims, ParsecTokens
from parsec.auth.refresh import RefreshStore, RotatedCredentials, rotate
from parsec.auth.revocation import EVERY_TOKEN, Revocations
from parsec.auth.scopes import Scope
from parsec.channels.manager import Channel, ChannelManager
from parsec.channels.names import require_name
from parsec.errors import ParsecError

if TYPE_CHECKING:
    from parsec.auth.shared_keyring import SharedKeyRing
    from parsec.engine.node import Node

__all__ = ["Credentials", "ManagementMixin"]

_ALGS = ("HS256", "RS256", "ES256", "ES384", "EdDSA")
_LONGEST_TOKEN: Final = 7 * 24 * 3600.0
"""No Parsec token lives longer (mgmt tokens are clamped to 7 days): how long a
revoked jti must be remembered."""
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What creating a private channel hands out, once."""

    name: str
    access_token: str
    refresh_token: str
    access_expires: int
    refresh_expires: int


class ManagementMixin:
    """Management operations of :class:`parsec.Parsec` (mixed into it)."""

    node: Node
    keyring: KeyRing
    _shared_keyring: SharedKeyRing | None
    manager: ChannelManager
    tokens: ParsecTokens
    refresh_store: RefreshStore
    revocations: Revocations

    # --- channels ---------------------------------------------------------------

    async def open_public(self, name: str, ttl: float | None = None) -> Channel:
        """Open a public channel, or reopen a closed one (idempotent)."""
        return await self.manager.open_public(name, ttl)

    async def create_private(
        self, subject: str, name: str, ttl: float | None = None, scopes: Sequence[Scope] = ()
    ) -> Credentials:
        """Create a private channel and mint its first access + refresh tokens for
        ``subject``. Scopes are validated before the channel exists."""
        if not subject:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "a private channel needs a subject")
        for scope in scopes:
            scope.validate()
        channel = await self.manager.create_private(name, ttl)
        refresh = self.tokens.issue_refresh(subject, channel.name, scopes, ttl=channel.ttl)
        access = self.tokens.issue_access(
            subject, [channel.name], scopes, not_after=refresh.claims.exp, fid=refresh.claims.fid
        )
        return Credentials(
            channel.name, access.token, refresh.token, access.claims.exp, refresh.claims.exp
        )

    async def get_channel(self, name: str) -> Channel:
        return await self.manager.get(name)

    async def list_channels(self) -> list[Channel]:
        return await self.manager.list()

    async def delete_channel(self, name: str) -> None:
        """Delete a channel. Its subscribers, on every node, are unsubscribed (2000) by
        the lifecycle event the deletion emits (see ``Parsec._follow_lifecycle``)."""
        await self.manager.delete(name)

    async def presence_count(self, name: str) -> int:
        """How many clients are subscribed to a channel (cluster-wide presence)."""
        require_name(name)
        stats = await self.node.presence.presence_stats(name)
        return stats.num_clients

    # --- tokens -----------------------------------------------------------------

    async def refresh_access(self, refresh_token: str) -> RotatedCredentials:
        """Redeem a refresh token: a new access token and a new refresh token of the
        same family. Redeeming one refresh token twice revokes its whole family: its
        refresh and access tokens are refused, and live subscriptions made with its
        access tokens end (on every node)."""
        return await rotate(
            self.tokens,
            self.refresh_store,
            self.revocations,
            refresh_token,
            channel_ttl=self._open_ttl,
        )

    async def _open_ttl(self, name: str) -> float:
        channel = await self.manager.get(name)
        await self.manager.check_subscribe(name)
        return channel.ttl

    def issue_mgmt(
        self, subject: str, ttl: float | None = None, scopes: Sequence[Scope] | None = None
    ) -> IssuedToken:
        """A management token (default: full operator scopes, 24 h, clamped to 1 h .. 7 d)."""
        for scope in scopes or ():
            scope.validate()
        return self.tokens.issue_mgmt(subject or "operator", ttl=ttl, scopes=scopes)

    async def authenticate_mgmt(self, bearer: str) -> ParsecClaims:
        """The claims of a valid, unrevoked management token."""
        claims = self.tokens.verify(bearer, MGMT)
        self.revocations.check(claims, once=True)
        return claims

    async def revoke_token(self, jti: str, user: str = "", reason: str = "") -> None:
        """Refuse the token whose ``jti`` this is, whatever its kind (a Centrifugo
        connection or subscription token, a Parsec access, refresh or management token),
        for 7 days (the longest a Parsec token lives). Connections and subscriptions
        holding it end, on every node."""
        if not jti:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "token_id is required")
        until = int(time.time() + _LONGEST_TOKEN)
        await self.revocations.revoke_token(jti, user=user, reason=reason, until=until)

    async def revoke_user(self, user: str, reason: str = "") -> None:
        """Refuse every token of ``user`` (its ``sub``) issued until now, whatever its
        kind, for 7 days; tokens issued later work. Connections and subscriptions
        holding one end, on every node."""
        if not user:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "user_id is required")
        now = int(time.time())
        await self.revocations.revoke_user(
            user, cutoff=now, until=now + int(_LONGEST_TOKEN), scope=EVERY_TOKEN, reason=reason
        )

    # --- keys -------------------------------------------------------------------
    # With a shared keyring (Redis) a change goes through the store, and every node
    # holds it within about a second; without one it changes the ring and its file.

    def list_keys(self) -> list[Key]:
        return self.keyring.keys()

    async def generate_key(self, alg: str = "HS256") -> Key:
        """A new verify-only key (promote it to sign with it)."""
        wanted = {a.lower(): a for a in _ALGS}.get(alg.lower())
        if wanted is None:
            raise ParsecError(
                "PARSEC_INVALID_ARGUMENT", f"unknown alg {alg!r}; use one of {', '.join(_ALGS)}"
            )
        return await self._change_keys(lambda ring: ring.generate(wanted))

    async def promote_key(self, kid: str) -> None:
        """Make ``kid`` the signing key; the old active key stays verify-only.
        PARSEC_KEY_NOT_FOUND for an unknown key, PARSEC_INVALID_ARGUMENT for a retired one."""
        await self._change_keys(lambda ring: ring.promote(kid))

    async def retire_key(self, kid: str) -> None:
        """Retire a key: tokens it signed are refused from now on. PARSEC_KEY_NOT_FOUND for
        an unknown key, PARSEC_KEY_ACTIVE for the active one."""
        await self._change_keys(lambda ring: ring.retire(kid))

    async def reload_keys(self) -> None:
        """Re-read the keyring from its store (after another process changed it)."""
        try:
            if self._shared_keyring is None:
                self.keyring.reload()
            else:
                await self._shared_keyring.reload()
        except KeyRingError as exc:
            raise ParsecError(exc.code, str(exc)) from None

    async def _change_keys(self, change: Callable[[KeyRing], _T]) -> _T:
        try:
            if self._shared_keyring is None:
                return change(self.keyring)
            return await self._shared_keyring.update(change)
        except KeyRingError as exc:
            raise ParsecError(exc.code, str(exc)) from None
