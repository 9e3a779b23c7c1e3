"""Twirp's JSON protocol on FastAPI routes: how a request is read and a failure answered.

A route built with :func:`route_class` handles a call in this order:

1. unless the method is public, the bearer is checked before the body is read: a
   missing, malformed, expired, wrong-type or revoked token is ``401 unauthenticated``
   with ``WWW-Authenticate``, whatever the body (an identity provider's token signed by
   a key this node cannot fetch yet is ``503 unavailable``, to retry);
2. any Content-Type but ``application/json`` (or none) is ``400 malformed``; so is a body
   that is not JSON in UTF-8 (syntax, NaN, a BOM, a lone surrogate escape, a number out
   of range, nesting too deep), or that the caller stopped sending;
3. JSON that is not an object, or does not fit the method's message, is ``400
   invalid_argument`` (:func:`parsec.api.errors.invalid_body`);
4. the endpoint runs; a :class:`~parsec.errors.ParsecError` it raises is answered with
   the status and Twirp code of :data:`parsec.errors.CODES`, anything else is logged and
   answered ``500 internal`` with no detail.

Both 400s carry ``parsec_code`` ``PARSEC_INVALID_ARGUMENT`` and none is logged above
DEBUG. Every error is a Twirp error body ``{"code", "msg", "meta"}``
(:func:`twirp_error`); a path that names no method, or a method called with anything but
POST, is ``404 bad_route`` (:func:`bad_route`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import msgspec
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from parsec.api.errors import invalid_body, not_an_object, parsec_error
from parsec.auth.parsec_tokens import ParsecClaims
from parsec.errors import ParsecError
from parsec.observability import tracing

__all__ = [
    "JSON_MEDIA_TYPE",
    "Authenticate",
    "BadRoute",
    "bad_route",
    "bearer_claims",
    "claims_of",
    "error_response",
    "route_class",
    "twirp_error",
]

log = logging.getLogger("parsec.rpc")  # the name it had before the package was parsec.api

JSON_MEDIA_TYPE: Final = "application/json"
"""The one Content-Type a request may name (none at all is read as JSON too)."""

Authenticate = Callable[[str], Awaitable[ParsecClaims]]
"""Verifies a bearer token: its claims, or a ParsecError saying why not."""

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


# -- rendering ---------------------------------------------------------------------------------


def twirp_error(
    status: int, code: str, msg: str, meta: dict[str, str], headers: dict[str, str] | None = None
) -> JSONResponse:
    """A Twirp error response: ``{"code", "msg", "meta"}`` with ``status``."""
    return JSONResponse({"code": code, "msg": msg, "meta": meta}, status, headers)


def error_response(exc: ParsecError) -> JSONResponse:
    """``exc`` as Twirp renders it: its status and Twirp code, ``meta.parsec_code``."""
    return twirp_error(exc.http_status, exc.twirp_code, exc.message, {"parsec_code": exc.code})


def _unauthenticated(exc: ParsecError) -> JSONResponse:
    """401 whatever the code: the caller did not prove who it is."""
    return twirp_error(
        401,
        "unauthenticated",
        exc.message,
        {"parsec_code": exc.code},
        {"WWW-Authenticate": 'Bearer realm="parsec"'},
    )


def _malformed(msg: str) -> JSONResponse:
    """400 ``malformed``: the request could not be decoded (Twirp's code for that)."""
    return twirp_error(400, "malformed", msg, {"parsec_code": "PARSEC_INVALID_ARGUMENT"})


async def bad_route(request: Request) -> Response:
    """404 ``bad_route`` for a path under ``/twirp/`` that names no method, or a method
    called with anything but POST. Mounted after the service's routes."""
    route = f"{request.method} {request.url.path}"
    if request.method != "POST":
        msg = f"unsupported method {request.method} (only POST is allowed)"
    else:
        msg = f"no handler for path {request.url.path!r}"
    return twirp_error(404, "bad_route", msg, {"twirp_invalid_route": route})


class BadRoute:
    """:func:`bad_route` as an ASGI app: a route whose endpoint is not a function takes
    every HTTP method (TRACE, QUERY, WebDAV's, anything), so each gets Twirp's 404
    rather than Starlette's 405."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await bad_route(Request(scope, receive))
        await response(scope, receive, send)


# -- reading -----------------------------------------------------------------------------------


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ParsecError(
            "PARSEC_AUTH_MISSING", "this method needs 'Authorization: Bearer <management token>'"
        )
    return token


def claims_of(request: Request) -> ParsecClaims:
    """The management claims the route handler verified for this request."""
    claims: ParsecClaims = request.state.mgmt_claims
    return claims


async def _undecodable(request: Request) -> str | None:
    """Why the request's body cannot be read as a JSON message, or None when it can.

    Reads (and so caches) the body for FastAPI, which then parses it again into the
    method's message. msgspec is stricter than the ``json`` module FastAPI uses (no
    NaN, no BOM, no lone surrogates, no numbers out of range, bounded nesting), so
    every body that gets past here also parses there."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return (
                f"Content-Type {content_type[:100]!r} is not supported: send the request as "
                f"JSON with 'Content-Type: {JSON_MEDIA_TYPE}'"
            )
    body = await request.body()
    if not body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "request body is not valid UTF-8"
    try:
        request.state.json_body = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return "request body is not valid JSON"
    return None


