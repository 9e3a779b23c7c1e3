"""Auth: the KeyRing of signing keys, and connection / subscription JWTs."""

from __future__ import annotations

from parsec.auth.keyring import Key, KeyRing, KeyRingError
from parsec.auth.tokens import (
    ConnectionClaims,
    InvalidToken,
    ServerSubscription,
    SubscriptionClaims,
    SubscriptionOverride,
    TokenError,
    TokenExpired,
    TokenIssuer,
    TokenVerifier,
)

__all__ = [
    "ConnectionClaims",
    "InvalidToken",
    "Key",
    "KeyRing",
    "KeyRingError",
    "ServerSubscription",
    "SubscriptionClaims",
    "SubscriptionOverride",
    "TokenError",
    "TokenExpired",
    "TokenIssuer",
    "TokenVerifier",
]
