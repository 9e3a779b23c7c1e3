"""``parsec.ParsecService``: the management API as Twirp-JSON routes.

::

    POST /twirp/parsec.ParsecService/<Method>     JSON body in, JSON body out

Every method except ``Manifest`` and ``RefreshToken`` needs ``Authorization: Bearer <mgmt
token>``. The bearer is checked before the body is read: a missing, malformed, expired,
wrong-type or revoked token is ``401 unauthenticated``, whatever the body. Then:

* channel methods (OpenPublic, CreatePrivate, GetChannel, DeleteChannel, Presence) need
  ``manage`` on the channel, Publish needs ``publish`` on it, and ListChannels lists only
  the channels the token may manage; CreatePrivate with allow scopes (which can grant
  more than the new channel) also needs an operator token;
* PublishOrSink needs ``publish`` on the channel;
* key methods, IssueMgmt, RevokeToken, RevokeUser and the dead-letter methods (DlqList,
  DlqCount, DlqDiscard, DlqReplay) need an operator token
  (:func:`parsec.auth.scopes.is_operator`);
* a token that lacks what a call needs gets ``403 permission_denied``.

Request bodies are JSON in UTF-8, sent as ``Content-Type: application/json`` (Twirp's
JSON encoding) or with no Content-Type at all; an empty body counts as ``{}``. After the
bearer check:

* any other Content-Type is ``400 malformed`` with a message naming ``application/json``
  (curl's default ``application/x-www-form-urlencoded`` included: a body is never read
  as JSON behind a type that says otherwise);
* a body that cannot be decoded — not UTF-8, not JSON (syntax, NaN, a BOM, a lone
  surrogate escape, a number out of range, nesting too deep) — is ``400 malformed``;
* JSON that does not fit the method's message is ``400 invalid_argument``; so is JSON
  that is not an object (``null``, an array, a string, a number, a boolean).

Both 400s carry ``parsec_code`` ``PARSEC_INVALID_ARGUMENT``, and none is logged above
DEBUG.

Errors are Twirp error bodies ``{"code", "msg", "meta": {"parsec_code"}}`` with the HTTP
status and Twirp code of :data:`parsec.errors.CODES`. An unknown method or a non-POST
request is ``404 bad_route``. DlqDiscard and DlqReplay of an
id the queue does not hold are ``404 not_found`` / ``PARSEC_SINK_DLQ_NOT_FOUND``. An
unexpected exception is logged and answered ``500 internal`` with no detail. Message
shapes are in :mod:`parsec.rpc.parsec_models`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import jwt
import msgspec
from fastapi import APIRouter, Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from fastapi.types import DecoratedCallable
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from parsec import descriptor
from parsec.auth.keyring import ACTIVE, RETIRED, VERIFY_ONLY, Key
from parsec.auth.parsec_tokens import ParsecClaims
from parsec.auth.scopes import MANAGE, PUBLISH, Scope, is_operator
from parsec.channels.names import require_name
from parsec.channels.store import Channel, ChannelState
from parsec.errors import ParsecError
from parsec.rpc.parsec_models import (
    ChannelRef,
    ChannelResponse,
    ChannelStateName,
    ChannelSummary,
    CreatePrivateRequest,
    Credentials,
    DlqCountRequest,
    DlqCountResponse,
    DlqItem,
    DlqListRequest,
    DlqListResponse,
    DlqRef,
    DlqReplayResponse,
    Empty,
    GenerateKeyRequest,
    IssueMgmtRequest,
    IssueMgmtResponse,
    JSONPayload,
    KeyRef,
    KeyRole,
    KeySummary,
    ListChannelsResponse,
    ListKeysResponse,
    OpenPublicRequest,
    PresenceResponse,
    PublishOrSinkRequest,
    PublishOrSinkResponse,
    PublishRequest,
    PublishResponse,
    RefreshTokenRequest,
    RefreshTokenResponse,
    RevokeTokenRequest,
    RevokeUserRequest,
    ScopeSpec,
    TwirpError,
)
from parsec.sinks.base import Message
from parsec.sinks.dlq import DLQItem

if TYPE_CHECKING:
    from parsec._facade import Parsec

__all__ = ["PREFIX", "PUBLIC_METHODS", "bad_route", "service_router", "twirp_error"]

PREFIX: Final = "/twirp/parsec.ParsecService/"
PUBLIC_METHODS: Final = frozenset({"Manifest", "RefreshToken"})
"""The methods callable without a management bearer."""

DEFAULT_MGMT_SUBJECT: Final = "operator"
DEFAULT_DLQ_LIMIT: Final = 50
_ALGORITHM_NAMES: Final = {
    "hs256": "HS256",
    "rs256": "RS256",
    "es256": "ES256",
    "es384": "ES384",
    "eddsa": "EdDSA",
    "ed25519": "EdDSA",
}

log = logging.getLogger("parsec.rpc")

BEARER: Final = HTTPBearer(
    scheme_name="ManagementToken",
    description="A Parsec management token (typ mgmt), as `parsec tokens mgmt` prints it.",
    auto_error=False,
)
"""The security scheme the OpenAPI document names. It only documents the header: the
route handler authenticates before FastAPI reads the body (see :func:`service_router`)."""

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_STATUSES: Final[dict[int, str]] = {
    400: "`malformed`: the body is not JSON in UTF-8 sent as application/json; "
    "`invalid_argument`: it does not fit the method's message, or a value breaks a rule "
    "(PARSEC_INVALID_ARGUMENT, PARSEC_CHANNEL_INVALID, PARSEC_CHANNEL_TTL_EXCEEDS_MAX).",
    401: "`unauthenticated`: no management token, or one that is malformed, expired, of "
    "another type or revoked (PARSEC_AUTH_*).",
    403: "`permission_denied`: the token may not do this (PARSEC_AUTH_DENIED).",
    404: "`not_found`: what the request names does not exist (PARSEC_*_NOT_FOUND).",
    409: "`already_exists`: the channel exists (PARSEC_CHANNEL_EXISTS).",
    412: "`failed_precondition`: the channel is closed, or the key is the active one "
    "(PARSEC_CHANNEL_CLOSED, PARSEC_KEY_ACTIVE).",
    413: "`invalid_argument`: the body, or the payload in it, is over the server's limit "
    "(PARSEC_PAYLOAD_TOO_LARGE).",
    500: "`internal`: the server failed (PARSEC_INTERNAL, PARSEC_BROKER_INTERNAL, "
    "PARSEC_SINK_CONFIG_INVALID); the message says nothing more.",
    503: "`unavailable`: the broker or a sink cannot be reached now (PARSEC_BROKER_NOT_READY, "
    "PARSEC_SINK_UNAVAILABLE, PARSEC_SINK_DLQ_OVERFLOW).",
}
"""What each error status of ParsecService means, for the OpenAPI document."""

_EVERY_METHOD_STATUSES: Final = (400, 413, 500, 503)
_METHOD_STATUSES: Final[dict[str, tuple[int, ...]]] = {
    "CreatePrivate": (409,),
    "GetChannel": (404,),
    "DeleteChannel": (404,),
    "Publish": (404, 412),
    "PublishOrSink": (404, 412),
    "RefreshToken": (401, 403, 404, 412),
    "PromoteKey": (404,),
    "RetireKey": (404, 412),
    "DlqDiscard": (404,),
    "DlqReplay": (404,),
}
"""The error statuses a method has beyond every method's (and, unless it is public, 401
and 403)."""


def _error_responses(name: str) -> dict[int | str, dict[str, Any]]:
    """The documented error replies of method ``name``: a Twirp error body for each
    status it can answer. A protected method's 401 carries ``WWW-Authenticate``."""
    statuses = set(_EVERY_METHOD_STATUSES) | set(_METHOD_STATUSES.get(name, ()))
    if name not in PUBLIC_METHODS:
        statuses |= {401, 403}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(statuses):
        responses[status] = {"model": TwirpError, "description": _STATUSES[status]}
        if status == 401 and name not in PUBLIC_METHODS:
            responses[status]["headers"] = {
                "WWW-Authenticate": {
                    "description": 'Bearer realm="parsec"',
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
    return responses


# What an empty request body stands for, in the methods whose fields are all optional.
_EMPTY: Final = Empty()
_ISSUE: Final = IssueMgmtRequest()
_GENERATE: Final = GenerateKeyRequest()
_DLQ_LIST: Final = DlqListRequest()
_DLQ_COUNT: Final = DlqCountRequest()

_STATES: Final[dict[ChannelState, ChannelStateName]] = {
    ChannelState.OPEN: "open",
    ChannelState.CLOSED: "closed",
    ChannelState.DELETED: "deleted",
}
_ROLES: Final[dict[str, KeyRole]] = {
    ACTIVE: "active",
    VERIFY_ONLY: "verify-only",
    RETIRED: "retired",
}


# -- errors -----------------------------------------------------------------------------------


def twirp_error(
    status: int, code: str, msg: str, meta: dict[str, str], headers: dict[str, str] | None = None
) -> JSONResponse:
    """A Twirp error response: ``{"code", "msg", "meta"}`` with ``status``."""
    return JSONResponse({"code": code, "msg": msg, "meta": meta}, status, headers)


def _error(exc: ParsecError) -> JSONResponse:
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


JSON_MEDIA_TYPE: Final = "application/json"
"""The one Content-Type a request may name (none at all is read as JSON too)."""


def _malformed(msg: str) -> JSONResponse:
    """400 ``malformed``: the request could not be decoded (Twirp's code for that)."""
    return twirp_error(400, "malformed", msg, {"parsec_code": "PARSEC_INVALID_ARGUMENT"})


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


_JSON_KINDS: Final[dict[type, str]] = {
    type(None): "null",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _not_an_object(request: Request) -> JSONResponse | None:
    """400 ``invalid_argument`` when the decoded body is JSON but not an object. Every
    request message is an object. Checked here rather than left to FastAPI, whose older
    releases (0.132, the lowest this package allows) read a ``null`` body as no body at
    all and so answered a method whose fields are all optional with its defaults."""
    value = getattr(request.state, "json_body", {})
    if isinstance(value, dict):
        return None
    kind = _JSON_KINDS.get(type(value), "not an object")
    return _error(
        ParsecError(
            "PARSEC_INVALID_ARGUMENT",
            f"invalid request body: a request message is a JSON object, not {kind}",
        )
    )


def _invalid_body(exc: RequestValidationError) -> JSONResponse:
    """400 naming each broken field, never echoing input values: ``invalid_argument``,
    or ``malformed`` when FastAPI could not parse the JSON at all."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return _malformed("request body is not valid JSON")
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return _error(
        ParsecError("PARSEC_INVALID_ARGUMENT", "invalid request body: " + "; ".join(problems))
    )


async def bad_route(request: Request) -> Response:
    """404 ``bad_route`` for a path under ``/twirp/`` that names no method, or a method
    called with anything but POST. Mounted after :func:`service_router`'s routes."""
    route = f"{request.method} {request.url.path}"
    if request.method != "POST":
        msg = f"unsupported method {request.method} (only POST is allowed)"
    else:
        msg = f"no handler for path {request.url.path!r}"
    return twirp_error(404, "bad_route", msg, {"twirp_invalid_route": route})


# -- authentication and authorisation ---------------------------------------------------------


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ParsecError(
            "PARSEC_AUTH_MISSING", "this method needs 'Authorization: Bearer <management token>'"
        )
    return token


def _claims(request: Request) -> ParsecClaims:
    """The management claims the route handler verified for this request."""
    claims: ParsecClaims = request.state.mgmt_claims
    return claims


Claims = Annotated[ParsecClaims, Depends(_claims)]


def _allow(claims: ParsecClaims, channel: str, verb: str) -> None:
    """Raises PARSEC_CHANNEL_INVALID for a bad name, PARSEC_AUTH_DENIED unless ``claims``
    allow ``verb`` on ``channel``."""
    require_name(channel)
    if not claims.authorizes(channel, verb):
        raise ParsecError("PARSEC_AUTH_DENIED", f"this token may not {verb} {channel!r}")


def _operator(claims: ParsecClaims) -> None:
    if not is_operator(claims.scopes):
        raise ParsecError("PARSEC_AUTH_DENIED", "this method needs an operator management token")


# -- conversions ------------------------------------------------------------------------------


def _ttl(seconds: int) -> float | None:
    """0 (protobuf's unset) means the server's default."""
    return float(seconds) if seconds else None


def _scopes(specs: Sequence[ScopeSpec]) -> tuple[Scope, ...]:
    scopes = tuple(Scope(spec.pattern, tuple(spec.verbs), spec.deny) for spec in specs)
    for scope in scopes:
        scope.validate()
    return scopes


def _algorithm(alg: str) -> str:
    """Canonical spelling of ``alg`` (case-insensitive, ``ed25519`` = EdDSA); "" is HS256.
    Anything else is passed on for the keyring to refuse."""
    if not alg:
        return "HS256"
    return _ALGORITHM_NAMES.get(alg.lower(), alg)


def _channel_summary(channel: Channel) -> ChannelSummary:
    return ChannelSummary(
        name=channel.name,
        state=_STATES[channel.state],
        ttl_seconds=int(channel.ttl),
        created_at=descriptor.rfc3339(channel.created_at),
        last_active=descriptor.rfc3339(channel.last_active),
    )


def _key_summary(key: Key) -> KeySummary:
    return KeySummary(
        id=key.id,
        role=_ROLES[key.role],
        created_at=descriptor.rfc3339(key.created_at),
        retired_at="" if key.retired_at is None else descriptor.rfc3339(key.retired_at),
        alg=key.alg,
    )


def _dlq_item(item: DLQItem) -> DlqItem:
    return DlqItem(
        id=item.id,
        sink=item.sink,
        at=_rfc3339_fraction(item.at),
        recipient=msgspec.json.encode(item.recipient),
        subject=item.message.subject,
        body=item.message.body,
        metadata=dict(item.message.metadata),
        attempts=item.attempts,
        last_error=item.last_error,
    )


def _rfc3339_fraction(seconds: float) -> str:
    """Unix ``seconds`` as RFC 3339 UTC keeping microseconds, trailing zeros trimmed
    (as Go's RFC3339Nano): ``2026-01-01T00:00:00.25Z``, ``2026-01-01T00:00:00Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0").rstrip(".")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _signing_kid(token: str) -> str:
    kid = jwt.get_unverified_header(token).get("kid", "")
    return kid if isinstance(kid, str) else ""


# -- routes -----------------------------------------------------------------------------------


def _route_class(parsec: Parsec) -> type[APIRoute]:
    """An APIRoute whose handler speaks Twirp: authenticate (unless the method is public),
    then let FastAPI parse the body and call the endpoint, and answer every failure with a
    Twirp error body."""

    class TwirpRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            call = super().get_route_handler()
            protected = self.name not in PUBLIC_METHODS

            async def handle(request: Request) -> Response:
                try:
                    if protected:
                        try:
                            claims = await parsec.authenticate_mgmt(_bearer(request))
                        except ParsecError as exc:
                            return _unauthenticated(exc)
                        request.state.mgmt_claims = claims
                    problem = await _undecodable(request)
                    if problem is not None:
                        log.debug("ParsecService %s: malformed request: %s", self.name, problem)
                        return _malformed(problem)
                    refused = _not_an_object(request)
                    if refused is not None:
                        return refused
                    return await call(request)
                except RequestValidationError as exc:
                    return _invalid_body(exc)
                except StarletteHTTPException as exc:  # FastAPI could not read the body
                    log.debug("ParsecService %s: unreadable body: %s", self.name, exc.detail)
                    return _malformed(str(exc.detail))
                except ClientDisconnect:  # the caller left mid-body: nobody reads this
                    return _malformed("the client disconnected before sending the body")
                except ParsecError as exc:
                    return _error(exc)
                except Exception:
                    log.exception("ParsecService %s failed", self.name)
                    return _error(ParsecError("PARSEC_INTERNAL", "internal error"))

            return handle

    return TwirpRoute


def service_router(parsec: Parsec) -> APIRouter:
    """The ``/twirp/parsec.ParsecService/<Method>`` routes of ``parsec``. Add
    :func:`bad_route` on ``/twirp/{path:path}`` after them for Twirp's answer to the rest."""
    router = APIRouter(route_class=_route_class(parsec), strict_content_type=False)

    def rpc(
        name: str, reply: type[Any], doc: str
    ) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return router.post(
            PREFIX + name,
            name=name,
            operation_id=name,
            summary=doc,
            response_model=reply,
            tags=["ParsecService"],
            responses=_error_responses(name),
            dependencies=[] if name in PUBLIC_METHODS else [Security(BEARER)],
        )

    @rpc("Manifest", JSONPayload, "The server's manifest envelope, base64 (no bearer needed).")
    async def manifest(body: Empty = _EMPTY) -> JSONPayload:
        return JSONPayload(payload=descriptor.encode(descriptor.manifest_envelope(parsec)))

    @rpc("OpenPublic", ChannelResponse, "Open a public channel, or reopen / renew it.")
    async def open_public(body: OpenPublicRequest, claims: Claims) -> ChannelResponse:
        _allow(claims, body.name, MANAGE)
        channel = await parsec.open_public(body.name, _ttl(body.ttl_seconds))
        return ChannelResponse(channel=_channel_summary(channel))

    @rpc("CreatePrivate", Credentials, "Create a private channel; one-shot access + refresh.")
    async def create_private(body: CreatePrivateRequest, claims: Claims) -> Credentials:
        _allow(claims, body.name, MANAGE)
        scopes = _scopes(body.scopes)
        if any(not scope.deny for scope in scopes):
            # Allow scopes can reach beyond the new channel (``private:**``): only an
            # operator may hand them out. Deny scopes only narrow the tokens.
            _operator(claims)
        creds = await parsec.create_private(body.subject, body.name, _ttl(body.ttl_seconds), scopes)
        return Credentials(
            name=creds.name,
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            access_expires_unix=creds.access_expires,
            refresh_expires_unix=creds.refresh_expires,
        )

    @rpc("ListChannels", ListChannelsResponse, "The channels this token may manage.")
    async def list_channels(claims: Claims, body: Empty = _EMPTY) -> ListChannelsResponse:
        channels = await parsec.list_channels()
        return ListChannelsResponse(
            channels=[_channel_summary(c) for c in channels if claims.authorizes(c.name, MANAGE)]
        )

    @rpc("GetChannel", ChannelResponse, "One managed channel.")
    async def get_channel(body: ChannelRef, claims: Claims) -> ChannelResponse:
        _allow(claims, body.name, MANAGE)
        return ChannelResponse(channel=_channel_summary(await parsec.get_channel(body.name)))

    @rpc("DeleteChannel", Empty, "Delete a channel; its subscribers are unsubscribed.")
    async def delete_channel(body: ChannelRef, claims: Claims) -> Empty:
        _allow(claims, body.name, MANAGE)
        await parsec.delete_channel(body.name)
        return Empty()

    @rpc("Presence", PresenceResponse, "How many clients are subscribed to a channel.")
    async def presence(body: ChannelRef, claims: Claims) -> PresenceResponse:
        _allow(claims, body.name, MANAGE)
        return PresenceResponse(subscribers=await parsec.presence_count(body.name))

    @rpc("Publish", PublishResponse, "Publish JSON (base64 in `data`) to a channel.")
    async def publish(body: PublishRequest, claims: Claims) -> PublishResponse:
        _allow(claims, body.name, PUBLISH)
        position = await parsec.publish(body.name, body.data)  # bytes: must hold JSON
        return PublishResponse(offset=position.offset, epoch=position.epoch)

    @rpc("PublishOrSink", PublishOrSinkResponse, "Publish if anyone listens, else use a sink.")
    async def publish_or_sink(body: PublishOrSinkRequest, claims: Claims) -> PublishOrSinkResponse:
        _allow(claims, body.name, PUBLISH)
        spec = body.message
        message = Message(spec.subject, spec.body, spec.metadata)
        result = await parsec.publish_or_sink(
            body.name, body.data, body.sink, body.recipient, message, wait=body.wait
        )
        position, outcome = result.position, result.outcome
        return PublishOrSinkResponse(
            sinked=result.sinked,
            offset=position.offset if position else 0,
            epoch=position.epoch if position else "",
            queued=result.sinked and outcome is None,
            delivered=outcome.delivered if outcome else False,
            attempts=outcome.attempts if outcome else 0,
            dlq_id=(outcome.dlq_id or "") if outcome else "",
            last_error=outcome.last_error if outcome else "",
        )

    @rpc("RefreshToken", RefreshTokenResponse, "Rotate a refresh token (no bearer needed).")
    async def refresh_token(body: RefreshTokenRequest) -> RefreshTokenResponse:
        rotated = await parsec.refresh_access(body.refresh_token)
        return RefreshTokenResponse(
            access_token=rotated.access_token,
            access_expires_unix=rotated.access_expires,
            refresh_token=rotated.refresh_token,
            refresh_expires_unix=rotated.refresh_expires,
            rotated=rotated.rotated,
        )

    @rpc("IssueMgmt", IssueMgmtResponse, "Mint a management token (operator only).")
    async def issue_mgmt(claims: Claims, body: IssueMgmtRequest = _ISSUE) -> IssueMgmtResponse:
        _operator(claims)
        scopes = _scopes(body.scopes) or None
        issued = parsec.issue_mgmt(
            body.subject or DEFAULT_MGMT_SUBJECT, _ttl(body.ttl_seconds), scopes
        )
        return IssueMgmtResponse(
            mgmt_token=issued.token,
            expires_unix=issued.claims.exp,
            signed_by_key_id=_signing_kid(issued.token),
        )

    @rpc("ListKeys", ListKeysResponse, "Every key of the keyring (operator only).")
    async def list_keys(claims: Claims, body: Empty = _EMPTY) -> ListKeysResponse:
        _operator(claims)
        keys = parsec.list_keys()
        active = next((key.id for key in keys if key.role == ACTIVE), "")
        return ListKeysResponse(active_key_id=active, keys=[_key_summary(k) for k in keys])

    @rpc("GenerateKey", KeySummary, "Add a verify-only key (operator only).")
    async def generate_key(claims: Claims, body: GenerateKeyRequest = _GENERATE) -> KeySummary:
        _operator(claims)
        return _key_summary(await parsec.generate_key(_algorithm(body.alg)))

    @rpc("PromoteKey", Empty, "Make a key the active one (operator only).")
    async def promote_key(body: KeyRef, claims: Claims) -> Empty:
        _operator(claims)
        await parsec.promote_key(body.id)
        return Empty()

    @rpc("RetireKey", Empty, "Retire a key: its tokens stop verifying (operator only).")
    async def retire_key(body: KeyRef, claims: Claims) -> Empty:
        _operator(claims)
        await parsec.retire_key(body.id)
        return Empty()

    @rpc("ReloadKeys", Empty, "Re-read the keyring from its store (operator only).")
    async def reload_keys(claims: Claims, body: Empty = _EMPTY) -> Empty:
        _operator(claims)
        await parsec.reload_keys()
        return Empty()

    @rpc("RevokeToken", Empty, "Revoke one token by its id (operator only).")
    async def revoke_token(body: RevokeTokenRequest, claims: Claims) -> Empty:
        _operator(claims)
        await parsec.revoke_token(body.token_id, body.user_id, body.reason)
        return Empty()

    @rpc("RevokeUser", Empty, "Revoke every token a user holds now (operator only).")
    async def revoke_user(body: RevokeUserRequest, claims: Claims) -> Empty:
        _operator(claims)
        await parsec.revoke_user(body.user_id, body.reason)
        return Empty()

    @rpc("DlqList", DlqListResponse, "Dead letters, newest first (operator only).")
    async def dlq_list(claims: Claims, body: DlqListRequest = _DLQ_LIST) -> DlqListResponse:
        _operator(claims)
        items = await parsec.dlq_list(body.sink, body.limit or DEFAULT_DLQ_LIMIT)
        return DlqListResponse(items=[_dlq_item(item) for item in items])

    @rpc("DlqCount", DlqCountResponse, "How many dead letters a sink holds (operator only).")
    async def dlq_count(claims: Claims, body: DlqCountRequest = _DLQ_COUNT) -> DlqCountResponse:
        _operator(claims)
        return DlqCountResponse(count=await parsec.dlq_count(body.sink))

    @rpc("DlqDiscard", Empty, "Remove a dead letter (operator only).")
    async def dlq_discard(body: DlqRef, claims: Claims) -> Empty:
        _operator(claims)
        if not await parsec.dlq_discard(body.id):
            raise ParsecError("PARSEC_SINK_DLQ_NOT_FOUND", f"no dead letter {body.id!r}")
        return Empty()

    @rpc("DlqReplay", DlqReplayResponse, "Send a dead letter again and wait (operator only).")
    async def dlq_replay(body: DlqRef, claims: Claims) -> DlqReplayResponse:
        _operator(claims)
        outcome = await parsec.dlq_replay(body.id)
        return DlqReplayResponse(
            delivered=outcome.delivered,
            attempts=outcome.attempts,
            dlq_id=outcome.dlq_id or "",
            last_error=outcome.last_error,
        )

    return router
