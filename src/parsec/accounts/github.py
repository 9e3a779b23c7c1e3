"""A small GitHub OAuth client (OAuth app web flow) over httpx.

Three steps, in the order a login makes them:

1. :meth:`GitHubOAuth.authorize_url_for` — where to send the browser: the authorize URL
   with ``client_id``, ``redirect_uri``, ``scope=read:user user:email`` and ``state``.
2. :meth:`GitHubOAuth.exchange` — the callback's ``code`` for an access token (form
   POST to the token URL, ``Accept: application/json``). GitHub answers a refusal with
   200 and ``{"error": "bad_verification_code", …}``; that becomes a
   :class:`~parsec.accounts.errors.GitHubError` with a stable code.
3. :meth:`GitHubOAuth.user` — who the token belongs to (``GET user_url``), with the
   primary verified address of ``GET user_url/emails`` when the profile shows none.

Failures are all :class:`~parsec.accounts.errors.GitHubError`, ``code`` one of:

==================================  ===============================================
``PARSEC_GITHUB_BAD_CODE``          code unknown, expired or used
``PARSEC_GITHUB_BAD_CLIENT``        client id or secret refused (configuration)
``PARSEC_GITHUB_REDIRECT_MISMATCH`` ``redirect_uri`` not the authorize request's
``PARSEC_GITHUB_DENIED``            the user declined (:func:`callback_error`)
``PARSEC_GITHUB_OAUTH_ERROR``       any other OAuth error GitHub answered
``PARSEC_GITHUB_UNAUTHORIZED``      the API refused the token (401, 403)
``PARSEC_GITHUB_UNAVAILABLE``       timeout, connection failure, 5xx (``temporary``)
``PARSEC_GITHUB_BAD_RESPONSE``      another status, not JSON, too large, field missing
==================================  ===============================================

Messages name the endpoint and what went wrong, never the client secret, the code,
the access token, or text GitHub sent (only its error code, when it is a plain word).

Redirects are not followed (a token request is never re-sent elsewhere). It is an
async context manager; ``aclose`` is idempotent and closes the HTTP client only when
it made it, never one that was given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import httpx
import msgspec

from parsec.accounts.errors import (
    GITHUB_BAD_CLIENT,
    GITHUB_BAD_CODE,
    GITHUB_BAD_RESPONSE,
    GITHUB_DENIED,
    GITHUB_OAUTH_ERROR,
    GITHUB_REDIRECT_MISMATCH,
    GITHUB_UNAUTHORIZED,
    GITHUB_UNAVAILABLE,
    GitHubError,
)
from parsec.accounts.provider_http import fetch

__all__ = [
    "AUTHORIZE_URL",
    "SCOPE",
    "TOKEN_URL",
    "USER_URL",
    "GitHubOAuth",
    "GitHubUser",
    "callback_error",
]

AUTHORIZE_URL: Final = "https://github.com/login/oauth/authorize"
TOKEN_URL: Final = "https://github.com/login/oauth/access_token"
USER_URL: Final = "https://api.github.com/user"
SCOPE: Final = "read:user user:email"
DEFAULT_TIMEOUT: Final = 10.0
MAX_BYTES: Final = 1024 * 1024
USER_AGENT: Final = "parsec-accounts"
API_VERSION: Final = "2022-11-28"

_OAUTH_ERRORS: Final[dict[str, str]] = {
    "bad_verification_code": GITHUB_BAD_CODE,
    "incorrect_client_credentials": GITHUB_BAD_CLIENT,
    "redirect_uri_mismatch": GITHUB_REDIRECT_MISMATCH,
    "access_denied": GITHUB_DENIED,
}
_PLAIN_WORD: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True, slots=True)
class GitHubUser:
    """A GitHub account, as its access token sees it."""

    id: int
    """GitHub's numeric id: stable, unlike the login (users can rename)."""
    login: str
    name: str | None
    email: str | None
    """The profile's public address, else the primary verified one, else None."""


def _error_word(value: object) -> str:
    """GitHub's error code when it is a plain word, never free text."""
    return value if isinstance(value, str) and _PLAIN_WORD.fullmatch(value) else "unknown"


def callback_error(error: str | None) -> GitHubError:
    """The error for a callback GitHub redirected with ``?error=…`` instead of a code
    (``access_denied``: the user declined)."""
    word = _error_word(error)
    code = _OAUTH_ERRORS.get(word, GITHUB_OAUTH_ERROR)
    if code == GITHUB_DENIED:
        return GitHubError(code, "the GitHub login was declined")
    return GitHubError(code, f"GitHub did not authorize the login ({word})")


