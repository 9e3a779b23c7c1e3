"""The session cookie: who is logged in, signed with ``[accounts] session_key``.

The value is itsdangerous' URL-safe timed serialization of ``{"uid": user_id}`` —
the signing time travels with it — HMAC-SHA256-signed under a key derived from the
session key and the salt :data:`SALT` (so an OAuth state, signed with the same key, is
never a valid cookie). It is readable by whoever holds it (not encrypted): it holds
nothing but the user id.

Guarantees of :class:`SessionCookies`:

- ``verify`` returns the payload of a value ``sign`` made with one of the keys, for
  ``ttl`` seconds (7 days by default) after signing, and raises the one
  :class:`~parsec.accounts.errors.InvalidSession` for anything else — malformed,
  tampered, signed by another key or for another use, expired, signed in the future,
  over :data:`MAX_COOKIE_LENGTH` — so a caller cannot tell which, nor can an attacker.
- Keys rotate (see :mod:`parsec.accounts.signing`): the first key signs, every key
  verifies.
- :meth:`SessionCookies.set_cookie_header` and :meth:`SessionCookies.cookie_attributes`
  give the cookie's attributes: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``,
  ``Max-Age`` = the TTL, and ``Secure`` exactly when ``base_url`` is https.

The cookie does not outlive its TTL, but it is not revocable on its own: a logout
clears it in the browser (:meth:`SessionCookies.clear_cookie_header`); a server-side
revocation would need a session table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, Literal, TypedDict
from urllib.parse import urlsplit

from itsdangerous import BadData

from parsec.accounts.errors import InvalidSession
from parsec.accounts.signing import Clock, SessionKey, session_keys, timed_serializer

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_SESSION_TTL",
    "MAX_COOKIE_LENGTH",
    "SALT",
    "CookieAttributes",
    "SessionCookies",
    "SessionPayload",
]

COOKIE_NAME: Final = "parsec_session"
DEFAULT_SESSION_TTL: Final = 7 * 24 * 3600
SALT: Final = "parsec.accounts.session"
MAX_COOKIE_LENGTH: Final = 4096
MAX_USER_ID_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class SessionPayload:
    """What a valid cookie says: who, and since when."""

    user_id: str
    issued_at: int
    """When the cookie was signed, in seconds since the epoch."""
    expires_at: int
    """When it stops being valid: ``issued_at`` + the TTL."""


class CookieAttributes(TypedDict):
    """The keyword arguments of Starlette's ``Response.set_cookie`` (and the attributes
    of the ``Set-Cookie`` header)."""

    key: str
    value: str
    max_age: int
    path: str
    secure: bool
    httponly: bool
    samesite: Literal["lax"]


class SessionCookies:
    """Signs and verifies session cookies with ``key`` (see
    :func:`parsec.accounts.signing.session_keys`: at least 32 bytes, or a list of keys
    newest first).

    ``base_url`` is ``[accounts] base_url``: https makes the cookie ``Secure``.

    Raises:
        ValueError: a key shorter than 32 bytes, a ``ttl`` under one second, or a
            ``base_url`` that is not http(s).
    """

    def __init__(
        self,
        key: SessionKey,
        *,
        base_url: str,
        ttl: int = DEFAULT_SESSION_TTL,
        clock: Clock = time.time,
    ) -> None:
        if ttl < 1:
            raise ValueError(f"the session TTL must be at least 1 second, not {ttl}")
        scheme = urlsplit(base_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"[accounts] base_url must be an http(s) URL, not {base_url!r}")
        self.ttl = ttl
        self.secure = scheme == "https"
        self._serializer = timed_serializer(session_keys(key), salt=SALT, clock=clock)

    def sign(self, user_id: str) -> str:
        """A cookie value naming ``user_id`` (a non-empty string of at most 256
        characters), valid for the TTL from now."""
        if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_LENGTH:
            raise ValueError("a session's user id must be a non-empty string (256 at most)")
        return self._serializer.dumps({"uid": user_id})

    def verify(self, value: str | None) -> SessionPayload:
        """The payload of a cookie ``sign`` made, still within its TTL.

        Raises:
            InvalidSession: for every other value, whatever is wrong with it.
        """
        if not isinstance(value, str) or not value or len(value) > MAX_COOKIE_LENGTH:
            raise InvalidSession
        try:
            payload, signed_at = self._serializer.loads(
                value, max_age=self.ttl, return_timestamp=True
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            raise InvalidSession from None
        user_id = payload.get("uid") if isinstance(payload, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise InvalidSession
        issued_at = int(signed_at.timestamp())
        return SessionPayload(user_id, issued_at, issued_at + self.ttl)

    def cookie_attributes(self, value: str) -> CookieAttributes:
        """The cookie ``value`` with its attributes, as Starlette's
        ``Response.set_cookie(**attributes)`` takes them."""
        return CookieAttributes(
            key=COOKIE_NAME,
            value=value,
            max_age=self.ttl,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def set_cookie_header(self, value: str) -> str:
        """The ``Set-Cookie`` header value that stores ``value``."""
        return self._header(value, self.ttl)

    def clear_cookie_header(self) -> str:
        """The ``Set-Cookie`` header value that removes the cookie (logout)."""
        return self._header("", 0)

    def _header(self, value: str, max_age: int) -> str:
        parts = [f"{COOKIE_NAME}={value}", "HttpOnly", "SameSite=Lax", "Path=/"]
        parts.append(f"Max-Age={max_age}")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)
