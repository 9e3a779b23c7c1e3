"""The token broker: the policy point a client calls before opening its WebSocket.

A caller presents a bearer (resolved by an :class:`Authenticator`) and asks for a list of
channels; an :class:`Authorizer` splits them into granted and denied, and the broker mints
a connection token (``TokenIssuer.mint_connection``) whose ``channels`` claim is exactly
the granted ones — server-side subscriptions, so the token connects a Centrifugo SDK
subscribed to them — and whose ``jti`` is the token id. One :class:`AuditEntry` per
issued token goes to the :class:`AuditLogger`.

Lifetimes: a request without ``ttl`` gets ``default_ttl`` (1 h); a longer one than
``max_ttl`` (24 h) is clamped to it; zero or less is refused.

Revocation goes through Parsec's :class:`~parsec.auth.revocation.Revocations` (the one
store the connect path checks on every node). Who may revoke what (deny by default):

- an administrator principal (:attr:`Principal.admin`: an operator management token,
  or what an authenticator decides) may revoke any token id or any user;
- anyone else may revoke their own user (every token issued to them so far), and a
  token id of theirs: the revocation covers the token with that id *whose user they
  are*, on every node, so it can never touch another user's token (naming one is
  answered ok and changes nothing, telling nobody whose an id is);
- a service may also revoke, by id, a token this node minted on its behalf
  (delegation), while the token lives;
- revoking another user is refused (403).

Failures are :class:`~parsec.errors.ParsecError`: ``PARSEC_AUTH_MISSING`` /
``PARSEC_AUTH_EXPIRED`` (401, :class:`Unauthenticated`), ``PARSEC_INVALID_ARGUMENT``
(400), ``PARSEC_AUTH_DENIED`` (403).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from parsec.auth.revocation import Revocations
from parsec.auth.tokens import TokenIssuer
from parsec.engine.channel import ChannelResolver
from parsec.engine.codes import ClientError, errors
from parsec.engine.revocation import TokenId
from parsec.errors import ParsecError
from parsec.observability import tracing
from parsec.options import TokenBrokerOptions
from parsec.services.channels import ChannelService
from parsec.services.token_authn import (
    AuthenticatorChain,
    JWTBearerAuthenticator,
    MgmtTokenAuthenticator,
    VerifyBearer,
)
from parsec.services.token_policy import (
    AdminOnly,
    AllowDelegation,
    AuditEntry,
    AuditLogger,
    AuthDecision,
    Authenticator,
    Authorizer,
    DelegateAuthorizer,
    DelegationRefused,
    DeniedChannel,
    LoggingAuditLogger,
    Principal,
    RoleAuthorizer,
    Unauthenticated,
)

__all__ = ["IssuedConnection", "TokenBroker", "TokenBrokerSettings"]

log = logging.getLogger("parsec.audit")
_DELEGATED_SIZE: Final = 100_000
"""Delegated token ids this node remembers for their delegators (oldest dropped first)."""
_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


@dataclass(slots=True, kw_only=True)
class TokenBrokerSettings:
    """The token broker's pluggable parts; None takes the default built from
    ``options.token_broker``: Parsec management tokens, and first the identity provider's
    access tokens when ``[auth] jwks_url`` is set (the user is their ``user_id_claim``);
    a :class:`RoleAuthorizer` over
    ``roles`` and ``roles_claim`` (with no roles, :class:`AdminOnly`); an
    :class:`AllowDelegation` of ``delegators``; a :class:`LoggingAuditLogger`."""

    authenticator: Authenticator | None = None
    authorizer: Authorizer | None = None
    delegate_authorizer: DelegateAuthorizer | None = None
    audit_logger: AuditLogger | None = None


@dataclass(frozen=True, slots=True)
class IssuedConnection:
    """What the broker hands out: the token, its id, its expiry and the split."""

    token: str
    token_id: str
    expires_at: datetime
    issued_at: datetime
    granted: tuple[str, ...]
    denied: tuple[DeniedChannel, ...] = ()


class TokenBroker:
    """Issues, delegates and revokes connection tokens (see the module docstring).

    Holds no resource: nothing to start or close. The parts are set at construction and
    may be replaced with :meth:`configure`.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        channels: ChannelService,
        revocations: Revocations,
        rules: ChannelResolver,
        options: TokenBrokerOptions,
        settings: TokenBrokerSettings | None = None,
        *,
        idp: VerifyBearer | None = None,
        user_id_claim: str = "sub",
    ) -> None:
        self._issuer = issuer
        self._channels = channels
        self._revocations = revocations
        self._rules = rules
        self.options = options
        self._delegated_by: OrderedDict[str, tuple[str, int]] = OrderedDict()
        """Token id → (its delegator, its expiry), for the delegator's revoke by id."""
        mgmt = MgmtTokenAuthenticator(channels.authenticate_mgmt)
        self.authenticator: Authenticator = (
            mgmt
            if idp is None
            else AuthenticatorChain([JWTBearerAuthenticator(idp, user_claim=user_id_claim), mgmt])
        )
        self.authorizer: Authorizer = (
            RoleAuthorizer(
                {role.name: role.patterns for role in options.roles}, options.roles_claim
            )
            if options.roles
            else AdminOnly()
        )
        self.delegate_authorizer: DelegateAuthorizer = AllowDelegation(options.delegators)
        self.audit_logger: AuditLogger = LoggingAuditLogger()
        if settings is not None:
            self.configure(settings)

    def configure(self, settings: TokenBrokerSettings) -> None:
        """Replace the parts ``settings`` gives (its None fields leave a part as is)."""
        if settings.authenticator is not None:
            self.authenticator = settings.authenticator
        if settings.authorizer is not None:
            self.authorizer = settings.authorizer
        if settings.delegate_authorizer is not None:
            self.delegate_authorizer = settings.delegate_authorizer
        if settings.audit_logger is not None:
            self.audit_logger = settings.audit_logger

    # --- issuing --------------------------------------------------------------------

    async def authenticate(self, bearer: str) -> Principal:
        """The principal of ``bearer``; :class:`Unauthenticated` (401) when empty or
        refused by the authenticator."""
        if not bearer:
            raise Unauthenticated("a bearer token is required")
        return await self.authenticator.authenticate(bearer)

    async def issue(
        self,
        bearer: str,
        channels: Sequence[str],
        ttl: float | None = None,
        remote_addr: str = "",
    ) -> IssuedConnection:
        """A connection token for the bearer's user, subscribed to the channels the
        authorizer grants among ``channels``. Raises ParsecError (see the module)."""
        principal = await self.authenticate(bearer)
        return self.issue_as(principal, channels, ttl, remote_addr)

    def issue_as(
        self,
        principal: Principal,
        channels: Sequence[str],
        ttl: float | None = None,
        remote_addr: str = "",
    ) -> IssuedConnection:
        """:meth:`issue` for an authenticated ``principal``."""
        requested = self._check_channels(channels)
        lifetime = self._lifetime(ttl, "ttl")
        decision = self._authorize(principal, requested)
        return self._mint(principal.user_id, "", decision, lifetime, remote_addr)

    async def delegate(
        self,
        bearer: str,
        on_behalf_of: str,
        channels: Sequence[str],
        lifetime_seconds: float | None = None,
        remote_addr: str = "",
    ) -> IssuedConnection:
        """A connection token for ``on_behalf_of``, asked for by the bearer's principal
        (a service) when the delegate authorizer lets it act for that user
        (:class:`DelegationRefused`, 403, otherwise).

        The authorizer decides on a principal with the target's user id and the
        service's claims: a delegated token carries at most the channels the service
        itself would be granted. The audit entry names both identities."""
        service = await self.authenticate(bearer)
        return await self.delegate_as(
            service, on_behalf_of, channels, lifetime_seconds, remote_addr
        )

    async def delegate_as(
        self,
        service: Principal,
        on_behalf_of: str,
        channels: Sequence[str],
        lifetime_seconds: float | None = None,
        remote_addr: str = "",
    ) -> IssuedConnection:
        """:meth:`delegate` for an authenticated ``service``."""
        if not isinstance(on_behalf_of, str) or not on_behalf_of:
            raise ParsecError(_INVALID, "on_behalf_of must be a non-empty user id")
        requested = self._check_channels(channels)
        lifetime = self._lifetime(lifetime_seconds, "lifetime_seconds")
        await self.delegate_authorizer.check(service, on_behalf_of)
        target = Principal(on_behalf_of, service.claims, delegator=service.user_id)
        decision = self._authorize(target, requested)
        return self._mint(on_behalf_of, service.user_id, decision, lifetime, remote_addr)

    def _authorize(self, principal: Principal, channels: Sequence[str]) -> AuthDecision:
        decision = self.authorizer.authorize(principal, channels)
        granted = [ch for ch in decision.granted if ch in channels]
        # fail closed: a channel the authorizer neither granted nor denied is denied
        answered = {*granted, *(d.channel for d in decision.denied)}
        denied = [d for d in decision.denied if d.channel in channels and d.channel not in granted]
        denied += [
            DeniedChannel(ch, "the authorizer did not grant it")
            for ch in channels
            if ch not in answered
        ]
        return AuthDecision(tuple(dict.fromkeys(granted)), tuple(denied))

    def _mint(
        self,
        user: str,
        delegator: str,
        decision: AuthDecision,
        lifetime: float,
        remote_addr: str,
    ) -> IssuedConnection:
        with tracing.tracer().span("token.issue", {"parsec.token_type": "connection"}):
            minted = self._issuer.mint_connection(user, ttl=lifetime, channels=decision.granted)
        token_id = str(minted.claims["jti"])
        iat = _int_claim(minted.claims, "iat")
        exp = _int_claim(minted.claims, "exp")
        if delegator:
            self._remember(token_id, delegator, exp)
        issued = IssuedConnection(
            minted.token,
            token_id,
            datetime.fromtimestamp(exp, UTC),
            datetime.fromtimestamp(iat, UTC),
            decision.granted,
            decision.denied,
        )
        entry = AuditEntry(
            token_id,
            user,
            delegator,
            decision.granted,
            issued.expires_at,
            issued.issued_at,
            remote_addr,
        )
        try:
            self.audit_logger.audit(entry)
        except Exception:
            log.exception("the audit logger failed on token %s", token_id)
        return issued

    def _check_channels(self, channels: object) -> list[str]:
        if not isinstance(channels, list | tuple) or not channels:
            raise ParsecError(_INVALID, "channels must be a non-empty list of channel names")
        limit = self.options.max_channels
        if len(channels) > limit:
            raise ParsecError(_INVALID, f"at most {limit} channels may be asked for at once")
        checked: list[str] = []
        for channel in channels:
            if not isinstance(channel, str):
                raise ParsecError(_INVALID, "channels must be strings")
            try:
                self._rules.resolve(channel)
            except errors.UNKNOWN_CHANNEL:
                pass  # a well-formed name: whether it exists is the namespaces' concern
            except ClientError:
                raise ParsecError(_INVALID, f"invalid channel name {channel!r}") from None
            checked.append(channel)
        return list(dict.fromkeys(checked))

    def _lifetime(self, asked: float | None, name: str) -> float:
        if asked is None:
            return min(self.options.default_ttl, self.options.max_ttl)
        if isinstance(asked, bool) or not isinstance(asked, int | float):
            raise ParsecError(_INVALID, f"{name} must be a number of seconds")
        if not math.isfinite(asked) or asked <= 0:
            raise ParsecError(_INVALID, f"{name} must be a positive number of seconds")
        return min(float(asked), self.options.max_ttl)

    # --- revoking -------------------------------------------------------------------

    async def revoke(
        self, bearer: str, *, token_id: str = "", user_id: str = "", reason: str = ""
    ) -> None:
        """Revoke the token ``token_id`` or every token of ``user_id`` issued so far
        (exactly one of them), on every node, as the module docstring allows."""
        principal = await self.authenticate(bearer)
        await self.revoke_as(principal, token_id=token_id, user_id=user_id, reason=reason)

    async def revoke_as(
        self, principal: Principal, *, token_id: str = "", user_id: str = "", reason: str = ""
    ) -> None:
        """:meth:`revoke` for an authenticated ``principal``."""
        if bool(token_id) == bool(user_id):
            raise ParsecError(_INVALID, "give exactly one of token_id and user_id")
        if token_id:
            if principal.admin or self._delegated(principal.user_id, token_id):
                await self._channels.revoke_token(token_id, principal.user_id, reason)
            else:  # revoked if it is theirs, on every node; nobody else's can be
                await self._channels.revoke_held_token(principal.user_id, token_id, reason)
            return
        if not (principal.admin or user_id == principal.user_id):
            raise DelegationRefused("only an administrator may revoke another user's tokens")
        await self._channels.revoke_user(user_id, reason)

    def is_revoked(self, token_id: str, user_id: str, issued_at: datetime | int) -> bool:
        """Whether a connection token (its id, user and issue time) is revoked: the
        check the connect path makes on every node."""
        iat = int(issued_at.timestamp()) if isinstance(issued_at, datetime) else issued_at
        return self._revocations.connection_revoked(TokenId(user_id, token_id or None, iat))

    def _remember(self, token_id: str, delegator: str, exp: int) -> None:
        self._delegated_by[token_id] = (delegator, exp)
        while len(self._delegated_by) > _DELEGATED_SIZE:
            self._delegated_by.popitem(last=False)

    def _delegated(self, user: str, token_id: str) -> bool:
        """Whether this node minted the live token ``token_id`` on ``user``'s behalf."""
        held = self._delegated_by.get(token_id)
        return held is not None and held[0] == user and held[1] > time.time()


def _int_claim(claims: Mapping[str, object], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int):
        raise RuntimeError(f"a minted token has no integer {name!r}")
    return value
