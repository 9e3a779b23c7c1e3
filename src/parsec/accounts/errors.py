"""The errors of :mod:`parsec.accounts`, each with a stable ``PARSEC_*`` code.

::

    AccountsError(code, message)
     ├─ InvalidSession        PARSEC_SESSION_INVALID      any bad session cookie
     ├─ Unauthenticated       PARSEC_UNAUTHENTICATED      no credential, or a bad bearer
     ├─ InvalidOAuthState     PARSEC_OAUTH_STATE_INVALID  any bad, expired or used state
     ├─ GitHubError           PARSEC_GITHUB_*             GitHub said no, or could not be read
     └─ OIDCLoginError        PARSEC_OIDC_*               the OpenID provider said no, could
                                                          not be read, or sent a bad ID token

Codes are a contract; messages are for people and may change. No message ever holds a
secret: no cookie, state, code, access token or client secret, and nothing GitHub sent
back except its (short, validated) error code.

``InvalidSession`` and ``InvalidOAuthState`` are deliberately one error each: a caller
cannot tell a tampered value from an expired or replayed one, so neither can whoever
sent it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONFLICT",
    "FORBIDDEN",
    "GITHUB_BAD_CLIENT",
    "GITHUB_BAD_CODE",
    "GITHUB_BAD_RESPONSE",
    "GITHUB_DENIED",
    "GITHUB_NOT_CONFIGURED",
    "GITHUB_OAUTH_ERROR",
    "GITHUB_REDIRECT_MISMATCH",
    "GITHUB_UNAUTHORIZED",
    "GITHUB_UNAVAILABLE",
    "INVALID_ARGUMENT",
    "LOGIN_NOT_CONFIGURED",
    "NOT_FOUND",
    "OAUTH_STATE_INVALID",
    "OIDC_BAD_CLIENT",
    "OIDC_BAD_CODE",
    "OIDC_BAD_RESPONSE",
    "OIDC_DENIED",
    "OIDC_ID_TOKEN_INVALID",
    "OIDC_NOT_CONFIGURED",
    "OIDC_OAUTH_ERROR",
    "OIDC_UNAVAILABLE",
    "ORG_NOT_FOUND",
    "SESSION_INVALID",
    "UNAUTHENTICATED",
    "AccountsError",
    "GitHubError",
    "InvalidOAuthState",
    "InvalidSession",
    "OIDCLoginError",
    "Unauthenticated",
]

SESSION_INVALID: Final = "PARSEC_SESSION_INVALID"
UNAUTHENTICATED: Final = "PARSEC_UNAUTHENTICATED"
"""No session cookie and no bearer, or a bearer that is not valid (any reason)."""
INVALID_ARGUMENT: Final = "PARSEC_INVALID_ARGUMENT"
"""A request body or parameter that does not fit the operation."""
ORG_NOT_FOUND: Final = "PARSEC_ORG_NOT_FOUND"
"""No such org, or the caller is not a member: the two are one answer."""
NOT_FOUND: Final = "PARSEC_NOT_FOUND"
"""No such member, invite, key… in the caller's org (or in another org)."""
FORBIDDEN: Final = "PARSEC_PERMISSION_DENIED"
"""The caller is in the org, but their role or the key's scopes do not allow this."""
CONFLICT: Final = "PARSEC_CONFLICT"
"""The change contradicts what exists (a slug taken, a member already there…)."""
OAUTH_STATE_INVALID: Final = "PARSEC_OAUTH_STATE_INVALID"

GITHUB_BAD_CODE: Final = "PARSEC_GITHUB_BAD_CODE"
"""The authorization code is unknown, expired or used (``bad_verification_code``)."""
GITHUB_BAD_CLIENT: Final = "PARSEC_GITHUB_BAD_CLIENT"
"""GitHub refused the client id or secret (``incorrect_client_credentials``):
a configuration error of this server."""
GITHUB_REDIRECT_MISMATCH: Final = "PARSEC_GITHUB_REDIRECT_MISMATCH"
"""The ``redirect_uri`` differs from the authorize request's or the app's."""
GITHUB_DENIED: Final = "PARSEC_GITHUB_DENIED"
"""The user declined on GitHub (``error=access_denied`` on the callback)."""
GITHUB_OAUTH_ERROR: Final = "PARSEC_GITHUB_OAUTH_ERROR"
"""Any other OAuth error GitHub answered."""
GITHUB_UNAUTHORIZED: Final = "PARSEC_GITHUB_UNAUTHORIZED"
"""GitHub's API refused the access token (401/403)."""
GITHUB_UNAVAILABLE: Final = "PARSEC_GITHUB_UNAVAILABLE"
"""GitHub could not be reached in time, or answered 5xx: temporary, retry later."""
GITHUB_NOT_CONFIGURED: Final = "PARSEC_GITHUB_NOT_CONFIGURED"
"""This server has no ``[accounts.github]``: GitHub login is not offered."""
GITHUB_BAD_RESPONSE: Final = "PARSEC_GITHUB_BAD_RESPONSE"
"""GitHub answered something unexpected: a status, not JSON, too large, a field missing."""

