"""Auth: the KeyRing of signing keys (and the stores that share it between nodes), and
connection / subscription JWTs."""

from __future__ import annotations

from parsec.auth.keyring import Key, KeyRing, KeyRingError
from parsec.auth.keyring_store import KeyRingStore, MemoryKeyRingStore, StoredKeyRing
from parsec.auth.shared_keyring import SharedKeyRing
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
    "KeyRingStore",
    "MemoryKeyRingStore",
    "ServerSubscription",
    "SharedKeyRing",
    "StoredKeyRing",
    "SubscriptionClaims",
    "SubscriptionOverride",
    "TokenError",
    "TokenExpired",
    "TokenIssuer",
    "TokenVerifier",
]
