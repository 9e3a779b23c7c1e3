"""A small OpenID provider for tests, shaped like a Keycloak realm, served by uvicorn on
a real loopback port in a thread of its own (so a ``parsec serve`` process, or a test
that blocks its event loop, can reach it).

Routes (``<issuer>`` is ``http://127.0.0.1:<port>/realms/<realm>``)::

    GET  <issuer>/.well-known/openid-configuration       issuer, jwks_uri, endpoints, …
    GET  <issuer>/protocol/openid-connect/certs          the JWKS (counted: ``jwks_requests``)
    POST <issuer>/protocol/openid-connect/auth/device    device authorization (RFC 8628)
    GET  <issuer>/protocol/openid-connect/auth           authorization code + PKCE S256
    POST <issuer>/protocol/openid-connect/token          authorization_code, device_code,
                                                         refresh_token grants

Clients (``clients``): the public ``parsec-cli`` (:data:`PUBLIC_CLIENT`) and the
confidential ``parsec-ci`` (:data:`CONFIDENTIAL_CLIENT`, secret
:data:`CONFIDENTIAL_SECRET`, sent with HTTP Basic or in the form). Users log in as
``login_as`` (a username and its groups), approved at once by the authorization endpoint
unless ``deny_authorization``; a device grant stays pending until the test calls
:meth:`OIDCProvider.approve` or :meth:`OIDCProvider.deny` (or :meth:`OIDCProvider.expire`).
``slow_down_polls`` answers that many device polls ``slow_down``. Every token request's
grant type is recorded in ``token_requests`` (and handed to ``on_token_request``); ID
tokens live ``id_token_ttl`` seconds and refresh tokens rotate (a used one is refused
with ``invalid_grant``).
``discovery_overrides`` changes the discovery document (a None value removes a key).

Keys: one RSA key (RS256) at first; :meth:`OIDCProvider.rotate` adds a new key, makes it
the one that signs and, unless told to keep it, drops the old one from the JWKS, as a
Keycloak key rotation does. :meth:`OIDCProvider.access_token` mints Keycloak-shaped
access tokens. ``down`` makes the JWKS route answer 503, ``jwks_override`` serves any
document instead of the keys.

Built to grow: further endpoints (authorization code + PKCE, device flow, refresh) are
routes added in :meth:`OIDCProvider._routes` and listed in :meth:`OIDCProvider.discovery`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from parsec.testing import free_port

__all__ = [
    "CONFIDENTIAL_CLIENT",
    "CONFIDENTIAL_SECRET",
    "PUBLIC_CLIENT",
    "OIDCProvider",
    "SigningKey",
    "running_provider",
    "s256",
]

READY_TIMEOUT: Final = 10.0
CLIENT_ID: Final = "chat-web"
PUBLIC_CLIENT: Final = "parsec-cli"
CONFIDENTIAL_CLIENT: Final = "parsec-ci"
CONFIDENTIAL_SECRET: Final = "ci-secret:with/odd+chars"
DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "[::1]"})


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _OAuthError(Exception):
    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status)


@dataclass(slots=True)
class DeviceGrant:
    """One device authorization: pending until approved, denied or expired."""

    client_id: str
    user_code: str
    scope: str
    expires_at: float
    status: str = "pending"
    """``pending``, ``approved`` or ``denied``."""
    user: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """One authorization code, usable once."""

    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    nonce: str | None
    user: tuple[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    client_id: str
    scope: str
    user: tuple[str, tuple[str, ...]]


@dataclass(slots=True)
class _Flows:
    """The state of the login flows, cleared by ``reset``."""

    devices: dict[str, DeviceGrant] = field(default_factory=dict)
    """By device code."""
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the provider: its id, algorithm and private key."""

    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, alg: str = "RS256") -> SigningKey:
        kid = secrets.token_urlsafe(16)
        if alg == "ES256":
            return cls(kid, alg, ec.generate_private_key(ec.SECP256R1()))
        return cls(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: Mapping[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, "typ": "JWT", **header}
        return jwt.encode(dict(claims), self.private, algorithm=self.alg, headers=headers)


class OIDCProvider:
    """The provider's state and its Starlette app; serve it with :func:`running_provider`."""

    def __init__(self, *, realm: str = "parsec", audience: str = "account") -> None:
        self.realm = realm
        self.audience = audience
        self.base_url = ""
        """``http://127.0.0.1:<port>``, set once it is served."""
        self.keys: list[SigningKey] = [SigningKey.generate()]
        """Published keys; the last one signs."""
        self.jwks_requests = 0
        self.down = False
        self.jwks_override: bytes | None = None
        self.clients: dict[str, str | None] = {}
        """Registered clients: id -> secret (None for a public client)."""
        self.login_as: tuple[str, tuple[str, ...]] = ("alice", ())
        self.deny_authorization = False
        self.device_interval = 1
        self.device_ttl = 600
        self.slow_down_polls = 0
        self.id_token_ttl = 300
        self.discovery_overrides: dict[str, Any] = {}
        self.token_requests: list[str] = []
        self.on_token_request: Callable[[str], None] | None = None
        """Called with the grant type of each token request before it is answered."""
        self.device_polls: list[float] = []
        """When each device_code token request came (``time.monotonic()``)."""
        self.flows = _Flows()
        self._reset_flows()
        self.app = Starlette(routes=self._routes())

    def _reset_flows(self) -> None:
        self.clients = {PUBLIC_CLIENT: None, CONFIDENTIAL_CLIENT: CONFIDENTIAL_SECRET}
        self.login_as = ("alice", ("parsec-admins",))
        self.deny_authorization = False
        self.device_interval, self.device_ttl, self.slow_down_polls = 1, 600, 0
        self.id_token_ttl = 300
        self.discovery_overrides = {}
        self.token_requests, self.device_polls = [], []
        self.on_token_request = None
        self.flows = _Flows()

    def reset(self) -> None:
        """One fresh key, up, nothing counted, no override, no login state: as new, on
        the same port."""
        self.keys = [SigningKey.generate()]
        self.down, self.jwks_override, self.jwks_requests = False, None, 0
        self._reset_flows()

    # --- what a test reads ------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def active(self) -> SigningKey:
        return self.keys[-1]

    def discovery(self) -> dict[str, Any]:
        base = f"{self.issuer}/protocol/openid-connect"
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": f"{base}/auth",
            "device_authorization_endpoint": f"{base}/auth/device",
            "token_endpoint": f"{base}/token",
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.keys}),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
        }
        document.update(self.discovery_overrides)
        return {name: value for name, value in document.items() if value is not None}

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def device(self, user_code: str) -> DeviceGrant:
        """The device grant of ``user_code`` (KeyError when there is none)."""
        return next(g for g in self.flows.devices.values() if g.user_code == user_code)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    # --- what a test does -------------------------------------------------------

    def rotate(self, alg: str = "RS256", *, keep_old: bool = False) -> SigningKey:
        """Add a new key and make it the signing one; drop the others unless ``keep_old``."""
        key = SigningKey.generate(alg)
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def access_token(
        self,
        username: str = "alice",
        *,
        ttl: float = 300,
        roles: tuple[str, ...] = ("member",),
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        """A Keycloak-shaped access token for ``username``; ``claims`` add or replace
        claims (``iss``, ``aud``, ``channel``…), a None value removes one."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "exp": now + int(ttl),
            "iat": now,
            "auth_time": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.realm}/{username}")),
            "typ": "Bearer",
            "azp": CLIENT_ID,
            "sid": str(uuid.uuid4()),
            "acr": "1",
            "allowed-origins": ["http://localhost:3000"],
            "realm_access": {"roles": ["default-roles-" + self.realm, *roles]},
            "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
            "scope": "openid profile email",
            "email_verified": True,
            "name": username.title(),
            "preferred_username": username,
            "email": f"{username}@example.org",
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return (key or self.active).sign(payload)

    def approve(self, user_code: str, user: tuple[str, tuple[str, ...]] | None = None) -> None:
        """Approve the device grant of ``user_code`` as ``user`` (default ``login_as``)."""
        grant = self.device(user_code)
        grant.status, grant.user = "approved", user or self.login_as

    def deny(self, user_code: str) -> None:
        """Deny the device grant of ``user_code``: its next poll gets access_denied."""
        self.device(user_code).status = "denied"

    def expire(self, user_code: str) -> None:
        """Let the device grant of ``user_code`` expire: its next poll gets expired_token."""
        self.device(user_code).expires_at = 0.0

    def id_token(
        self,
        client_id: str,
        user: tuple[str, tuple[str, ...]] | None = None,
        *,
        ttl: float | None = None,
        nonce: str | None = None,
    ) -> str:
        """An ID token for ``user`` (default ``login_as``) issued to ``client_id``."""
        username, groups = user or self.login_as
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "azp": client_id,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.realm}/{username}")),
            "typ": "ID",
            "iat": now,
            "auth_time": now,
            "exp": now + int(self.id_token_ttl if ttl is None else ttl),
            "jti": str(uuid.uuid4()),
            "preferred_username": username,
            "email": f"{username}@example.org",
            "email_verified": True,
            "name": username.title(),
            "groups": list(groups),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return self.active.sign(claims)

    # --- the app ----------------------------------------------------------------

    def _routes(self) -> list[Route]:
        prefix = f"/realms/{self.realm}"
        base = f"{prefix}/protocol/openid-connect"
        return [
            Route(f"{prefix}/.well-known/openid-configuration", self._discovery),
            Route(f"{base}/certs", self._certs),
            Route(f"{base}/auth/device", self._device_authorization, methods=["POST"]),
            Route(f"{base}/auth", self._authorize, methods=["GET"]),
            Route(f"{base}/token", self._token, methods=["POST"]),
        ]

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(self.discovery())

    async def _certs(self, request: Request) -> Response:
        self.jwks_requests += 1
        if self.down:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        body = self.jwks_override or json.dumps(self.jwks()).encode()
        return Response(body, media_type="application/json")

    # --- login flows ------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str]:
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            raise _OAuthError("invalid_request", "the body must be form-encoded")
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    def _client(self, request: Request, form: Mapping[str, str]) -> str:
        """The authenticated client: HTTP Basic, client_secret in the form, or a public
        client's client_id alone."""
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            client_id, _, secret = (unquote(part) for part in raw.partition(":"))
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client_id not in self.clients:
            raise _OAuthError("invalid_client", f"unknown client {client_id!r}", 401)
        expected = self.clients[client_id]
        if (expected or "") != secret:
            raise _OAuthError("invalid_client", "bad client credentials", 401)
        if "client_id" in form and form["client_id"] != client_id:
            raise _OAuthError("invalid_client", "client_id does not match", 401)
        return client_id

    async def _device_authorization(self, request: Request) -> Response:
        try:
            form = await self._form(request)
            client_id = self._client(request, form)
        except _OAuthError as exc:
            return exc.response()
        device_code = secrets.token_urlsafe(24)
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "-".join("".join(secrets.choice(letters) for _ in range(4)) for _ in range(2))
        self.flows.devices[device_code] = DeviceGrant(
            client_id, user_code, form.get("scope", ""), time.time() + self.device_ttl
        )
        verification = f"{self.issuer}/device"
        complete = f"{verification}?{urlencode({'user_code': user_code})}"
        return JSONResponse(
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verification,
                "verification_uri_complete": complete,
                "expires_in": self.device_ttl,
                "interval": self.device_interval,
            }
        )

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if client_id not in self.clients:
            return Response(f"unknown client {client_id!r}", status_code=400)
        target = urlsplit(redirect_uri)
        if target.scheme != "http" or target.netloc.rpartition(":")[0] not in LOOPBACK_HOSTS:
            return Response(f"redirect_uri {redirect_uri!r} is not loopback", status_code=400)

        def back(**answer: str) -> Response:
            state = params.get("state")
            query = urlencode({**answer, **({"state": state} if state is not None else {})})
            return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if "openid" not in params.get("scope", "").split():
            return back(error="invalid_scope", error_description="the scope lacks openid")
        if self.deny_authorization:
            return back(error="access_denied", error_description="the user said no")
        code = secrets.token_urlsafe(24)
        self.flows.codes[code] = CodeGrant(
            client_id,
            redirect_uri,
            params["code_challenge"],
            params["scope"],
            params.get("nonce"),
            self.login_as,
        )
        return back(code=code)

    async def _token(self, request: Request) -> Response:
        try:
            form = await self._form(request)
            grant_type = form.get("grant_type", "")
            self.token_requests.append(grant_type)
            if self.on_token_request is not None:
                self.on_token_request(grant_type)
            client_id = self._client(request, form)
            if grant_type == "authorization_code":
                return self._code_grant(client_id, form)
            if grant_type == DEVICE_GRANT:
                return self._device_grant(client_id, form)
            if grant_type == "refresh_token":
                return self._refresh_grant(client_id, form)
            raise _OAuthError("unsupported_grant_type", f"grant type {grant_type!r}")
        except _OAuthError as exc:
            return exc.response()

    def _code_grant(self, client_id: str, form: Mapping[str, str]) -> Response:
        grant = self.flows.codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client_id:
            raise _OAuthError("invalid_grant", "unknown or used code")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise _OAuthError("invalid_grant", "redirect_uri does not match")
        if s256(form.get("code_verifier", "")) != grant.challenge:
            raise _OAuthError("invalid_grant", "PKCE verification failed")
        return self._tokens(client_id, grant.user, grant.scope, grant.nonce)

    def _device_grant(self, client_id: str, form: Mapping[str, str]) -> Response:
        self.device_polls.append(time.monotonic())
        device_code = form.get("device_code", "")
        grant = self.flows.devices.get(device_code)
        if grant is None or grant.client_id != client_id:
            raise _OAuthError("invalid_grant", "unknown device code")
        if time.time() >= grant.expires_at:
            raise _OAuthError("expired_token", "the device code expired")
        if self.slow_down_polls > 0:
            self.slow_down_polls -= 1
            raise _OAuthError("slow_down", "polled too often")
        if grant.status == "denied":
            raise _OAuthError("access_denied", "the user denied the request")
        if grant.status == "pending" or grant.user is None:
            raise _OAuthError("authorization_pending", "not approved yet")
        del self.flows.devices[device_code]
        return self._tokens(client_id, grant.user, grant.scope, None)

    def _refresh_grant(self, client_id: str, form: Mapping[str, str]) -> Response:
        grant = self.flows.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if grant is None or grant.client_id != client_id:
            raise _OAuthError("invalid_grant", "unknown or used refresh token")
        return self._tokens(client_id, grant.user, grant.scope, None)

    def _tokens(
        self, client_id: str, user: tuple[str, tuple[str, ...]], scope: str, nonce: str | None
    ) -> Response:
        body = self.issue(client_id, user, scope=scope, nonce=nonce)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def issue(
        self,
        client_id: str,
        user: tuple[str, tuple[str, ...]] | None = None,
        *,
        scope: str = "openid",
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """A token response for ``user`` (default ``login_as``), as the token endpoint
        answers one, its refresh token registered: a login without the flow."""
        user = user or self.login_as
        refresh_token = secrets.token_urlsafe(32)
        self.flows.refresh_tokens[refresh_token] = RefreshGrant(client_id, scope, user)
        return {
            "access_token": self.access_token(user[0], ttl=self.id_token_ttl, azp=client_id),
            "token_type": "Bearer",
            "expires_in": self.id_token_ttl,
            "refresh_token": refresh_token,
            "id_token": self.id_token(client_id, user, nonce=nonce),
            "scope": scope,
        }


@contextlib.contextmanager
def running_provider(provider: OIDCProvider | None = None) -> Iterator[OIDCProvider]:
    """Serve ``provider`` (a new one by default) on a free loopback port in a thread
    until the block ends."""
    provider = provider or OIDCProvider()
    port = free_port()
    config = uvicorn.Config(
        provider.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="oidc-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the OIDC provider did not start on port {port}")
        time.sleep(0.01)
    provider.base_url = f"http://127.0.0.1:{port}"
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT)
