"""ParsecAuthority: the engine's ChannelAuthority for Parsec's managed namespaces.

Channels of the ``public`` and ``private`` namespaces have a lifecycle kept by the
ChannelManager, and Parsec access tokens grant verbs on them. This adapter answers the
engine's questions with those, translating ParsecError into client-protocol errors
(PARSEC_CHANNEL_CLOSED → 412, PARSEC_CHANNEL_NOT_FOUND → 404, PARSEC_AUTH_EXPIRED → 109,
PARSEC_AUTH_DENIED → 103).
"""

from __future__ import annotations

from typing import Final

import jwt

from parsec.auth.parsec_tokens import ACCESS, TYPES, ParsecTokens
from parsec.auth.revocation import Revocations
from parsec.channels.manager import ChannelManager
from parsec.channels.namespaces import ResolvedChannel
from parsec.engine.authority import Grant
from parsec.engine.codes import permission_denied
from parsec.engine.revocation import TokenId
from parsec.errors import ParsecError

__all__ = ["MANAGED_NAMESPACES", "ParsecAuthority"]

MANAGED_NAMESPACES: Final = frozenset({"public", "private"})


class ParsecAuthority:
    def __init__(
        self, manager: ChannelManager, tokens: ParsecTokens, revocations: Revocations
    ) -> None:
        self.manager = manager
        self.tokens = tokens
        self.revocations = revocations

    def manages(self, channel: ResolvedChannel) -> bool:
        return channel.namespace in MANAGED_NAMESPACES

    async def check_subscribe(self, channel: str) -> None:
        try:
            await self.manager.check_subscribe(channel)
        except ParsecError as exc:
            raise exc.client_error() from None

    async def check_publish(self, channel: str) -> None:
        try:
            await self.manager.touch(channel)
        except ParsecError as exc:
            raise exc.client_error() from None

    async def grant(self, token: str, channel: str) -> Grant | None:
        if not _is_parsec_token(token):
            return None
        try:
            claims = self.tokens.verify(token, ACCESS)
            self.revocations.check(claims, channel=channel)
        except ParsecError as exc:
            raise exc.client_error() from None
        if not claims.authorizes(channel, "subscribe"):
            why = f"the access token of {claims.sub!r} does not grant subscribe on it"
            raise permission_denied("subscribe to", channel, why)
        return Grant(
            expires_at=claims.exp,
            publish=claims.authorizes(channel, "publish"),
            token=TokenId(claims.sub, claims.jti, claims.iat, claims.fid),
        )


def _is_parsec_token(token: str) -> bool:
    """Whether ``token`` carries one of Parsec's ``typ`` values (read without verifying:
    the verification that decides comes next). Other issuers' ``typ`` values, such as
    Keycloak's ``"Bearer"``, leave the token to be read as a Centrifugo token."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return isinstance(payload, dict) and payload.get("typ") in TYPES
