"""The token broker's HTTP routes (:mod:`parsec.services.token_broker`), relative to
their mount point (``/parsec`` when Parsec serves them, any prefix in an embedder's app)::

    POST /token           {channels, ttl?}                      -> IssueResponse
    POST /token/delegate  {on_behalf_of, channels, lifetime_seconds?} -> IssueResponse
    POST /revoke          {token_id | user_id, reason?}         -> {"ok": true}

    IssueResponse: {token, token_id, expires_at, channels_granted, channels_denied?}

``ttl`` and ``lifetime_seconds`` are seconds; ``expires_at`` is RFC 3339 in UTC (Go's
``time.Time`` JSON); ``channels_denied`` (``[{channel, reason}]``) is left out when empty,
as the Go package's ``omitempty`` does. Unknown body fields are ignored (as Go's decoder).

Every route needs ``Authorization: Bearer <token>`` (with ``[accounts]``, a browser's
session cookie instead: :mod:`parsec.services.accounts_broker`). Errors are JSON
``{"error": "<message>", "code": "PARSEC_…"}``: 401 for a missing or malformed header or a
bearer the authenticator refuses (with ``WWW-Authenticate: Bearer``), 400 for a body that
is not JSON of the route's shape or a bad value, 403 for a refused delegation or revoke,
413 for a body over ``max_body`` bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from parsec.errors import ParsecError
from parsec.services.accounts_broker import SESSION_COOKIE, SessionAuthenticator
from parsec.services.token_broker import IssuedConnection, TokenBroker
from parsec.services.token_policy import Principal, Unauthenticated, rfc3339

__all__ = ["DEFAULT_MAX_BODY", "TokenBrokerApi"]

log = logging.getLogger("parsec.api")

_T = TypeVar("_T")
_Call = Callable[[Principal], Awaitable[Response]]

DEFAULT_MAX_BODY: Final = 64 * 1024
"""Largest request body the routes read (a request for 100 channels is a few KB)."""


class IssueReq(msgspec.Struct):
    channels: list[str]
    ttl: float | None = None


class DelegateReq(msgspec.Struct):
    on_behalf_of: str
    channels: list[str]
    lifetime_seconds: float | None = None


class RevokeReq(msgspec.Struct):
    token_id: str = ""
    user_id: str = ""
    reason: str = ""


class Denied(msgspec.Struct):
    channel: str
    reason: str


class IssueRes(msgspec.Struct, omit_defaults=True):
    token: str
    token_id: str
    expires_at: str
    channels_granted: list[str]
    channels_denied: list[Denied] = []


class ErrorRes(msgspec.Struct):
    error: str
    code: str


class _BodyTooLarge(Exception):
    pass


class TokenBrokerApi:
    """The routes of one :class:`TokenBroker`: :meth:`routes` to add to a router (under
    a prefix), :meth:`app` for an application of its own (``Mount("/auth", app=...)``)."""

    def __init__(self, broker: TokenBroker, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.broker = broker
        self.max_body = max_body

    def routes(self, prefix: str = "") -> list[Route]:
        """The three routes under ``prefix`` (``""``: relative, for a ``Mount``).

        Plain routes rather than a ``Mount``: a mount at ``/parsec`` would take every
        other ``/parsec/...`` path of the application (``/parsec/jwks.json``)."""
        base = prefix.rstrip("/")
        return [
            Route(f"{base}/token", self._issue, methods=["POST"]),
            Route(f"{base}/token/delegate", self._delegate, methods=["POST"]),
            Route(f"{base}/revoke", self._revoke, methods=["POST"]),
        ]

    def app(self) -> Starlette:
        """An application serving the routes at its root, to mount anywhere."""
        return Starlette(routes=self.routes())

    # --- routes ---------------------------------------------------------------------

    async def _issue(self, request: Request) -> Response:
        async def call(principal: Principal) -> Response:
            body = await self._body(request, IssueReq)
            issued = self.broker.issue_as(principal, body.channels, body.ttl, _remote(request))
            return _issued(issued)

        return await _handle(self.broker, request, call)

    async def _delegate(self, request: Request) -> Response:
        async def call(principal: Principal) -> Response:
            body = await self._body(request, DelegateReq)
            issued = await self.broker.delegate_as(
                principal, body.on_behalf_of, body.channels, body.lifetime_seconds, _remote(request)
            )
            return _issued(issued)

        return await _handle(self.broker, request, call)

    async def _revoke(self, request: Request) -> Response:
        async def call(principal: Principal) -> Response:
            body = await self._body(request, RevokeReq)
            await self.broker.revoke_as(
                principal, token_id=body.token_id, user_id=body.user_id, reason=body.reason
            )
            return Response(b'{"ok":true}', media_type="application/json")

        return await _handle(self.broker, request, call)

    async def _body(self, request: Request, shape: type[_T]) -> _T:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body:
                raise _BodyTooLarge
        try:
            return msgspec.json.decode(bytes(raw), type=shape)
        except msgspec.ValidationError as exc:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", f"invalid request body: {exc}") from None
        except msgspec.DecodeError:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "the body is not valid JSON") from None


async def _handle(broker: TokenBroker, request: Request, call: _Call) -> Response:
    """Authenticate the bearer (before the body is read), run ``call`` with the
    principal, and map failures to JSON errors."""
    try:
        return await call(await _principal(broker, request))
    except ParsecError as exc:
        return _error(exc)
    except _BodyTooLarge:
        return _error(ParsecError("PARSEC_PAYLOAD_TOO_LARGE", "the request body is too large"))
    except ClientDisconnect:
        return Response(status_code=400)


async def _principal(broker: TokenBroker, request: Request) -> Principal:
    """The caller: its bearer, else (with ``[accounts]``) its session cookie."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        return await broker.authenticate(bearer.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    sessions = broker.authenticator
    if cookie and isinstance(sessions, SessionAuthenticator):
        return await sessions.authenticate_session(cookie)
    raise Unauthenticated("an Authorization: Bearer <token> header is required")


def _issued(issued: IssuedConnection) -> Response:
    body = IssueRes(
        token=issued.token,
        token_id=issued.token_id,
        expires_at=rfc3339(issued.expires_at),
        channels_granted=list(issued.granted),
        channels_denied=[Denied(d.channel, d.reason) for d in issued.denied],
    )
    return Response(msgspec.json.encode(body), media_type="application/json")


def _error(exc: ParsecError) -> Response:
    status = exc.http_status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = msgspec.json.encode(ErrorRes(exc.message, exc.code))
    if status >= 500:
        log.error("token broker request failed: %s", exc)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _remote(request: Request) -> str:
    return request.client.host if request.client is not None else ""
