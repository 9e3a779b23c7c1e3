"""The OIDC bridge: the management API accepts tokens of the organisation's OpenID
provider (``[auth.oidc]``), as the Go Parsec's composite verifier does.

:class:`OIDCBridge` discovers the provider when it starts (its
``/.well-known/openid-configuration``, whose ``issuer`` must be the configured one
exactly; a provider that cannot be discovered stops the start, so a misconfigured
deployment fails loud) and keeps its signing keys in a
:class:`~parsec.auth.remote_jwks.RemoteJWKS` (cached by ``kid``, fetched again on an
unknown ``kid`` at most every 10 s, and hourly).

A token is the bridge's when its (unverified) ``iss`` is the provider's
(:meth:`OIDCBridge.issued`); Parsec's own tokens carry no ``iss``. Such a token is
verified (signature by a key of the provider, with that key's algorithm; ``iss``;
``aud`` holds the configured audience; ``exp`` present and not reached; ``nbf`` / ``iat``
not ahead) and mapped to the claims of a management token: its subject is the
``subject_claim``, its scopes the grants of the groups in ``scopes_claim``, in the
order configured. Deny grants win over allow grants (as in every Parsec scope list);
a token none of whose groups has a grant is refused.

Failures raise :class:`~parsec.errors.ParsecError`: ``PARSEC_AUTH_EXPIRED`` for an
expired token, ``PARSEC_AUTH_UNAVAILABLE`` for a ``kid`` still unknown because the keys
could not be fetched (the 10-second limit, or the provider is down: retry shortly),
``PARSEC_AUTH_DENIED`` (saying why) for any other.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import msgspec

from parsec.auth import idp_tokens, jws
from parsec.auth.claims import claim_at, strings_at
from parsec.auth.parsec_tokens import MGMT, ParsecClaims
from parsec.auth.remote_jwks import RemoteJWKS
from parsec.auth.scopes import Scope
from parsec.engine.tokens import TokenError, UnknownSigningKey
from parsec.errors import ParsecError

__all__ = [
    "DiscoveryError",
    "Grant",
    "OIDCBridge",
    "ProviderMetadata",
    "discover",
    "discovery_document",
]

log = logging.getLogger("parsec.auth.oidc")

_DENIED: Final = "PARSEC_AUTH_DENIED"
_EXPIRED: Final = "PARSEC_AUTH_EXPIRED"
_UNAVAILABLE: Final = "PARSEC_AUTH_UNAVAILABLE"
DISCOVERY_TIMEOUT: Final = 10.0
"""Seconds the discovery at start may take (the Go Parsec's)."""
MAX_DOCUMENT: Final = 256 * 1024
SKEW: Final = 30.0
"""Seconds a provider's clock may run ahead of ours (``nbf`` / ``iat``)."""


class DiscoveryError(Exception):
    """The provider could not be discovered; the message says why, ``setting`` which
    configuration key names the provider."""

    def __init__(self, message: str, *, setting: str = "auth.oidc.issuer") -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the bridge needs of the provider's discovery document."""

    issuer: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Members of ``group`` get ``scope`` (an allow or a deny scope)."""

    group: str
    scope: Scope


async def discover(issuer: str, client: httpx.AsyncClient) -> ProviderMetadata:
    """The metadata at ``<issuer>/.well-known/openid-configuration`` (OpenID Connect
    Discovery 1.0, §4), fetched within :data:`DISCOVERY_TIMEOUT` seconds.

    Raises:
        DiscoveryError: the document cannot be fetched (connection, timeout, status other
            than 200, larger than 256 KiB), is not a JSON object, names another issuer,
            or has no http(s) ``jwks_uri``.
    """
    document = await discovery_document(issuer, client)
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("http://", "https://")):
        raise DiscoveryError(f"GET {url}: the document has no http(s) jwks_uri")
    return ProviderMetadata(issuer, jwks_uri)


async def discovery_document(issuer: str, client: httpx.AsyncClient) -> dict[str, Any]:
    """The whole discovery document of ``issuer`` (a JSON object naming ``issuer``
    exactly), fetched as :func:`discover` does.

    Raises:
        DiscoveryError: as :func:`discover`, but for the ``jwks_uri`` check.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = await client.get(url, timeout=DISCOVERY_TIMEOUT)
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"GET {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise DiscoveryError(f"GET {url}: HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT:
        raise DiscoveryError(f"GET {url}: the document is larger than {MAX_DOCUMENT} bytes")
    try:
        document = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError):
        raise DiscoveryError(f"GET {url}: the document is not JSON") from None
    if not isinstance(document, dict):
        raise DiscoveryError(f"GET {url}: the document is not a JSON object")
    if document.get("issuer") != issuer:
        raise DiscoveryError(
            f"GET {url}: the document's issuer {document.get('issuer')!r} is not {issuer!r}"
        )
    return document


