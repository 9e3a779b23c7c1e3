"""The test OpenID provider (:mod:`oidc_provider`), able to hand out bad ID tokens: what
a broken or hostile provider (or a token swapped on the way) would send a login.

``id_token_claims`` changes the claims of the ID tokens the token endpoint issues (a
None value removes one: ``{"nonce": "other"}``, ``{"aud": "someone-else"}``,
``{"preferred_username": None}``); ``id_token_forge`` replaces the signing: it gets the
claims and returns the token (signed with an unpublished key, with ``alg`` ``none``, …).
Both are cleared by ``reset``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from oidc_provider import OIDCProvider

__all__ = ["TamperingProvider"]


class TamperingProvider(OIDCProvider):
    """An :class:`~oidc_provider.OIDCProvider` whose ID tokens a test may spoil."""

    id_token_claims: dict[str, Any]
    id_token_forge: Callable[[dict[str, Any]], str] | None

    def _reset_flows(self) -> None:
        super()._reset_flows()
        self.id_token_claims = {}
        self.id_token_forge = None

    def id_token(
        self,
        client_id: str,
        user: tuple[str, tuple[str, ...]] | None = None,
        *,
        ttl: float | None = None,
        nonce: str | None = None,
    ) -> str:
        token = super().id_token(client_id, user, ttl=ttl, nonce=nonce)
        if not self.id_token_claims and self.id_token_forge is None:
            return token
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        claims.update(self.id_token_claims)
        claims = {name: value for name, value in claims.items() if value is not None}
        if self.id_token_forge is not None:
            return self.id_token_forge(claims)
        return self.active.sign(claims)
