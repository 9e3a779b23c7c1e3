"""The channel commands that read or publish without changing the session's own
state: publish, presence, presence_stats, history, rpc, send (and legacy ping).

Each is a coroutine ``(session, request) -> result`` the Session dispatches to; each
checks the channel's options and the caller's permissions (``parsec.engine.access``)
and raises ClientError to refuse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from parsec.engine import access, protocol
from parsec.engine.codes import errors, permission_denied
from parsec.engine.types import StreamPosition

if TYPE_CHECKING:
    from parsec.engine.session import Session

__all__ = ["HANDLERS", "RPCCall", "send"]

log = logging.getLogger("parsec.session")


class RPCCall(msgspec.Struct, frozen=True):
    """What an RPC or message handler receives: who called, the method and its data."""

    user: str
    client: str
    method: str
    data: Any


async def publish(session: Session, req: protocol.PublishRequest) -> protocol.Empty:
    """Publish from a client: the namespace must allow it, or the subscription's
    bearer grant must include publish."""
    if not req.channel or not req.data:
        raise errors.BAD_REQUEST
    resolved = session.node.rules.resolve(req.channel)
    sub = session.subs.get(req.channel)
    granted = sub is not None and sub.grant is not None and sub.grant.publish
    if not granted and not access.may_publish(resolved, session.user, sub is not None):
        why = access.explain(resolved, "publish", session.user, sub is not None)
        raise permission_denied("publish to", req.channel, why)
    info = session.client_info(sub)
    await session.node.publish(req.channel, bytes(req.data), info=info, resolved=resolved)
    return protocol.Empty()


async def presence(session: Session, req: protocol.ChannelRequest) -> protocol.PresenceResult:
    _check_presence(session, req.channel)
    return protocol.PresenceResult(await session.node.presence.presence(req.channel))


async def presence_stats(
    session: Session, req: protocol.ChannelRequest
) -> protocol.PresenceStatsResult:
    _check_presence(session, req.channel)
    stats = await session.node.presence.presence_stats(req.channel)
    return protocol.PresenceStatsResult(stats.num_clients, stats.num_users)


def _check_presence(session: Session, channel: str) -> None:
    if not channel:
        raise errors.BAD_REQUEST
    resolved = session.node.rules.resolve(channel)
    if not resolved.options.presence:
        raise errors.NOT_AVAILABLE
    subscribed = channel in session.subs
    if not access.may_read_presence(resolved, session.user, subscribed):
        why = access.explain(resolved, "presence", session.user, subscribed)
        raise permission_denied("presence of", channel, why)


async def history(session: Session, req: protocol.HistoryRequest) -> protocol.HistoryResult:
    if not req.channel:
        raise errors.BAD_REQUEST
    resolved = session.node.rules.resolve(req.channel)
    if not resolved.options.history_enabled:
        raise errors.NOT_AVAILABLE
    subscribed = req.channel in session.subs
    if not access.may_read_history(resolved, session.user, subscribed):
        why = access.explain(resolved, "history", session.user, subscribed)
        raise permission_denied("history of", req.channel, why)
    since = StreamPosition(req.since.offset, req.since.epoch) if req.since else None
    res = await session.node.history(
        req.channel, limit=req.limit, since=since, reverse=req.reverse, resolved=resolved
    )
    return protocol.HistoryResult(res.publications, res.position.epoch, res.position.offset)


async def rpc(session: Session, req: protocol.RPCRequest) -> protocol.RPCResult:
    """Call the embedder's handler of ``req.method`` (104 when there is none)."""
    handler = session.node.rpc_handlers.get(req.method)
    if handler is None:
        raise errors.METHOD_NOT_FOUND
    data: Any = msgspec.json.decode(req.data) if req.data else None
    out = await handler(RPCCall(session.user, session.client_id, req.method, data))
    return protocol.RPCResult(data=msgspec.Raw(protocol.encode(out)))


async def send(session: Session, cmd: protocol.Command) -> None:
    """Hand an asynchronous message to the embedder's handler; never answered, and a
    failing handler is logged, not reported to the client."""
    handler = session.node.message_handler
    if handler is None or cmd.send is None or not cmd.send.data:
        return
    data = msgspec.json.decode(cmd.send.data)
    try:
        await handler(RPCCall(session.user, session.client_id, "", data))
    except Exception:
        log.exception("message handler failed for client %s", session.client_id)


async def ping(session: Session, req: dict[str, object]) -> protocol.Empty:
    """The legacy ping command (SDKs use empty-command pongs instead)."""
    return protocol.Empty()


HANDLERS: dict[str, Any] = {
    "publish": publish,
    "presence": presence,
    "presence_stats": presence_stats,
    "history": history,
    "rpc": rpc,
    "ping": ping,
}
