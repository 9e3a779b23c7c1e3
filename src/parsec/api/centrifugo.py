"""The Centrifugo server HTTP API: ``POST /api/<method>``.

Requests and results are shaped exactly as Centrifugo v5/v6 shapes them
(centrifuge-protocol.md §5), so the ``cent`` client and framework integrations work
unchanged. Errors are HTTP 200 with ``{"error": {"code", "message"}}``; a missing or
wrong API key is 401 (the key is read from ``X-API-Key`` or ``Authorization: apikey``,
never from the query string); a body that is not a JSON object of the method's shape is 400.

Two methods are Centrifugo PRO's token revocation API, with its semantics:

* ``revoke_token`` ``{uid, expire_at?}``: the token whose ``jti`` is ``uid`` (of any kind
  Parsec verifies) is refused until ``expire_at`` (unix seconds; absent or 0: for good);
* ``invalidate_user_tokens`` ``{user, issued_before?, expire_at?, channel?}``: the
  connection tokens of ``user`` issued before ``issued_before`` (``iat <
  issued_before``; absent or 0: until now, this second included) are refused — or, with
  ``channel``, only the user's subscription tokens of that channel (connection tokens
  stay valid).

Both answer ``{}``; live connections and subscriptions holding a token they revoke end
within a second on every node (disconnect 3005 / unsubscribe 2501 "token revoked").

The messages are msgspec Structs (:mod:`parsec.api.centrifugo_models`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from parsec.api.centrifugo_models import (
    BatchReq,
    BatchRes,
    BroadcastReq,
    ChannelInfo,
    ChannelReq,
    ChannelsReq,
    DisconnectBody,
    DisconnectReq,
    HistoryReq,
    InfoReq,
    InvalidateUserTokensReq,
    LegacyCommand,
    PublicationReq,
    PublishReq,
    PublishRes,
    RefreshReq,
    RevokeTokenReq,
    SubscribeReq,
    UnsubscribeReq,
)
from parsec.api.errors import client_error
from parsec.auth.revocation import CONNECTION_TOKENS, FOREVER, Revocations, channel_tokens
from parsec.engine import protocol
from parsec.engine.codes import ClientError, errors
from parsec.engine.controller import (
    DisconnectCommand,
    RefreshCommand,
    SubscribeCommand,
    UnsubscribeCommand,
)
from parsec.engine.node import Node
from parsec.engine.types import Publication, StreamPosition
from parsec.errors import ParsecError
from parsec.observability import tracing
from parsec.options import ApiOptions

__all__ = ["CentrifugoApi"]

log = logging.getLogger("parsec.api")

_EXPLAINED = frozenset({errors.UNKNOWN_CHANNEL.code, errors.PERMISSION_DENIED.code})


_Handler = Callable[["CentrifugoApi", Any], Awaitable[Any]]
_T = TypeVar("_T")
_encode = msgspec.json.encode


class CentrifugoApi:
    """The ``/api`` routes of one Node; ``revocations`` serves the revocation methods
    (without it they answer 104 method not found)."""

    def __init__(
        self, node: Node, options: ApiOptions, revocations: Revocations | None = None
    ) -> None:
        self.node = node
        self.options = options
        self.revocations = revocations

    def routes(self) -> list[Route]:
        return [
            Route("/api", self._legacy, methods=["POST"]),
            Route("/api/{method}", self._endpoint, methods=["POST"]),
        ]

    # --- HTTP -------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        if self.options.insecure:
            return True
        key = self.options.key
        if not key:
            return False
        # Headers only: Centrifugo also reads ?api_key=, but a key in a URL ends up in
        # proxy and access logs.
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "apikey":
                self.node.auth_failures.report("api_key", "missing")
                return False
            given = value.strip()
        if hmac.compare_digest(given.encode(), key.encode()):
            return True
        self.node.auth_failures.report("api_key", "invalid")
        return False

    async def _endpoint(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        method = request.path_params["method"]
        body = await request.body()
        try:
            reply = await self.call(method, body or b"{}")
        except msgspec.DecodeError as exc:
            return Response(f"bad request: {exc}", status_code=400, media_type="text/plain")
        return Response(reply, media_type="application/json")

    async def _legacy(self, request: Request) -> Response:
        """``POST /api`` with newline-delimited ``{"method", "params"}`` commands."""
        if not self._authorized(request):
            return Response(status_code=401)
        out = []
        for line in (await request.body()).split(b"\n"):
            if not line.strip():
                continue
            try:
                cmd = _decode(line, LegacyCommand)
                out.append(await self.call(cmd.method, bytes(cmd.params) or b"{}"))
            except msgspec.DecodeError as exc:
                return Response(f"bad request: {exc}", status_code=400, media_type="text/plain")
        return Response(b"\n".join(out), media_type="application/json")

    async def call(self, method: str, body: bytes) -> bytes:
        """Run one API method on a JSON body; the encoded ``{"result"}`` or ``{"error"}``.

        A ClientError or ParsecError the method raises is the ``{"error"}`` reply
        (:func:`parsec.api.errors.client_error`): a revocation store that fails, say, is
        a temporary internal error (100), while the revocation is in force on this node
        and reaches the store once it is back. Raises msgspec.DecodeError when the body
        is not a JSON object of the method's request shape."""
        spec = _METHODS.get(method)
        if spec is None:
            return _error(errors.METHOD_NOT_FOUND())
        req_type, handler = spec
        req = _decode(body, req_type)
        try:
            with tracing.tracer().span(f"centrifugo.api/{method}", {"rpc.method": method}):
                result = await handler(self, req)
        except (ClientError, ParsecError) as exc:
            error = client_error(exc)
            _log_refusal(method, error)
            return _error(error)
        if method == "batch":  # Centrifugo answers batch with top-level "replies"
            return _encode(result)
        return b'{"result":%s}' % _encode(result)

    # --- methods ----------------------------------------------------------------

    async def publish(self, req: PublishReq) -> PublishRes:
        data = _payload(req.data, req.b64data)
        return await self._publish_one(req.channel, data, req)

    async def broadcast(self, req: BroadcastReq) -> dict[str, list[msgspec.Raw]]:
        data = _payload(req.data, req.b64data)
        if not req.channels:
            raise errors.BAD_REQUEST
        responses = []
        for channel in req.channels:
            try:
                res = await self._publish_one(channel, data, req)
            except ClientError as exc:
                _log_refusal("broadcast", exc)
                responses.append(msgspec.Raw(_error(exc)))
            else:
                responses.append(msgspec.Raw(b'{"result":%s}' % _encode(res)))
        return {"responses": responses}

    async def _publish_one(self, channel: str, data: bytes, req: PublicationReq) -> PublishRes:
        if not channel:
            raise errors.BAD_REQUEST
        pos = await self.node.publish(
            channel,
            data,
            tags=req.tags,
            skip_history=req.skip_history,
            idempotency_key=req.idempotency_key,
        )
        return PublishRes(pos.offset, pos.epoch)

    async def subscribe(self, req: SubscribeReq) -> dict[str, Any]:
        if not req.user or not req.channel:
            raise errors.BAD_REQUEST
        info = req.info if req.info else msgspec.Raw(_b64json(req.b64info))
        data = req.data if req.data else msgspec.Raw(_b64json(req.b64data))
        since = req.recover_since
        await self.node.subscribe_user(
            SubscribeCommand(
                user=req.user,
                channel=req.channel,
                client=req.client,
                session=req.session,
                info=_compact(info),
                data=_compact(data),
                expire_at=req.expire_at,
                recover=since is not None,
                recover_offset=since.offset if since else 0,
                recover_epoch=since.epoch if since else "",
            )
        )
        return {}

    async def unsubscribe(self, req: UnsubscribeReq) -> dict[str, Any]:
        if not req.user or not req.channel:
            raise errors.BAD_REQUEST
        await self.node.unsubscribe_user(
            UnsubscribeCommand(
                user=req.user, channel=req.channel, client=req.client, session=req.session
            )
        )
        return {}

    async def disconnect(self, req: DisconnectReq) -> dict[str, Any]:
        if not req.user:
            raise errors.BAD_REQUEST
        d = req.disconnect or DisconnectBody()
        if not (3000 <= d.code <= 4999) or len(d.reason.encode()) > 123:
            raise errors.BAD_REQUEST
        await self.node.disconnect_user(
            DisconnectCommand(
                user=req.user,
                code=d.code,
                reason=d.reason,
                client=req.client,
                session=req.session,
                whitelist=req.whitelist,
            )
        )
        return {}

    async def presence(self, req: ChannelReq) -> protocol.PresenceResult:
        _need(req.channel)
        return protocol.PresenceResult(await self.node.presence_of(req.channel))

    async def presence_stats(self, req: ChannelReq) -> protocol.PresenceStatsResult:
        _need(req.channel)
        stats = await self.node.presence_stats_of(req.channel)
        return protocol.PresenceStatsResult(stats.num_clients, stats.num_users)

    async def history(self, req: HistoryReq) -> protocol.HistoryResult:
        _need(req.channel)
        since = StreamPosition(req.since.offset, req.since.epoch) if req.since else None
        res = await self.node.history(
            req.channel, limit=req.limit, since=since, reverse=req.reverse
        )
        pubs = [
            Publication(data=p.data, offset=p.offset, info=p.info, tags=p.tags)
            for p in res.publications
        ]
        return protocol.HistoryResult(pubs, res.position.epoch, res.position.offset)

    async def history_remove(self, req: ChannelReq) -> dict[str, Any]:
        _need(req.channel)
        await self.node.remove_history(req.channel)
        return {}

    async def channels(self, req: ChannelsReq) -> dict[str, dict[str, ChannelInfo]]:
        found = await self.node.cluster_channels(req.pattern)
        return {"channels": {ch: ChannelInfo(n) for ch, n in found.items()}}

    async def info(self, req: InfoReq) -> dict[str, Any]:
        return {"nodes": await self.node.info()}

    async def refresh(self, req: RefreshReq) -> dict[str, Any]:
        if not req.user:
            raise errors.BAD_REQUEST
        await self.node.refresh_user(
            RefreshCommand(
                user=req.user,
                client=req.client,
                session=req.session,
                expired=req.expired,
                expire_at=req.expire_at,
                info=_compact(req.info),
            )
        )
        return {}

    async def revoke_token(self, req: RevokeTokenReq) -> dict[str, Any]:
        if not req.uid:
            raise errors.BAD_REQUEST
        revocations = self._revocations()
        await revocations.revoke_token(req.uid, until=req.expire_at or FOREVER)
        return {}

    async def invalidate_user_tokens(self, req: InvalidateUserTokensReq) -> dict[str, Any]:
        if not req.user:
            raise errors.BAD_REQUEST
        revocations = self._revocations()
        cutoff = req.issued_before - 1 if req.issued_before else int(time.time())
        scope = channel_tokens(req.channel) if req.channel else CONNECTION_TOKENS
        until = req.expire_at or FOREVER
        await revocations.revoke_user(req.user, cutoff=cutoff, until=until, scope=scope)
        return {}

    def _revocations(self) -> Revocations:
        if self.revocations is None:
            raise errors.METHOD_NOT_FOUND
        return self.revocations

    async def batch(self, req: BatchReq) -> Any:
        async def one(command: dict[str, msgspec.Raw]) -> msgspec.Raw:
            if len(command) != 1:
                return msgspec.Raw(_error(errors.BAD_REQUEST()))
            ((method, body),) = command.items()
            try:
                reply = await self.call(method, bytes(body))
            except msgspec.DecodeError:
                return msgspec.Raw(_error(errors.BAD_REQUEST()))
            if reply.startswith(b'{"result":'):
                return msgspec.Raw(b'{"%s":%s' % (method.encode(), reply[len(b'{"result":') :]))
            return msgspec.Raw(reply)

        if req.parallel:
            replies = await asyncio.gather(*(one(c) for c in req.commands))
        else:
            replies = [await one(c) for c in req.commands]
        return BatchRes(list(replies))


