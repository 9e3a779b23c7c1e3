"""The token broker's authenticators (:class:`parsec.services.token_policy.Authenticator`).

- :class:`MgmtTokenAuthenticator`: a Parsec management token, verified and checked for
  revocation like on the management API; an operator token is an administrator.
- :class:`JWTBearerAuthenticator`: any JWT an async ``verify`` callable accepts (an
  identity provider's access token verified against its JWKS, a test key); the user is
  one claim (``sub`` by default) and every claim is handed to the authorizer.
- :class:`AuthenticatorChain`: several of them, tried in order.
- :func:`idp_bearer`: the ``verify`` of a :class:`JWTBearerAuthenticator` for the
  identity provider of ``[auth] jwks_url`` (the keys the node verifies its clients'
  connection tokens with).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from parsec.auth.parsec_tokens import ParsecClaims
from parsec.auth.scopes import is_operator
from parsec.auth.tokens import InvalidToken, TokenExpired, TokenVerifier
from parsec.errors import ParsecError
from parsec.services.token_policy import Authenticator, Principal, Unauthenticated, claim_at

__all__ = [
    "AuthenticatorChain",
    "JWTBearerAuthenticator",
    "MgmtTokenAuthenticator",
    "VerifyBearer",
    "idp_bearer",
]

VerifyBearer = Callable[[str], Awaitable[Mapping[str, object]]]
"""Verifies a bearer and returns its claims; raises :class:`Unauthenticated` or a
``ValueError`` (PyJWT's errors are not: wrap them) for a bad one."""


class MgmtTokenAuthenticator:
    """A Parsec management token (``Parsec.authenticate_mgmt``): the principal is its
    ``sub``, its claims are ``sub``, ``typ`` and ``scopes`` (as in the token), and it is
    an administrator when its scopes make it an operator (``manage`` on every channel).

    A token that is not a valid, unexpired, unrevoked management token raises
    :class:`Unauthenticated`; a node that cannot decide yet (``PARSEC_BROKER_NOT_READY``)
    lets that error through (503)."""

    def __init__(self, authenticate_mgmt: Callable[[str], Awaitable[ParsecClaims]]) -> None:
        self._authenticate = authenticate_mgmt

    async def authenticate(self, bearer: str) -> Principal:
        try:
            claims = await self._authenticate(bearer)
        except ParsecError as exc:
            if exc.code == "PARSEC_AUTH_EXPIRED":
                raise Unauthenticated("management token expired", expired=True) from None
            if exc.code in ("PARSEC_AUTH_DENIED", "PARSEC_INVALID_ARGUMENT"):
                raise Unauthenticated(f"not a valid management token: {exc.message}") from None
            raise
        payload = claims.to_payload()
        names = ("sub", "typ", "scopes")
        visible: dict[str, object] = {name: payload[name] for name in names if name in payload}
        return Principal(claims.sub, visible, admin=is_operator(claims.scopes))


class JWTBearerAuthenticator:
    """A JWT verified by ``verify``; the user id is the string claim at ``user_claim``
    (a dotted path, default ``sub``), and the principal carries every claim.

    ``admin`` decides from the claims whether the principal is an administrator
    (default: never). A missing or empty user claim raises :class:`Unauthenticated`."""

    def __init__(
        self,
        verify: VerifyBearer,
        *,
        user_claim: str = "sub",
        admin: Callable[[Mapping[str, object]], bool] | None = None,
    ) -> None:
        self._verify = verify
        self.user_claim = user_claim
        self._admin = admin

    async def authenticate(self, bearer: str) -> Principal:
        try:
            claims = await self._verify(bearer)
        except Unauthenticated:
            raise
        except ValueError as exc:
            raise Unauthenticated(f"bearer token rejected: {exc}") from None
        user = claim_at(claims, self.user_claim)
        if not isinstance(user, str) or not user:
            raise Unauthenticated(f"the bearer token has no {self.user_claim!r} claim")
        admin = self._admin is not None and self._admin(claims)
        return Principal(user, dict(claims), admin=admin)


class AuthenticatorChain:
    """Tries ``authenticators`` in order; the first that returns a principal wins.

    When every one raises :class:`Unauthenticated`, the chain raises one too: an
    ``expired`` one when any said the token expired, else the first one's. Any other
    exception stops the chain and propagates."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        if not authenticators:
            raise ValueError("an authenticator chain needs at least one authenticator")
        self.authenticators = tuple(authenticators)

    async def authenticate(self, bearer: str) -> Principal:
        refusals: list[Unauthenticated] = []
        for authenticator in self.authenticators:
            try:
                return await authenticator.authenticate(bearer)
            except Unauthenticated as exc:
                refusals.append(exc)
        expired = [exc for exc in refusals if exc.code == "PARSEC_AUTH_EXPIRED"]
        raise (expired or refusals)[0]


def idp_bearer(verifier: TokenVerifier) -> VerifyBearer:
    """Verifies a bearer as an access token of the identity provider ``verifier`` trusts
    (:meth:`TokenVerifier.verify_idp_token`: signature by its JWKS, ``aud`` / ``iss`` /
    time checks, one rate-limited key refresh for an unknown ``kid``). An expired one
    raises :class:`Unauthenticated` ``PARSEC_AUTH_EXPIRED``, any other failure
    ``PARSEC_AUTH_MISSING``."""

    async def verify(bearer: str) -> Mapping[str, object]:
        try:
            return await verifier.verify_idp_token(bearer)
        except TokenExpired:
            raise Unauthenticated("the bearer token has expired", expired=True) from None
        except InvalidToken as exc:
            raise Unauthenticated(f"not an identity provider's token: {exc}") from None

    return verify
