"""The channels service: the lifecycle of managed channels and the Parsec tokens that
grant access to them (issue, refresh, revoke, management tokens).

Surface-agnostic: :class:`parsec.Parsec` delegates to it, and through Parsec the
ParsecService HTTP routes, the CLI and embedders call it. Every failure is a
ParsecError with a stable PARSEC_* code.

While running it follows the channel manager's lifecycle events: a channel deleted on
any node (DeleteChannel or the sweeper) loses this node's subscribers (2000).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from parsec.auth.parsec_tokens import MGMT, IssuedToken, ParsecClaims, ParsecTokens
from parsec.auth.refresh import RefreshStore, RotatedCredentials, rotate
from parsec.auth.revocation import EVERY_TOKEN, Revocations
from parsec.auth.scopes import Scope
from parsec.channels.events import EventSubscription
from parsec.channels.manager import Channel, ChannelManager
from parsec.channels.names import require_name
from parsec.engine.aio import cancel_and_wait
from parsec.engine.auth_log import reason_of
from parsec.engine.node import Node
from parsec.errors import ParsecError
from parsec.observability import tracing

if TYPE_CHECKING:
    from parsec.auth.oidc import OIDCBridge

__all__ = ["ChannelService", "Credentials"]

log = logging.getLogger("parsec")
_LONGEST_TOKEN: Final = 7 * 24 * 3600.0
"""No Parsec token lives longer (mgmt tokens are clamped to 7 days): how long a
revoked jti must be remembered."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What creating a private channel hands out, once."""

    name: str
    access_token: str
    refresh_token: str
    access_expires: int
    refresh_expires: int


class ChannelService:
    """Channel lifecycle and Parsec tokens, over a ChannelManager, the token issuer and
    the revocations; ``node`` is the engine node whose subscribers a deletion ends.

    States: new → running (``start``) → closed (``aclose``). The operations work in
    any state (the parts they use are started and closed by their owner); ``start``
    and ``aclose`` only run the follower of lifecycle events. ``aclose`` is idempotent.
    """

    def __init__(
        self,
        node: Node,
        manager: ChannelManager,
        tokens: ParsecTokens,
        refresh_store: RefreshStore,
        revocations: Revocations,
        *,
        oidc: OIDCBridge | None = None,
    ) -> None:
        self.node = node
        self.manager = manager
        self.tokens = tokens
        self.refresh_store = refresh_store
        self.revocations = revocations
        self.oidc = oidc
        """The OIDC bridge: the management tokens of an OpenID provider, when configured."""
        self._follower: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Follow the manager's lifecycle events (call once the manager has started).

        Raises:
            RuntimeError: started twice, or after :meth:`aclose`.
        """
        if self._follower is not None or self._closed:
            raise RuntimeError("a ChannelService starts once")
        # subscribed now, not when the task first runs: no deletion can slip between
        events = self.manager.events()
        self._follower = asyncio.create_task(
            self._follow_lifecycle(events), name="parsec-channel-lifecycle"
        )

    async def aclose(self) -> None:
        """Stop following lifecycle events; waits for the follower to end. Idempotent."""
        self._closed = True
        follower, self._follower = self._follower, None
        if follower is not None:
            await cancel_and_wait(follower)

    async def __aenter__(self) -> ChannelService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _follow_lifecycle(self, events: EventSubscription) -> None:
        """A deleted channel (DeleteChannel or the sweeper, on this node or another)
        loses this node's subscribers."""
        async for event in events:
            if event.kind == "deleted":
                try:
                    await self.node.unsubscribe_channel(event.name)
                except Exception:
                    log.exception("unsubscribing the subscribers of %r failed", event.name)

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
        the lifecycle event the deletion emits (see ``_follow_lifecycle``)."""
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
        with tracing.tracer().span("token.issue", {"parsec.token_type": "management"}):
            return self.tokens.issue_mgmt(subject or "operator", ttl=ttl, scopes=scopes)

    async def authenticate_mgmt(self, bearer: str) -> ParsecClaims:
        """The claims of a valid, unrevoked management token: a Parsec one, or a token
        of the OIDC bridge's provider mapped to Parsec scopes by its grants."""
        oidc = self.oidc
        try:
            if oidc is not None and oidc.issued(bearer):
                claims = await oidc.verify(bearer)
            else:
                claims = self.tokens.verify(bearer, MGMT)
        except ParsecError as exc:
            if exc.code.startswith("PARSEC_AUTH_"):
                self.node.auth_failures.report(
                    "management", reason_of(exc.code), detail=exc.message
                )
            raise
        try:
            self.revocations.check(claims, once=True)
        except ParsecError as exc:
            if exc.code.startswith("PARSEC_AUTH_"):
                self.node.auth_failures.report("management", "revoked", user=claims.sub)
            raise
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

    async def revoke_held_token(self, user: str, jti: str, reason: str = "") -> None:
        """Refuse the token ``jti`` if ``user`` holds it (it is its subject), for 7 days,
        on every node; another user's token with that id is untouched. What a user may
        ask without anyone knowing whose token an id is (the token broker's
        self-service revoke)."""
        if not jti:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "token_id is required")
        until = int(time.time() + _LONGEST_TOKEN)
        await self.revocations.revoke_held_token(user, jti, until=until, reason=reason)

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