class GitHubOAuth:
    """GitHub's OAuth endpoints for one OAuth app (``client_id``, ``client_secret``).

    The URLs default to GitHub's; tests point them at a local fake. ``emails_url``
    defaults to ``user_url + "/emails"``. ``client`` is used as given (and left open);
    without one, an httpx client with ``timeout`` seconds is made and closed by
    :meth:`aclose`.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        authorize_url: str = AUTHORIZE_URL,
        token_url: str = TOKEN_URL,
        user_url: str = USER_URL,
        emails_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("[accounts.github] client_id and client_secret are required")
        urls = {"authorize_url": authorize_url, "token_url": token_url, "user_url": user_url}
        if emails_url is not None:
            urls["emails_url"] = emails_url
        for name, url in urls.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"[accounts.github] {name} must be an http(s) URL")
        self.client_id = client_id
        self._client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.user_url = user_url
        self.emails_url = emails_url or user_url.rstrip("/") + "/emails"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"GitHubOAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    async def __aenter__(self) -> GitHubOAuth:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client made here (never a given one). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    def authorize_url_for(self, state: str, redirect_uri: str) -> str:
        """The URL to send the browser to: GitHub asks the user, then redirects to
        ``redirect_uri`` with ``code`` and ``state`` (or ``error``)."""
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": state,
            }
        )
        separator = "&" if urlsplit(self.authorize_url).query else "?"
        return f"{self.authorize_url}{separator}{query}"

    async def exchange(self, code: str, redirect_uri: str) -> str:
        """The access token for the callback's ``code`` (``redirect_uri`` must be the
        one of the authorize request).

        Raises:
            GitHubError: GitHub refused (bad code, client, redirect URI…), could not be
                reached, or answered what is not a token.
        """
        if not code:
            raise GitHubError(GITHUB_BAD_CODE, "the callback carries no code")
        form = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        status, body = await self._call("token", "POST", self.token_url, headers, form)
        document = _json(body)
        if isinstance(document, dict) and "error" in document:
            word = _error_word(document["error"])
            raise GitHubError(
                _OAUTH_ERRORS.get(word, GITHUB_OAUTH_ERROR),
                f"GitHub refused the code exchange ({word})",
            )
        if status != 200:
            raise GitHubError(
                GITHUB_BAD_RESPONSE, f"GitHub's token endpoint answered HTTP {status}"
            )
        if document is None:
            raise GitHubError(GITHUB_BAD_RESPONSE, "GitHub's token endpoint answered no JSON")
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise GitHubError(
                GITHUB_BAD_RESPONSE, "GitHub's token endpoint answered no access_token"
            )
        return token

    async def user(self, access_token: str) -> GitHubUser:
        """The GitHub account of ``access_token``: id, login, name, and an email (the
        profile's, else the primary verified address, else None).

        Raises:
            GitHubError: the token was refused, GitHub could not be reached, or the
                answer lacks a field.
        """
        profile = await self._api("user", self.user_url, access_token)
        if not isinstance(profile, dict):
            raise GitHubError(GITHUB_BAD_RESPONSE, "GitHub's user endpoint answered no object")
        user_id, login = profile.get("id"), profile.get("login")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise GitHubError(GITHUB_BAD_RESPONSE, "GitHub's user has no numeric id")
        if not isinstance(login, str) or not login:
            raise GitHubError(GITHUB_BAD_RESPONSE, "GitHub's user has no login")
        name, email = _optional(profile.get("name")), _optional(profile.get("email"))
        if email is None:
            email = _primary_verified(await self._api("emails", self.emails_url, access_token))
        return GitHubUser(id=user_id, login=login, name=name, email=email)

    async def _api(self, what: str, url: str, access_token: str) -> Any:
        if not access_token:
            raise GitHubError(GITHUB_UNAUTHORIZED, "no GitHub access token")
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {access_token}",
            "User-Agent": USER_AGENT,
            "X-GitHub-Api-Version": API_VERSION,
        }
        status, body = await self._call(what, "GET", url, headers, None)
        if status in (401, 403):
            raise GitHubError(
                GITHUB_UNAUTHORIZED, f"GitHub's {what} endpoint refused the token (HTTP {status})"
            )
        if status != 200:
            raise GitHubError(
                GITHUB_BAD_RESPONSE, f"GitHub's {what} endpoint answered HTTP {status}"
            )
        document = _json(body)
        if document is None:
            raise GitHubError(GITHUB_BAD_RESPONSE, f"GitHub's {what} endpoint answered no JSON")
        return document

    async def _call(
        self,
        what: str,
        method: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        """One request: its status and body (at most ``max_bytes``); 5xx, a timeout or
        a transport failure is ``GITHUB_UNAVAILABLE``."""
        if self._closed:
            raise RuntimeError("this GitHubOAuth is closed")
        endpoint = f"GitHub's {what} endpoint ({_host(url)})"
        errors = (
            lambda message: GitHubError(GITHUB_UNAVAILABLE, message, temporary=True),
            lambda message: GitHubError(GITHUB_BAD_RESPONSE, message),
        )
        return await fetch(
            self._client,
            method,
            url,
            endpoint=endpoint,
            max_bytes=self.max_bytes,
            errors=errors,
            headers=headers,
            data=form,
        )


def _host(url: str) -> str:
    """``host[:port]`` of ``url``: never its user info, path or query."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or '?'}{f':{port}' if port else ''}"


def _json(body: bytes) -> Any:
    """``body`` decoded, or None when it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _primary_verified(emails: Any) -> str | None:
    if not isinstance(emails, list):
        raise GitHubError(GITHUB_BAD_RESPONSE, "GitHub's emails endpoint answered no list")
    for entry in emails:
        if (
            isinstance(entry, dict)
            and entry.get("primary") is True
            and entry.get("verified") is True
            and isinstance(entry.get("email"), str)
            and entry["email"]
        ):
            return str(entry["email"])
    return None
