"""Logging in at an OpenID provider from a terminal: discovery, the device flow
(RFC 8628), the authorization code flow with PKCE S256 on a loopback redirect (RFC 8252)
and the refresh of an ID token, as ``parsec login oidc`` and the management commands use
them.

::

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        provider = await discover(http, "https://sso.example.org/realms/acme")
        device = await start_device_flow(http, provider, OIDCClient("parsec-cli"), SCOPES)
        print(device.verification_uri_complete)
        tokens = await poll_device_flow(http, provider, client, device)

The ID token is the bearer: its signature is checked by the server that receives it, so
here it is read unverified (it came straight from the token endpoint, OpenID Connect
Core §3.1.3.7), but its ``iss``, ``aud`` and ``nonce`` must be the expected ones.

What it raises: :class:`LoginError` for a failure at run time (the provider cannot be
reached, answers something that is not OpenID, times out); its subclass
:class:`ProviderError` when the provider refused with an OAuth error (``access_denied``,
``invalid_grant``…). Messages never contain a token or a client secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import jwt

from parsec.client.credentials import StoredLogin

__all__ = [
    "DEFAULT_SCOPES",
    "DEVICE_GRANT",
    "HTTP_TIMEOUT",
    "DeviceCode",
    "LoginError",
    "OIDCClient",
    "Provider",
    "ProviderError",
    "Tokens",
    "browser_login",
    "discover",
    "poll_device_flow",
    "refresh",
    "start_device_flow",
    "stored_login",
]

DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPES: Final = ("openid", "email", "profile", "groups")
HTTP_TIMEOUT: Final = 10.0
"""Seconds one request to the provider may take."""
DEFAULT_INTERVAL: Final = 5
SLOW_DOWN_STEP: Final = 5
CALLBACK_PATH: Final = "/callback"


class LoginError(Exception):
    """A login failed at run time; the message says why."""


class ProviderError(LoginError):
    """The provider refused with an OAuth error (``error`` and its description)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class OIDCClient:
    """The OAuth client the CLI is registered as: public without a secret."""

    client_id: str
    client_secret: str | None = None

    def authenticate(self, form: dict[str, str]) -> httpx.BasicAuth | None:
        """Client authentication for a request to the provider: HTTP Basic with the
        form-encoded id and secret (RFC 6749 §2.3.1) for a confidential client, else
        ``client_id`` added to ``form``."""
        if self.client_secret:
            return httpx.BasicAuth(
                quote(self.client_id, safe=""), quote(self.client_secret, safe="")
            )
        form["client_id"] = self.client_id
        return None