OIDC_BAD_CODE: Final = "PARSEC_OIDC_BAD_CODE"
"""The provider refused the authorization code (``invalid_grant``: unknown, expired,
used, or its PKCE verifier does not match)."""
OIDC_BAD_CLIENT: Final = "PARSEC_OIDC_BAD_CLIENT"
"""The provider refused the client id or secret (``invalid_client``): a configuration
error of this server."""
OIDC_DENIED: Final = "PARSEC_OIDC_DENIED"
"""The user declined at the provider (``error=access_denied`` on the callback)."""
OIDC_OAUTH_ERROR: Final = "PARSEC_OIDC_OAUTH_ERROR"
"""Any other OAuth error the provider answered."""
OIDC_ID_TOKEN_INVALID: Final = "PARSEC_OIDC_ID_TOKEN_INVALID"
"""The ID token does not verify: signature (an unknown key, another algorithm), ``iss``,
``aud``, ``exp``, ``iat``, ``nonce`` or ``sub``."""
OIDC_UNAVAILABLE: Final = "PARSEC_OIDC_UNAVAILABLE"
"""The provider could not be reached in time, or answered 5xx: temporary, retry later."""
OIDC_BAD_RESPONSE: Final = "PARSEC_OIDC_BAD_RESPONSE"
"""The provider answered something unexpected: a status, not JSON, too large, no
``id_token``."""
OIDC_NOT_CONFIGURED: Final = "PARSEC_OIDC_NOT_CONFIGURED"
"""This server has no ``[accounts.oidc]``: OpenID Connect login is not offered."""
LOGIN_NOT_CONFIGURED: Final = "PARSEC_LOGIN_NOT_CONFIGURED"
"""This server offers no login method at all (neither GitHub nor OpenID Connect)."""

# code -> the HTTP status a login route answers with
_HTTP_STATUS: Final[dict[str, int]] = {
    SESSION_INVALID: 401,
    UNAUTHENTICATED: 401,
    INVALID_ARGUMENT: 400,
    ORG_NOT_FOUND: 404,
    NOT_FOUND: 404,
    FORBIDDEN: 403,
    CONFLICT: 409,
    OAUTH_STATE_INVALID: 400,
    GITHUB_BAD_CODE: 400,
    GITHUB_REDIRECT_MISMATCH: 400,
    GITHUB_DENIED: 403,
    GITHUB_OAUTH_ERROR: 502,
    GITHUB_BAD_CLIENT: 502,
    GITHUB_UNAUTHORIZED: 502,
    GITHUB_UNAVAILABLE: 503,
    GITHUB_BAD_RESPONSE: 502,
    GITHUB_NOT_CONFIGURED: 404,
    OIDC_BAD_CODE: 400,
    OIDC_BAD_CLIENT: 502,
    OIDC_DENIED: 403,
    OIDC_OAUTH_ERROR: 502,
    OIDC_ID_TOKEN_INVALID: 502,
    OIDC_UNAVAILABLE: 503,
    OIDC_BAD_RESPONSE: 502,
    OIDC_NOT_CONFIGURED: 404,
    LOGIN_NOT_CONFIGURED: 404,
}


class AccountsError(Exception):
    """A login failure with a stable ``code`` and a secret-free ``message``."""

    code: str = "PARSEC_ACCOUNTS_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {message}")
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status a login route answers this error with."""
        return _HTTP_STATUS.get(self.code, 500)


class InvalidSession(AccountsError):
    """A session cookie that is malformed, tampered with, signed by another key or
    expired: one error for all, on purpose."""

    code = SESSION_INVALID

    def __init__(self) -> None:
        super().__init__("invalid session")


class Unauthenticated(AccountsError):
    """No credential at all, or a bearer that is malformed, unknown, expired, revoked
    or forged: one error for all, on purpose."""

    code = UNAUTHENTICATED

    def __init__(self, message: str = "log in, or send a valid bearer token") -> None:
        super().__init__(message)


class InvalidOAuthState(AccountsError):
    """An OAuth ``state`` that is malformed, forged, expired or already used: one error
    for all, on purpose."""

    code = OAUTH_STATE_INVALID

    def __init__(self) -> None:
        super().__init__("invalid or expired login state; start the login again")


class GitHubError(AccountsError):
    """GitHub refused, or answered what could not be read; ``code`` says which
    (``GITHUB_*``), ``temporary`` whether retrying later may succeed."""

    def __init__(self, code: str, message: str, *, temporary: bool = False) -> None:
        super().__init__(message, code=code)
        self.temporary = temporary


class OIDCLoginError(AccountsError):
    """The OpenID provider refused, answered what could not be read, or sent an ID token
    that does not verify; ``code`` says which (``OIDC_*``), ``temporary`` whether
    retrying later may succeed."""

    def __init__(self, code: str, message: str, *, temporary: bool = False) -> None:
        super().__init__(message, code=code)
        self.temporary = temporary
