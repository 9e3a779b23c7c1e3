"""CSRF tokens of the HTML forms a logged-in browser posts (the device flow's verify
page): ``SameSite=Lax`` keeps most cross-site posts from carrying the session cookie,
and the token makes sure the form itself came from this site, for this user.

A token is itsdangerous' URL-safe timed serialization of ``{"uid": user_id}``,
HMAC-SHA256-signed under a key derived from ``[accounts] session_key`` and the salt
:data:`SALT` (so no session cookie, OAuth state or access token is ever a CSRF token).

Guarantees of :class:`CsrfTokens`: ``check(token, user_id)`` is True only for a token
``mint(user_id)`` made with one of the keys, within ``ttl`` seconds; it never raises.
"""

from __future__ import annotations

import time
from typing import Final

from itsdangerous import BadData

from parsec.accounts.signing import Clock, SessionKey, session_keys, timed_serializer

__all__ = ["DEFAULT_CSRF_TTL", "SALT", "CsrfTokens"]

SALT: Final = "parsec.accounts.csrf"
DEFAULT_CSRF_TTL: Final = 3600
MAX_TOKEN_LENGTH: Final = 1024


class CsrfTokens:
    """Mints and checks CSRF tokens bound to a user, signed with ``key``.

    Raises:
        ValueError: a key shorter than 32 bytes, or a ``ttl`` under one second.
    """

    def __init__(
        self, key: SessionKey, *, ttl: int = DEFAULT_CSRF_TTL, clock: Clock = time.time
    ) -> None:
        if ttl < 1:
            raise ValueError(f"the CSRF token TTL must be at least 1 second, not {ttl}")
        self.ttl = ttl
        self._serializer = timed_serializer(session_keys(key), salt=SALT, clock=clock)

    def mint(self, user_id: str) -> str:
        """A token for a form that ``user_id`` will post."""
        return self._serializer.dumps({"uid": user_id})

    def check(self, token: str | None, user_id: str) -> bool:
        """Whether ``token`` was minted for ``user_id``, within the TTL."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return False
        try:
            payload = self._serializer.loads(token, max_age=self.ttl)
        except (BadData, ValueError, TypeError, UnicodeError):
            return False
        return isinstance(payload, dict) and payload.get("uid") == user_id
