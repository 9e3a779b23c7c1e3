"""Login with any OpenID Connect provider (``[accounts.oidc]``): the authorization code
flow with PKCE (S256) and a ``nonce``, over httpx.

Steps, in the order a login makes them:

1. :meth:`OIDCLogin.start` (once, when the service starts) — the provider's discovery
   document (:func:`parsec.auth.oidc.discovery_document`: its ``issuer`` must be the
   configured one exactly), its endpoints, and its signing keys
   (:class:`~parsec.auth.remote_jwks.RemoteJWKS`). A provider that cannot be discovered
   raises :class:`~parsec.auth.oidc.DiscoveryError` naming ``accounts.oidc.issuer``:
   ``parsec serve`` stops (exit 2).
2. :meth:`OIDCLogin.authorize_url_for` — where to send the browser, for one OAuth
   ``state`` (minted by :class:`~parsec.accounts.oauth_state.OAuthStates`).
3. :meth:`OIDCLogin.finish` — the callback's ``code`` exchanged for tokens, the ID token
   verified, the identity read from it.

**Nothing secret travels.** The PKCE ``code_verifier`` and the ``nonce`` are not stored
nor sent in the state: both are HMAC-SHA256 of the state under a key derived from the
session key (:meth:`OIDCLogin.verifier_for`, :meth:`OIDCLogin.nonce_for`). The state
comes back on the callback exactly as it left (it is one-time and signed: checked by
``OAuthStates`` first), so the callback derives the same verifier and nonce, while
whoever sees the state (the provider, the browser's history) cannot. The provider sees
only the verifier's S256 challenge and the nonce.

**The ID token** is verified as OpenID Connect Core §3.1.3.7 asks: signed by a key of
the provider's JWKS named by its ``kid``, with that key's own algorithm (never ``HS*``
nor ``none``; an unknown ``kid`` fetches the keys again, rate-limited); ``iss`` is the
issuer; ``aud`` holds the client id (and ``azp``, when present with several audiences,
is it); ``exp`` is not reached; ``iat`` is not ahead of this clock by more than
:data:`SKEW`; ``nonce`` is this login's; ``sub`` is a non-empty string.

Failures are :class:`~parsec.accounts.errors.OIDCLoginError` (``PARSEC_OIDC_*``, see
:mod:`parsec.accounts.errors`). Messages name the endpoint and what went wrong, never
the client secret, the code, a token, or text the provider sent (only its error code,
when it is a plain word). Redirects are not followed. ``aclose`` is idempotent and
closes the HTTP client only when it made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx
import msgspec

from parsec.accounts.errors import (
    OIDC_BAD_CLIENT,
    OIDC_BAD_CODE,
    OIDC_BAD_RESPONSE,
    OIDC_DENIED,
    OIDC_ID_TOKEN_INVALID,
    OIDC_OAUTH_ERROR,
    OIDC_UNAVAILABLE,
    OIDCLoginError,
)
from parsec.accounts.provider_http import fetch
from parsec.auth import idp_tokens, jws
from parsec.auth.claims import claim_at
from parsec.auth.oidc import DiscoveryError, discovery_document
from parsec.auth.remote_jwks import RemoteJWKS
from parsec.engine.tokens import TokenError, UnknownSigningKey

__all__ = [
    "DEFAULT_SCOPES",
    "SETTING",
    "SKEW",
    "OIDCIdentity",
    "OIDCLogin",
    "callback_error",
    "pkce_challenge",
]

SETTING: Final = "accounts.oidc.issuer"
"""The configuration key a discovery failure names."""
DEFAULT_SCOPES: Final = ("openid", "profile", "email")
DEFAULT_TIMEOUT: Final = 10.0
MAX_BYTES: Final = 1024 * 1024
SKEW: Final = 60.0
"""Seconds the provider's clock may run ahead of ours (``iat``)."""
MAX_SUBJECT: Final = 255
"""The longest ``sub`` kept (OpenID Connect Core §2 allows no more)."""
_KEY_SALT: Final = b"parsec.accounts.oidc-login"
_PLAIN_WORD: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_OAUTH_ERRORS: Final[dict[str, str]] = {
    "invalid_grant": OIDC_BAD_CODE,
    "invalid_client": OIDC_BAD_CLIENT,
    "unauthorized_client": OIDC_BAD_CLIENT,
    "access_denied": OIDC_DENIED,
}


@dataclass(frozen=True, slots=True)
class OIDCIdentity:
    """Who the verified ID token names."""

    subject: str
    """``sub``: stable and unique at the issuer."""
    username: str
    """The wanted username: the ``username_claim``, else the email's local part, else
    ``"user"`` (the directory makes it a free slug)."""
    email: str | None
    """The ``email`` claim, unless ``email_verified`` is false."""
    name: str | None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of ``verifier`` (RFC 7636 §4.2)."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def _error_word(value: object) -> str:
    """The provider's error code when it is a plain word, never free text."""
    return value if isinstance(value, str) and _PLAIN_WORD.fullmatch(value) else "unknown"


