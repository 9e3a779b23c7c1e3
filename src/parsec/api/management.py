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
shapes are in :mod:`parsec.api.management_models`; the Twirp protocol (reading a request,
rendering an error) is :mod:`parsec.api.twirp`.

Each method is one method of :class:`ParsecService`; :data:`METHODS` is the route table
:func:`service_router` builds the routes from, in the order of the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import MethodType
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from parsec import descriptor
from parsec.api import management_convert as convert
from parsec.api.management_models import (
    ChannelRef,
    ChannelResponse,
    CreatePrivateRequest,
    Credentials,
    DlqCountRequest,
    DlqCountResponse,
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
    TwirpError,
)
from parsec.api.twirp import claims_of, route_class
from parsec.auth.keyring import ACTIVE
from parsec.auth.parsec_tokens import ParsecClaims
from parsec.auth.scopes import MANAGE, PUBLISH, is_operator
from parsec.channels.names import require_name
from parsec.errors import ParsecError
from parsec.sinks.base import Message

if TYPE_CHECKING:
    from parsec import Parsec

__all__ = [
    "METHODS",
    "PREFIX",
    "PUBLIC_METHODS",
    "ParsecService",
    "service_router",
]

PREFIX: Final = "/twirp/parsec.ParsecService/"
PUBLIC_METHODS: Final = frozenset({"Manifest", "RefreshToken"})
"""The methods callable without a management bearer."""

DEFAULT_MGMT_SUBJECT: Final = "operator"
DEFAULT_DLQ_LIMIT: Final = 50

BEARER: Final = HTTPBearer(
    scheme_name="ManagementToken",
    description="A Parsec management token (typ mgmt), as `parsec tokens mgmt` prints it.",
    auto_error=False,
)
"""The security scheme the OpenAPI document names. It only documents the header: the
route handler authenticates before FastAPI reads the body (:mod:`parsec.api.twirp`)."""

Claims = Annotated[ParsecClaims, Depends(claims_of)]

# What an empty request body stands for, in the methods whose fields are all optional.
_EMPTY: Final = Empty()
_ISSUE: Final = IssueMgmtRequest()
_GENERATE: Final = GenerateKeyRequest()
_DLQ_LIST: Final = DlqListRequest()
_DLQ_COUNT: Final = DlqCountRequest()


# -- authorisation ----------------------------------------------------------------------------


def _allow(claims: ParsecClaims, channel: str, verb: str) -> None:
    """Raises PARSEC_CHANNEL_INVALID for a bad name, PARSEC_AUTH_DENIED unless ``claims``
    allow ``verb`` on ``channel``."""
    require_name(channel)
    if not claims.authorizes(channel, verb):
        raise ParsecError("PARSEC_AUTH_DENIED", f"this token may not {verb} {channel!r}")


def _operator(claims: ParsecClaims) -> None:
    if not is_operator(claims.scopes):
        raise ParsecError("PARSEC_AUTH_DENIED", "this method needs an operator management token")


# -- the methods ------------------------------------------------------------------------------


