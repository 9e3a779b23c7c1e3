"""User access tokens: what the device flow hands the CLI (``psu_…``), the bearer of
a user on ``/api/v1``.

A token is ``psu_`` + itsdangerous' URL-safe timed serialization of ``{"uid": user_id}``,
HMAC-SHA256-signed under a key derived from ``[accounts] session_key`` and the salt
:data:`SALT` (so neither a session cookie nor an OAuth state is ever a valid token, nor
the other way round). It is stateless: valid for ``ttl`` seconds (``[accounts]
token_ttl``, 30 days by default) for a user who still exists.

Guarantees of :class:`UserTokens`: ``verify`` returns the payload of a token ``mint``
made with one of the keys and still within its TTL, and raises the one
:class:`~parsec.accounts.errors.Unauthenticated` for anything else (malformed, tampered,
another key or use, expired, over :data:`MAX_TOKEN_LENGTH`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadData

from parsec.accounts.errors import Unauthenticated
from parsec.accounts.principal import USER_TOKEN_PREFIX
from parsec.accounts.signing import Clock, SessionKey, session_keys, timed_serializer

__all__ = ["DEFAULT_TOKEN_TTL", "MAX_TOKEN_LENGTH", "SALT", "TokenPayload", "UserTokens"]

SALT: Final = "parsec.accounts.user_token"
DEFAULT_TOKEN_TTL: Final = 30 * 86400
MAX_TOKEN_LENGTH: Final = 2048


@dataclass(frozen=True, slots=True)
class TokenPayload:
    user_id: str
    issued_at: int
    expires_at: int


class UserTokens:
    """Mints and verifies user access tokens with ``key`` (one key or several, newest
    first: :func:`parsec.accounts.signing.session_keys`).

    Raises:
        ValueError: a key shorter than 32 bytes, or a ``ttl`` under one second.
    """

    def __init__(
        self, key: SessionKey, *, ttl: int = DEFAULT_TOKEN_TTL, clock: Clock = time.time
    ) -> None:
        if ttl < 1:
            raise ValueError(f"the token TTL must be at least 1 second, not {ttl}")
        self.ttl = ttl
        self._clock = clock
        self._serializer = timed_serializer(session_keys(key), salt=SALT, clock=clock)

    def mint(self, user_id: str) -> str:
        """A token naming ``user_id``, valid for the TTL from now."""
        if not user_id:
            raise ValueError("a token's user id must be a non-empty string")
        return USER_TOKEN_PREFIX + self._serializer.dumps({"uid": user_id})

    def verify(self, token: str | None) -> TokenPayload:
        """The payload of a token ``mint`` made, still within its TTL.

        Raises:
            Unauthenticated: for every other value, whatever is wrong with it.
        """
        if (
            not isinstance(token, str)
            or not token.startswith(USER_TOKEN_PREFIX)
            or len(token) > MAX_TOKEN_LENGTH
        ):
            raise Unauthenticated("invalid or expired access token")
        try:
            payload, signed_at = self._serializer.loads(
                token.removeprefix(USER_TOKEN_PREFIX), max_age=self.ttl, return_timestamp=True
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            raise Unauthenticated("invalid or expired access token") from None
        user_id = payload.get("uid") if isinstance(payload, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise Unauthenticated("invalid or expired access token")
        issued_at = int(signed_at.timestamp())
        return TokenPayload(user_id, issued_at, issued_at + self.ttl)