class OIDCBridge:
    """Management tokens from one OpenID provider (see the module).

    An async context manager: ``start`` discovers the provider and starts its keys,
    ``aclose`` (idempotent) stops them and closes the HTTP client made here (never one
    that was given).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        grants: Sequence[Grant],
        *,
        subject_claim: str = "sub",
        scopes_claim: str = "groups",
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or not audience or not subject_claim or not scopes_claim:
            raise ValueError("issuer, audience and the claims must not be empty")
        self.issuer = issuer
        self.audience = audience
        self.grants = tuple(grants)
        self.subject_claim = subject_claim
        self.scopes_claim = scopes_claim
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self.keys: RemoteJWKS | None = None
        """The provider's signing keys, once started."""
        self._closed = False

    async def start(self) -> None:
        """Discover the provider and fetch its keys.

        Raises:
            DiscoveryError: the provider cannot be discovered (see :func:`discover`).
            RuntimeError: started twice, or after ``aclose``.
        """
        if self.keys is not None or self._closed:
            raise RuntimeError("an OIDCBridge starts once")
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        metadata = await discover(self.issuer, self._client)
        self.keys = RemoteJWKS(metadata.jwks_uri, client=self._client)
        await self.keys.start()
        log.info("OIDC bridge: management tokens of %s accepted", self.issuer)

    async def aclose(self) -> None:
        """Stop the keys, close the HTTP client made here. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.keys is not None:
            await self.keys.aclose()
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> OIDCBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- tokens -----------------------------------------------------------------

    def issued(self, token: str) -> bool:
        """Whether ``token`` says it is the provider's (its ``iss``, unverified: this only
        picks the verifier). Never raises."""
        try:
            return jws.unverified_payload(token).get("iss") == self.issuer
        except TokenError:
            return False

    async def verify(self, token: str) -> ParsecClaims:
        """The management claims of a token of the provider (see the module).

        Raises:
            ParsecError: ``PARSEC_AUTH_EXPIRED`` once ``exp`` is reached;
                ``PARSEC_AUTH_UNAVAILABLE`` for a key that cannot be fetched yet;
                ``PARSEC_AUTH_DENIED`` for any other failure.
        """
        payload = await self._verified(token)
        now = self._clock()
        exp = _seconds(payload, "exp")
        if exp is None:
            raise _denied("the token has no exp")
        if now >= exp:
            raise ParsecError(_EXPIRED, "the identity provider's token has expired")
        for name in ("nbf", "iat"):
            moment = _seconds(payload, name)
            if moment is not None and moment > now + SKEW:
                raise _denied(f"the token's {name} is in the future")
        subject = claim_at(payload, self.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _denied(f"the token has no {self.subject_claim} claim (a string)")
        scopes = self.scopes_of(payload)
        if not scopes:
            raise _denied(
                f"no [auth.oidc] grant matches the groups ({self.scopes_claim}) of {subject!r}"
            )
        jti = payload.get("jti")
        iat = _seconds(payload, "iat")
        return ParsecClaims(
            sub=subject,
            typ=MGMT,
            chs=(),
            scopes=scopes,
            jti=jti if isinstance(jti, str) and jti else None,
            fid=None,
            iat=math.floor(now if iat is None else iat),
            exp=math.floor(exp),
            rl=None,
        )

    def scopes_of(self, claims: Mapping[str, object]) -> tuple[Scope, ...]:
        """The scopes the grants give the groups in ``claims`` (none for an unknown
        group), in the order the grants are configured."""
        groups = set(strings_at(claims, self.scopes_claim))
        return tuple(grant.scope for grant in self.grants if grant.group in groups)

    async def _verified(self, token: str) -> dict[str, Any]:
        """The payload of ``token`` once it is signed by a key of the provider and
        names its issuer and the audience."""
        keys = self.keys
        if keys is None:
            raise _denied("the OIDC bridge is not started")
        try:
            kid = jws.unverified_header(token).get("kid")
            if not isinstance(kid, str) or not kid:
                raise _denied("the token's header has no kid")
            payload = await self._signed(token, kid, keys)
        except TokenError as exc:
            raise _denied(str(exc)) from None
        if payload.get("iss") != self.issuer:
            raise _denied("the token's iss is not the configured issuer")
        aud = payload.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise _denied("the token's aud does not hold the configured audience")
        return payload

    @staticmethod
    async def _signed(token: str, kid: str, keys: RemoteJWKS) -> dict[str, Any]:
        """The payload of ``token`` signed by key ``kid``, the keys refetched once when
        they hold no such key (rate-limited)."""
        try:
            return idp_tokens.verify(token, kid, keys)
        except UnknownSigningKey:
            fetched = await keys.refresh()
        try:
            return idp_tokens.verify(token, kid, keys)
        except UnknownSigningKey:
            if not fetched:
                raise ParsecError(
                    _UNAVAILABLE,
                    "the token's signing key is not known yet and the provider's keys "
                    "cannot be fetched now; try again in a few seconds",
                ) from None
            raise _denied("the token is signed by a key the provider does not publish") from None


def _denied(why: str) -> ParsecError:
    return ParsecError(_DENIED, f"token rejected: {why}")


def _seconds(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _denied(f"the token's {name} is not a number of seconds")
    return float(value)