def callback_error(error: str | None) -> OIDCLoginError:
    """The error for a callback the provider redirected with ``?error=…`` instead of a
    code (``access_denied``: the user declined)."""
    word = _error_word(error)
    if _OAUTH_ERRORS.get(word) == OIDC_DENIED:
        return OIDCLoginError(OIDC_DENIED, "the login was declined at the OpenID provider")
    return OIDCLoginError(OIDC_OAUTH_ERROR, f"the OpenID provider did not authorize ({word})")


class OIDCLogin:
    """The login client of one OpenID provider (see the module).

    ``key`` is the session key: the HMAC key of the verifiers and nonces is derived
    from it (with a salt of its own), never the key itself. ``client`` is used as given and left
    open; without one, an httpx client is made and closed by :meth:`aclose`.

    Raises:
        ValueError: an empty issuer or client id, or scopes without ``openid``.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        key: bytes,
        client_secret: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        username_claim: str = "preferred_username",
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or not client_id or not username_claim:
            raise ValueError("[accounts.oidc] issuer, client_id and username_claim are required")
        if "openid" not in scopes:
            raise ValueError('[accounts.oidc] scopes must hold "openid"')
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = tuple(scopes)
        self.username_claim = username_claim
        self.timeout = timeout
        self._clock = clock
        self._hmac_key = hmac.new(key, _KEY_SALT, hashlib.sha256).digest()
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self.authorization_endpoint = ""
        self.token_endpoint = ""
        self.keys: RemoteJWKS | None = None
        """The provider's signing keys, once started."""
        self._closed = False

    def __repr__(self) -> str:
        return f"OIDCLogin(issuer={self.issuer!r}, client_id={self.client_id!r})"

    @property
    def provider(self) -> str:
        """The identity provider's name in the directory: ``oidc:<issuer>``."""
        return f"oidc:{self.issuer}"

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Discover the provider and fetch its keys.

        Raises:
            DiscoveryError: (``setting`` ``accounts.oidc.issuer``) the document cannot
                be fetched, names another issuer, or lacks an http(s)
                ``authorization_endpoint``, ``token_endpoint`` or ``jwks_uri``.
            RuntimeError: started twice, or after ``aclose``.
        """
        if self.keys is not None or self._closed:
            raise RuntimeError("an OIDCLogin starts once")
        try:
            document = await discovery_document(self.issuer, self._client)
        except DiscoveryError as exc:
            raise DiscoveryError(str(exc), setting=SETTING) from None
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise DiscoveryError(
                    f"{self.issuer}/.well-known/openid-configuration has no http(s) {name}",
                    setting=SETTING,
                )
            endpoints[name] = value
        self.authorization_endpoint = endpoints["authorization_endpoint"]
        self.token_endpoint = endpoints["token_endpoint"]
        self.keys = RemoteJWKS(endpoints["jwks_uri"], client=self._client)
        await self.keys.start()

    async def aclose(self) -> None:
        """Stop the keys, close the HTTP client made here. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.keys is not None:
            await self.keys.aclose()
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OIDCLogin:
        """Start; on failure close what was made, then raise."""
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the values bound to one state -------------------------------------------

    def verifier_for(self, state: str) -> str:
        """The PKCE ``code_verifier`` of the login of ``state``: 43 URL-safe characters
        (256 bits), unguessable without the session key."""
        return _b64(hmac.new(self._hmac_key, b"pkce\0" + state.encode(), hashlib.sha256).digest())

    def nonce_for(self, state: str) -> str:
        """The ID token ``nonce`` of the login of ``state``."""
        return _b64(hmac.new(self._hmac_key, b"nonce\0" + state.encode(), hashlib.sha256).digest())

    # --- the flow ---------------------------------------------------------------

    def authorize_url_for(self, state: str, redirect_uri: str) -> str:
        """The URL to send the browser to: the provider asks the user, then redirects to
        ``redirect_uri`` with ``code`` and ``state`` (or ``error``)."""
        if not self.authorization_endpoint:
            raise RuntimeError("the OIDCLogin is not started")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.scopes),
                "state": state,
                "nonce": self.nonce_for(state),
                "code_challenge": pkce_challenge(self.verifier_for(state)),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if urlsplit(self.authorization_endpoint).query else "?"
        return f"{self.authorization_endpoint}{separator}{query}"

    async def finish(self, code: str, state: str, redirect_uri: str) -> OIDCIdentity:
        """The identity of the login of ``state`` (already consumed by the caller):
        ``code`` exchanged, the ID token verified.

        Raises:
            OIDCLoginError: the provider refused the code or the client, could not be
                reached, answered no ID token, or one that does not verify.
        """
        id_token = await self.exchange(code, state, redirect_uri)
        claims = await self.verify(id_token, nonce=self.nonce_for(state))
        return self.identity_of(claims)

    async def exchange(self, code: str, state: str, redirect_uri: str) -> str:
        """The ID token for ``code`` (``grant_type=authorization_code`` with the
        state's PKCE verifier; HTTP Basic with the secret when there is one, else
        ``client_id`` in the form)."""
        if not code:
            raise OIDCLoginError(OIDC_BAD_CODE, "the callback carries no code")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": self.verifier_for(state),
        }
        headers = {"Accept": "application/json"}
        if self._client_secret is None:
            form["client_id"] = self.client_id
        else:  # client_secret_basic: each part form-urlencoded first (RFC 6749 §2.3.1)
            pair = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        status, body = await self._post(form, headers)
        document = _json(body)
        if isinstance(document, dict) and "error" in document and status != 200:
            word = _error_word(document["error"])
            raise OIDCLoginError(
                _OAUTH_ERRORS.get(word, OIDC_OAUTH_ERROR),
                f"the OpenID provider refused the code exchange ({word})",
            )
        if status != 200:
            raise OIDCLoginError(
                OIDC_BAD_RESPONSE, f"the provider's token endpoint answered HTTP {status}"
            )
        token = document.get("id_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise OIDCLoginError(
                OIDC_BAD_RESPONSE, "the provider's token endpoint answered no id_token"
            )
        return token

    async def verify(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The claims of ``id_token`` once it verifies (see the module).

        Raises:
            OIDCLoginError: ``PARSEC_OIDC_ID_TOKEN_INVALID``, saying which check failed.
        """
        keys = self.keys
        if keys is None:
            raise RuntimeError("the OIDCLogin is not started")
        try:
            kid = jws.unverified_header(id_token).get("kid")
            if not isinstance(kid, str) or not kid:
                raise _invalid("its header has no kid")
            claims = await _signed(id_token, kid, keys)
        except TokenError as exc:
            raise _invalid(f"its signature does not verify ({exc.code})") from None
        if claims.get("iss") != self.issuer:
            raise _invalid("its iss is not the issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            raise _invalid("its aud does not hold the client id")
        azp = claims.get("azp")
        if len(audiences) > 1 and azp is not None and azp != self.client_id:
            raise _invalid("its azp is not the client id")
        now = self._clock()
        exp, iat = _seconds(claims, "exp"), _seconds(claims, "iat")
        if now >= exp:
            raise _invalid("it has expired")
        if iat > now + SKEW:
            raise _invalid("its iat is in the future")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise _invalid("its nonce is not this login's")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT:
            raise _invalid(f"its sub is not a string of 1 to {MAX_SUBJECT} characters")
        return claims

    def identity_of(self, claims: dict[str, Any]) -> OIDCIdentity:
        """The identity of verified ``claims``: ``sub``, the wanted username, the email
        (unless ``email_verified`` is false) and the name."""
        email = _text(claims.get("email"))
        if claims.get("email_verified") is False:
            email = None
        username = _text(claim_at(claims, self.username_claim))
        if username is None and email is not None:
            username = _text(email.partition("@")[0])
        return OIDCIdentity(
            subject=str(claims["sub"]),
            username=username or "user",
            email=email,
            name=_text(claims.get("name")),
        )

    async def _post(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        """One token request: its status and body (at most :data:`MAX_BYTES`); 5xx, a
        timeout or a transport failure is ``PARSEC_OIDC_UNAVAILABLE``."""
        if self._closed:
            raise RuntimeError("this OIDCLogin is closed")
        url = self.token_endpoint
        host = urlsplit(url).netloc.rpartition("@")[2]  # never user info
        endpoint = f"the OpenID provider's token endpoint ({host})"
        errors = (
            lambda message: OIDCLoginError(OIDC_UNAVAILABLE, message, temporary=True),
            lambda message: OIDCLoginError(OIDC_BAD_RESPONSE, message),
        )
        return await fetch(
            self._client,
            "POST",
            url,
            endpoint=endpoint,
            max_bytes=MAX_BYTES,
            errors=errors,
            headers=headers,
            data=form,
            timeout=self.timeout,
        )


async def _signed(token: str, kid: str, keys: RemoteJWKS) -> dict[str, Any]:
    """The payload of ``token`` signed by key ``kid``; the keys fetched again once
    (rate-limited) when they hold no such key."""
    try:
        return idp_tokens.verify(token, kid, keys)
    except UnknownSigningKey:
        await keys.refresh()
    try:
        return idp_tokens.verify(token, kid, keys)
    except UnknownSigningKey:
        raise _invalid("it is signed by a key the provider does not publish") from None


def _invalid(why: str) -> OIDCLoginError:
    return OIDCLoginError(OIDC_ID_TOKEN_INVALID, f"the ID token is refused: {why}")


def _seconds(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"its {name} is missing or not a number of seconds")
    return float(value)


def _json(body: bytes) -> Any:
    """``body`` decoded, or None when it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