def _log_refusal(method: str, exc: ClientError) -> None:
    """INFO for the refusals that leave a caller guessing (102, 103): the message names
    the channel's namespace or the channel."""
    if exc.code in _EXPLAINED:
        why = f" ({exc.detail})" if exc.detail else ""
        log.info("server API %s refused: %s%s", method, exc.message, why)


def _decode(body: bytes, req_type: type[_T]) -> _T:
    """``body`` as a ``req_type``. Raises msgspec.DecodeError for anything else: bytes
    that are not JSON in UTF-8, JSON of another shape, or nesting too deep to decode.
    (msgspec 0.19 raises UnicodeDecodeError for bad UTF-8 inside a string.)"""
    try:
        return msgspec.json.decode(body, type=req_type)
    except msgspec.ValidationError as exc:
        raise msgspec.DecodeError(str(exc)) from None
    except UnicodeDecodeError:
        raise msgspec.DecodeError("JSON is not valid UTF-8") from None
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None


def _error(exc: ClientError) -> bytes:
    return b'{"error":%s}' % _encode({"code": exc.code, "message": exc.message})


def _need(channel: str) -> None:
    if not channel:
        raise errors.BAD_REQUEST


def _payload(data: msgspec.Raw, b64data: str) -> bytes:
    """The publication payload: ``data`` as compact JSON, or ``b64data`` decoded and
    required to be JSON (this server speaks the JSON protocol only)."""
    if data:
        return bytes(_compact(data))
    if b64data:
        return bytes(_compact(msgspec.Raw(_b64json(b64data))))
    raise errors.BAD_REQUEST