def _invalid_body(exc: RequestValidationError) -> JSONResponse:
    """400 naming each broken field, never echoing input values: ``invalid_argument``,
    or ``malformed`` when FastAPI could not parse the JSON at all."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return _malformed("request body is not valid JSON")
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append((where, str(error.get("msg"))))
    return error_response(invalid_body(problems))


# -- the route ---------------------------------------------------------------------------------


async def bearer_claims(request: Request, authenticate: Authenticate) -> ParsecClaims | Response:
    """The claims of the request's ``Authorization: Bearer`` management token, or the
    error answer: 401 ``unauthenticated`` for a missing or bad token, 503 when the keys
    that verify it cannot be fetched yet (worth a retry)."""
    try:
        return await authenticate(_bearer(request))
    except ParsecError as exc:
        # keys not fetchable yet: "not now", worth a retry; else "who are you?"
        if exc.code == "PARSEC_AUTH_UNAVAILABLE":
            return error_response(exc)
        return _unauthenticated(exc)


async def _admit(request: Request, name: str, authenticate: Authenticate | None) -> Response | None:
    """Steps 1 to 3 of the module docstring: None when the endpoint may run, else the
    error answer. JSON that is not an object is refused here rather than left to
    FastAPI, whose older releases (0.132, the lowest this package allows) read a
    ``null`` body as no body at all."""
    if authenticate is not None:
        claims = await bearer_claims(request, authenticate)
        if not isinstance(claims, ParsecClaims):
            return claims
        request.state.mgmt_claims = claims
    problem = await _undecodable(request)
    if problem is not None:
        log.debug("ParsecService %s: malformed request: %s", name, problem)
        return _malformed(problem)
    refused = not_an_object(getattr(request.state, "json_body", {}))
    return None if refused is None else error_response(refused)


async def _answer(
    request: Request, name: str, call: Handler, authenticate: Authenticate | None
) -> Response:
    """One call of method ``name``, every failure answered as a Twirp error."""
    try:
        refused = await _admit(request, name, authenticate)
        return refused if refused is not None else await call(request)
    except RequestValidationError as exc:
        return _invalid_body(exc)
    except StarletteHTTPException as exc:  # FastAPI could not read the body
        log.debug("ParsecService %s: unreadable body: %s", name, exc.detail)
        return _malformed(str(exc.detail))
    except ClientDisconnect:  # the caller left mid-body: nobody reads this
        return _malformed("the client disconnected before sending the body")
    except Exception as exc:
        if not isinstance(exc, ParsecError):
            log.exception("ParsecService %s failed", name)
        return error_response(parsec_error(exc))


def route_class(authenticate: Authenticate, public: frozenset[str]) -> type[APIRoute]:
    """An APIRoute whose handler speaks Twirp (the module docstring): authenticate with
    ``authenticate`` unless the route's name is in ``public``, then let FastAPI parse
    the body and call the endpoint."""

    class TwirpRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            call = super().get_route_handler()
            name = self.name
            check = None if name in public else authenticate

            span_name = f"parsec.ParsecService/{name}"

            async def handle(request: Request) -> Response:
                with tracing.tracer().span(span_name, {"rpc.method": name}):
                    return await _answer(request, name, call, check)

            return handle

    return TwirpRoute
