"""What the engine knows of tokens: the verified claims it acts on, the errors a
verifier raises, and the :class:`Verifier` contract it calls.

The verifier itself (JWS, keyrings, shared secrets) is :mod:`parsec.auth.tokens`, a
layer above: the engine only needs ``verify_connection`` and ``verify_subscription``.
An :class:`InvalidToken` closes the connection (3500); a :class:`TokenExpired` is
answered 109. A verifier that reads keys from elsewhere (an identity provider's JWKS)
may also implement :class:`KeyRefresher`: an :class:`UnknownSigningKey` then makes the
engine await ``refresh_keys()`` and check the token once more. :mod:`parsec.auth.jws`
and :mod:`parsec.auth.tokens` re-export these names, where they were defined before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

__all__ = [
    "MALFORMED",
    "ConnectionClaims",
    "InvalidToken",
    "KeyRefresher",
    "ServerSubscription",
    "SubscriptionClaims",
    "SubscriptionOverride",
    "TokenError",
    "TokenExpired",
    "UnknownSigningKey",
    "Verifier",
]

MALFORMED: Final = "PARSEC_AUTH_MALFORMED"


# -- errors -----------------------------------------------------------------------------------


class TokenError(Exception):
    """A token that cannot be accepted. ``code`` is a stable ``PARSEC_AUTH_*`` log code."""

    default_code: ClassVar[str] = "PARSEC_AUTH_DENIED"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code


class TokenExpired(TokenError):
    """``exp`` or ``nbf`` says the token is not valid now: the engine answers 109."""

    default_code = "PARSEC_AUTH_EXPIRED"


class InvalidToken(TokenError):
    """Bad signature, malformed, wrong alg, unknown or retired kid, aud/iss mismatch, missing
    or ill-typed claim, or a token of the wrong kind: the engine closes with 3500."""

    default_code = MALFORMED


class UnknownSigningKey(InvalidToken):
    """The token's ``kid`` names no key the verifier holds now, but one it may learn of
    (an identity provider rotated its keys): a :class:`KeyRefresher` verifier can fetch
    its keys and be asked again. Refused like any invalid token when it stays unknown."""

    default_code = "PARSEC_AUTH_UNKNOWN_KID"


# -- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionOverride:
    """Per-subscription option overrides; None leaves the namespace's option as it is.

    Parsed from Centrifugo's ``{"presence": {"value": true}, …}`` shape.
    """

    presence: bool | None
    join_leave: bool | None
    force_push_join_leave: bool | None
    force_recovery: bool | None
    force_positioning: bool | None


@dataclass(frozen=True, slots=True)
class ServerSubscription:
    """A server-side subscription a connection token asks for.

    ``info`` and ``data`` are compact JSON bytes (no raw newlines) or None.
    """

    channel: str
    info: bytes | None
    data: bytes | None
    override: SubscriptionOverride | None


def _expires_at(exp: int | None, expire_at: int | None) -> int | None:
    """``expire_at`` when present (0 means never: None), else ``exp``."""
    return exp if expire_at is None else expire_at or None


@dataclass(frozen=True, slots=True)
class ConnectionClaims:
    """The verified claims of a connection token. ``user`` "" is an anonymous token."""

    user: str
    exp: int | None
    expire_at: int | None
    info: bytes | None
    meta: object | None
    subscriptions: tuple[ServerSubscription, ...]
    jti: str | None
    iat: int | None

    @property
    def expires_at(self) -> int | None:
        """When the connection expires: ``expire_at`` if the claim is present (0 => None,
        never), else ``exp``."""
        return _expires_at(self.exp, self.expire_at)


@dataclass(frozen=True, slots=True)
class SubscriptionClaims:
    """The verified claims of a subscription token; ``client`` binds it to one client id."""

    user: str
    channel: str
    exp: int | None
    expire_at: int | None
    info: bytes | None
    override: SubscriptionOverride | None
    client: str | None
    jti: str | None = None
    iat: int | None = None

    @property
    def expires_at(self) -> int | None:
        """When the subscription expires: ``expire_at`` if present (0 => None), else ``exp``."""
        return _expires_at(self.exp, self.expire_at)


# -- the contract -----------------------------------------------------------------------------


class Verifier(Protocol):
    """Verifies the tokens clients present (:class:`parsec.auth.tokens.TokenVerifier`).

    Both methods raise :class:`TokenExpired` for a token not valid now and
    :class:`InvalidToken` for any other token that cannot be accepted."""

    def verify_connection(self, token: str) -> ConnectionClaims: ...

    def verify_subscription(self, token: str) -> SubscriptionClaims: ...


class KeyRefresher(Protocol):
    """An optional capability of a :class:`Verifier` whose keys live elsewhere.

    ``refresh_keys`` fetches the keys again, at most once per the verifier's own
    minimum interval (asked more often, it returns at once with False; concurrent
    callers share one fetch). It returns whether a fetch succeeded, never raises for a
    failed fetch (the verifier keeps its last keys), and is only awaited after the
    verifier raised :class:`UnknownSigningKey`: the known-key path stays synchronous."""

    async def refresh_keys(self) -> bool: ...