def _b64json(value: str) -> bytes:
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.BAD_REQUEST from None


def _compact(raw: msgspec.Raw) -> msgspec.Raw:
    if not raw:
        return raw
    try:
        return protocol.compact_json(bytes(raw))
    except protocol.MalformedCommand:
        raise errors.BAD_REQUEST from None


_METHODS: dict[str, tuple[type[Any], _Handler]] = {
    "publish": (PublishReq, CentrifugoApi.publish),
    "broadcast": (BroadcastReq, CentrifugoApi.broadcast),
    "subscribe": (SubscribeReq, CentrifugoApi.subscribe),
    "unsubscribe": (UnsubscribeReq, CentrifugoApi.unsubscribe),
    "disconnect": (DisconnectReq, CentrifugoApi.disconnect),
    "presence": (ChannelReq, CentrifugoApi.presence),
    "presence_stats": (ChannelReq, CentrifugoApi.presence_stats),
    "history": (HistoryReq, CentrifugoApi.history),
    "history_remove": (ChannelReq, CentrifugoApi.history_remove),
    "channels": (ChannelsReq, CentrifugoApi.channels),
    "info": (InfoReq, CentrifugoApi.info),
    "refresh": (RefreshReq, CentrifugoApi.refresh),
    "revoke_token": (RevokeTokenReq, CentrifugoApi.revoke_token),
    "invalidate_user_tokens": (InvalidateUserTokensReq, CentrifugoApi.invalidate_user_tokens),
    "batch": (BatchReq, CentrifugoApi.batch),
}