class ParsecService:
    """The methods of ``parsec.ParsecService`` on one Parsec instance.

    Each method is a FastAPI endpoint: its parameters say which message the body is
    (``body``) and whether it needs the caller's management claims (``claims``); it
    checks what the claims allow, calls ``parsec`` and returns the reply message (its
    return annotation is the route's response model). A ParsecError it raises becomes
    the Twirp error of its code. The methods have no docstrings: FastAPI would put them
    in the OpenAPI document."""

    def __init__(self, parsec: Parsec) -> None:
        self.parsec = parsec

    async def authenticate(self, bearer: str) -> ParsecClaims:
        """The claims of management token ``bearer`` (the route's authenticator)."""
        return await self.parsec.authenticate_mgmt(bearer)

    async def manifest(self, body: Empty = _EMPTY) -> JSONPayload:
        return JSONPayload(payload=descriptor.encode(descriptor.manifest_envelope(self.parsec)))

    async def open_public(self, body: OpenPublicRequest, claims: Claims) -> ChannelResponse:
        _allow(claims, body.name, MANAGE)
        channel = await self.parsec.open_public(body.name, convert.ttl(body.ttl_seconds))
        return ChannelResponse(channel=convert.channel_summary(channel))

    async def create_private(self, body: CreatePrivateRequest, claims: Claims) -> Credentials:
        _allow(claims, body.name, MANAGE)
        scopes = convert.scopes(body.scopes)
        if any(not scope.deny for scope in scopes):
            # Allow scopes can reach beyond the new channel (``private:**``): only an
            # operator may hand them out. Deny scopes only narrow the tokens.
            _operator(claims)
        creds = await self.parsec.create_private(
            body.subject, body.name, convert.ttl(body.ttl_seconds), scopes
        )
        return Credentials(
            name=creds.name,
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            access_expires_unix=creds.access_expires,
            refresh_expires_unix=creds.refresh_expires,
        )

    async def list_channels(self, claims: Claims, body: Empty = _EMPTY) -> ListChannelsResponse:
        channels = await self.parsec.list_channels()
        return ListChannelsResponse(
            channels=[
                convert.channel_summary(c) for c in channels if claims.authorizes(c.name, MANAGE)
            ]
        )

    async def get_channel(self, body: ChannelRef, claims: Claims) -> ChannelResponse:
        _allow(claims, body.name, MANAGE)
        channel = await self.parsec.get_channel(body.name)
        return ChannelResponse(channel=convert.channel_summary(channel))

    async def delete_channel(self, body: ChannelRef, claims: Claims) -> Empty:
        _allow(claims, body.name, MANAGE)
        await self.parsec.delete_channel(body.name)
        return Empty()

    async def presence(self, body: ChannelRef, claims: Claims) -> PresenceResponse:
        _allow(claims, body.name, MANAGE)
        return PresenceResponse(subscribers=await self.parsec.presence_count(body.name))

    async def publish(self, body: PublishRequest, claims: Claims) -> PublishResponse:
        _allow(claims, body.name, PUBLISH)
        position = await self.parsec.publish(body.name, body.data)  # bytes: must hold JSON
        return PublishResponse(offset=position.offset, epoch=position.epoch)

    async def publish_or_sink(
        self, body: PublishOrSinkRequest, claims: Claims
    ) -> PublishOrSinkResponse:
        _allow(claims, body.name, PUBLISH)
        spec = body.message
        message = Message(spec.subject, spec.body, spec.metadata)
        result = await self.parsec.publish_or_sink(
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

    async def refresh_token(self, body: RefreshTokenRequest) -> RefreshTokenResponse:
        rotated = await self.parsec.refresh_access(body.refresh_token)
        return RefreshTokenResponse(
            access_token=rotated.access_token,
            access_expires_unix=rotated.access_expires,
            refresh_token=rotated.refresh_token,
            refresh_expires_unix=rotated.refresh_expires,
            rotated=rotated.rotated,
        )

    async def issue_mgmt(
        self, claims: Claims, body: IssueMgmtRequest = _ISSUE
    ) -> IssueMgmtResponse:
        _operator(claims)
        scopes = convert.scopes(body.scopes) or None
        subject = body.subject or DEFAULT_MGMT_SUBJECT
        issued = self.parsec.issue_mgmt(subject, convert.ttl(body.ttl_seconds), scopes)
        return IssueMgmtResponse(
            mgmt_token=issued.token,
            expires_unix=issued.claims.exp,
            signed_by_key_id=convert.signing_kid(issued.token),
        )

    async def list_keys(self, claims: Claims, body: Empty = _EMPTY) -> ListKeysResponse:
        _operator(claims)
        keys = self.parsec.list_keys()
        active = next((key.id for key in keys if key.role == ACTIVE), "")
        return ListKeysResponse(active_key_id=active, keys=[convert.key_summary(k) for k in keys])

    async def generate_key(
        self, claims: Claims, body: GenerateKeyRequest = _GENERATE
    ) -> KeySummary:
        _operator(claims)
        return convert.key_summary(await self.parsec.generate_key(convert.algorithm(body.alg)))

    async def promote_key(self, body: KeyRef, claims: Claims) -> Empty:
        _operator(claims)
        await self.parsec.promote_key(body.id)
        return Empty()

    async def retire_key(self, body: KeyRef, claims: Claims) -> Empty:
        _operator(claims)
        await self.parsec.retire_key(body.id)
        return Empty()

    async def reload_keys(self, claims: Claims, body: Empty = _EMPTY) -> Empty:
        _operator(claims)
        await self.parsec.reload_keys()
        return Empty()

    async def revoke_token(self, body: RevokeTokenRequest, claims: Claims) -> Empty:
        _operator(claims)
        await self.parsec.revoke_token(body.token_id, body.user_id, body.reason)
        return Empty()

    async def revoke_user(self, body: RevokeUserRequest, claims: Claims) -> Empty:
        _operator(claims)
        await self.parsec.revoke_user(body.user_id, body.reason)
        return Empty()

    async def dlq_list(self, claims: Claims, body: DlqListRequest = _DLQ_LIST) -> DlqListResponse:
        _operator(claims)
        items = await self.parsec.dlq_list(body.sink, body.limit or DEFAULT_DLQ_LIMIT)
        return DlqListResponse(items=[convert.dlq_item(item) for item in items])

    async def dlq_count(
        self, claims: Claims, body: DlqCountRequest = _DLQ_COUNT
    ) -> DlqCountResponse:
        _operator(claims)
        return DlqCountResponse(count=await self.parsec.dlq_count(body.sink))

    async def dlq_discard(self, body: DlqRef, claims: Claims) -> Empty:
        _operator(claims)
        if not await self.parsec.dlq_discard(body.id):
            raise ParsecError("PARSEC_SINK_DLQ_NOT_FOUND", f"no dead letter {body.id!r}")
        return Empty()

    async def dlq_replay(self, body: DlqRef, claims: Claims) -> DlqReplayResponse:
        _operator(claims)
        outcome = await self.parsec.dlq_replay(body.id)
        return DlqReplayResponse(
            delivered=outcome.delivered,
            attempts=outcome.attempts,
            dlq_id=outcome.dlq_id or "",
            last_error=outcome.last_error,
        )


# -- the route table --------------------------------------------------------------------------

Endpoint = Callable[..., Awaitable[BaseModel]]
"""A method of :class:`ParsecService`, unbound; its return annotation is the reply message."""

S = ParsecService
METHODS: Final[dict[str, tuple[Endpoint, str]]] = {
    "Manifest": (S.manifest, "The server's manifest envelope, base64 (no bearer needed)."),
    "OpenPublic": (S.open_public, "Open a public channel, or reopen / renew it."),
    "CreatePrivate": (S.create_private, "Create a private channel; one-shot access + refresh."),
    "ListChannels": (S.list_channels, "The channels this token may manage."),
    "GetChannel": (S.get_channel, "One managed channel."),
    "DeleteChannel": (S.delete_channel, "Delete a channel; its subscribers are unsubscribed."),
    "Presence": (S.presence, "How many clients are subscribed to a channel."),
    "Publish": (S.publish, "Publish JSON (base64 in `data`) to a channel."),
    "PublishOrSink": (S.publish_or_sink, "Publish if anyone listens, else use a sink."),
    "RefreshToken": (S.refresh_token, "Rotate a refresh token (no bearer needed)."),
    "IssueMgmt": (S.issue_mgmt, "Mint a management token (operator only)."),
    "ListKeys": (S.list_keys, "Every key of the keyring (operator only)."),
    "GenerateKey": (S.generate_key, "Add a verify-only key (operator only)."),
    "PromoteKey": (S.promote_key, "Make a key the active one (operator only)."),
    "RetireKey": (S.retire_key, "Retire a key: its tokens stop verifying (operator only)."),
    "ReloadKeys": (S.reload_keys, "Re-read the keyring from its store (operator only)."),
    "RevokeToken": (S.revoke_token, "Revoke one token by its id (operator only)."),
    "RevokeUser": (S.revoke_user, "Revoke every token a user holds now (operator only)."),
    "DlqList": (S.dlq_list, "Dead letters, newest first (operator only)."),
    "DlqCount": (S.dlq_count, "How many dead letters a sink holds (operator only)."),
    "DlqDiscard": (S.dlq_discard, "Remove a dead letter (operator only)."),
    "DlqReplay": (S.dlq_replay, "Send a dead letter again and wait (operator only)."),
}
"""Every method of the service: its name, what runs it and its summary in the OpenAPI
document, in the document's order."""
del S


# -- the OpenAPI document ---------------------------------------------------------------------


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


def service_router(parsec: Parsec) -> APIRouter:
    """The ``/twirp/parsec.ParsecService/<Method>`` routes of ``parsec``, one per row of
    :data:`METHODS`. Add :class:`parsec.api.twirp.BadRoute` on ``/twirp/{path:path}``
    after them for Twirp's answer to the rest."""
    service = ParsecService(parsec)
    route = route_class(service.authenticate, PUBLIC_METHODS)
    router = APIRouter(route_class=route, strict_content_type=False)
    for name, (endpoint, summary) in METHODS.items():
        router.add_api_route(
            PREFIX + name,
            MethodType(endpoint, service),  # the reply message is its return annotation
            methods=["POST"],
            name=name,
            operation_id=name,
            summary=summary,
            tags=["ParsecService"],
            responses=_error_responses(name),
            dependencies=[] if name in PUBLIC_METHODS else [Security(BEARER)],
        )
    return router