@dataclass(frozen=True, slots=True)
class Provider:
    """What discovery tells about the provider."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    device_authorization_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    """A successful token response: the ID token, its claims, the refresh token."""

    id_token: str
    claims: Mapping[str, Any]
    refresh_token: str | None

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def username(self) -> str:
        """``preferred_username``, else ``email``, else the subject."""
        for claim in ("preferred_username", "email"):
            if isinstance(self.claims.get(claim), str) and self.claims[claim]:
                return str(self.claims[claim])
        return self.subject


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """A device authorization response (RFC 8628 §3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


# -- discovery --------------------------------------------------------------------------------


async def discover(http: httpx.AsyncClient, issuer: str) -> Provider:
    """The provider at ``issuer``, from its ``/.well-known/openid-configuration``, whose
    ``issuer`` must be ``issuer`` exactly."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the OpenID provider at {url}: {_reason(exc)}") from None
    if response.status_code != 200:
        raise LoginError(f"{url} answered HTTP {response.status_code}: is {issuer} an issuer?")
    document = _json_object(response, url)
    if document.get("issuer") != issuer:
        raise LoginError(
            f"the discovery document at {url} names the issuer {document.get('issuer')!r}, "
            f"not {issuer!r} (they must match exactly)"
        )
    endpoints: dict[str, str | None] = {}
    for name in ("token_endpoint", "authorization_endpoint", "device_authorization_endpoint"):
        value = document.get(name)
        if value is not None and not (isinstance(value, str) and _is_http_url(value)):
            raise LoginError(f"the discovery document at {url} has a malformed {name}")
        endpoints[name] = value
    token_endpoint = endpoints.pop("token_endpoint")
    if token_endpoint is None:
        raise LoginError(f"the discovery document at {url} has no token_endpoint")
    return Provider(issuer, token_endpoint, **endpoints)


# -- device flow ------------------------------------------------------------------------------


async def start_device_flow(
    http: httpx.AsyncClient, provider: Provider, client: OIDCClient, scopes: Sequence[str]
) -> DeviceCode:
    """Ask the provider's device endpoint for a user code."""
    url = provider.device_authorization_endpoint
    if url is None:
        raise LoginError(f"the OpenID provider {provider.issuer} has no device endpoint")
    form = {"scope": " ".join(scopes)}
    auth = client.authenticate(form)
    try:
        response = await http.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the device endpoint {url}: {_reason(exc)}") from None
    body = _token_endpoint_reply(response, url)
    try:
        return DeviceCode(
            device_code=_text(body, "device_code"),
            user_code=_text(body, "user_code"),
            verification_uri=_text(body, "verification_uri"),
            verification_uri_complete=body.get("verification_uri_complete") or None,
            expires_in=int(body.get("expires_in", 600)),
            interval=int(body.get("interval") or DEFAULT_INTERVAL),
        )
    except (KeyError, TypeError, ValueError):
        raise LoginError(f"the device endpoint {url} sent a malformed answer") from None


async def poll_device_flow(
    http: httpx.AsyncClient,
    provider: Provider,
    client: OIDCClient,
    device: DeviceCode,
) -> Tokens:
    """Poll the token endpoint every ``interval`` seconds (five more after each
    ``slow_down``) until the user approves (the tokens), denies or the code expires
    (LoginError). Bound the wait with ``asyncio.timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + device.expires_in
    interval = float(device.interval)
    while True:
        if loop.time() + interval > deadline:
            raise LoginError("the login code expired before it was approved")
        await asyncio.sleep(interval)
        form = {"grant_type": DEVICE_GRANT, "device_code": device.device_code}
        try:
            return await _fetch_tokens(http, provider, client, form)
        except ProviderError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if exc.error == "access_denied":
                raise LoginError("the login was denied at the OpenID provider") from None
            if exc.error == "expired_token":
                raise LoginError("the login code expired before it was approved") from None
            raise


# -- authorization code flow on a loopback redirect ------------------------------------------


async def browser_login(
    http: httpx.AsyncClient,
    provider: Provider,
    client: OIDCClient,
    scopes: Sequence[str],
    *,
    show: Callable[[str], None],
    host: str = "127.0.0.1",
) -> Tokens:
    """The authorization code flow with PKCE S256: listen on a free loopback port, hand
    the authorization URL to ``show`` (which prints it, opens a browser), wait for the
    browser to come back to ``/callback``, then exchange the code. The listener answers
    one callback and is closed on return. Bound the wait with ``asyncio.timeout``."""
    if provider.authorization_endpoint is None:
        raise LoginError(f"the OpenID provider {provider.issuer} has no authorization endpoint")
    verifier = secrets.token_urlsafe(64)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    callback = _Callback(state, answer)
    server = await asyncio.start_server(callback.handle, host, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://{host}:{port}{CALLBACK_PATH}"
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": _s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        show(f"{provider.authorization_endpoint}{separator}{query}")
        code = await answer
    finally:
        server.close()
        await server.wait_closed()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await _fetch_tokens(http, provider, client, form, nonce=nonce)


class _Callback:
    """The loopback listener's one job: read ``GET /callback?…``, answer the browser a
    small page, and settle ``answer`` with the code or the error."""

    def __init__(self, state: str, answer: asyncio.Future[str]) -> None:
        self.state = state
        self.answer = answer

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, page = await self._serve(reader)
            body = _PAGE.format(text=html.escape(page)).encode()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[str, str]:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HTTP_TIMEOUT)
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        parts = urlsplit(target)
        if method != "GET" or parts.path != CALLBACK_PATH or self.answer.done():
            return "404 Not Found", "Nothing here."
        params = dict(parse_qsl(parts.query))
        if params.get("state") != self.state:
            self.answer.set_exception(LoginError("the browser came back with a wrong state"))
            return "400 Bad Request", "Login failed: the state does not match."
        if "error" in params:
            error = ProviderError(params["error"], params.get("error_description", ""))
            self.answer.set_exception(error)
            return "200 OK", f"Login failed: {error}. You can close this tab."
        if not params.get("code"):
            self.answer.set_exception(LoginError("the browser came back without a code"))
            return "400 Bad Request", "Login failed: no code."
        self.answer.set_result(params["code"])
        return "200 OK", "You are logged in to Parsec. You can close this tab."


_PAGE: Final = (
    "<!doctype html><html><head><meta charset=utf-8><title>Parsec login</title></head>"
    "<body><p>{text}</p></body></html>"
)


# -- refresh ----------------------------------------------------------------------------------


def refresh(login: StoredLogin, *, timeout: float = HTTP_TIMEOUT) -> StoredLogin:
    """``login`` with a new ID token from its refresh token (and the new refresh token
    when the provider rotates it). Raises ProviderError when the provider refuses
    (``invalid_grant``: the login has ended), LoginError when there is no refresh token
    or the provider cannot be reached."""
    if not login.refresh_token:
        raise ProviderError("invalid_grant", "there is no refresh token")
    client = OIDCClient(login.client_id, login.client_secret)
    form = {"grant_type": "refresh_token", "refresh_token": login.refresh_token}
    auth = client.authenticate(form)
    url = login.token_endpoint
    try:
        with httpx.Client(timeout=timeout) as http:
            response = http.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the token endpoint {url}: {_reason(exc)}") from None
    tokens = _tokens(_token_endpoint_reply(response, url), login.issuer, client, None)
    provider = Provider(login.issuer, url)
    return stored_login(provider, client, tokens, refresh_token=login.refresh_token)


def stored_login(
    provider: Provider, client: OIDCClient, tokens: Tokens, *, refresh_token: str | None = None
) -> StoredLogin:
    """What to store of ``tokens``; ``refresh_token`` is kept when the provider sent no
    new one."""
    return StoredLogin(
        issuer=provider.issuer,
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint=provider.token_endpoint,
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token or refresh_token,
        expires_at=tokens.expires_at,
    )


# -- the token endpoint -----------------------------------------------------------------------


async def _fetch_tokens(
    http: httpx.AsyncClient,
    provider: Provider,
    client: OIDCClient,
    form: dict[str, str],
    *,
    nonce: str | None = None,
) -> Tokens:
    auth = client.authenticate(form)
    url = provider.token_endpoint
    try:
        response = await http.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the token endpoint {url}: {_reason(exc)}") from None
    return _tokens(_token_endpoint_reply(response, url), provider.issuer, client, nonce)


def _token_endpoint_reply(response: httpx.Response, url: str) -> dict[str, Any]:
    """The JSON object of a 200, else the ProviderError of an OAuth error reply."""
    if response.status_code == 200:
        return _json_object(response, url)
    if response.status_code in (400, 401, 403):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            description = body.get("error_description")
            raise ProviderError(body["error"], description if isinstance(description, str) else "")
    raise LoginError(f"{url} answered HTTP {response.status_code}")


def _tokens(body: Mapping[str, Any], issuer: str, client: OIDCClient, nonce: str | None) -> Tokens:
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise LoginError("the OpenID provider sent no ID token (is openid among the scopes?)")
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise LoginError("the OpenID provider sent an ID token that is not a JWT") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != issuer:
        raise LoginError(f"the ID token's issuer is {claims.get('iss')!r}, not {issuer!r}")
    if client.client_id not in audiences:
        raise LoginError(f"the ID token is not for the client {client.client_id!r}")
    if nonce is not None and claims.get("nonce") != nonce:
        raise LoginError("the ID token's nonce does not match the login's")
    if not isinstance(claims.get("exp"), int) or not isinstance(claims.get("sub"), str):
        raise LoginError("the ID token lacks an exp or sub claim")
    refresh_token = body.get("refresh_token")
    return Tokens(id_token, claims, refresh_token if isinstance(refresh_token, str) else None)


# -- helpers ----------------------------------------------------------------------------------


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _json_object(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginError(f"{url} did not answer a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _reason(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
