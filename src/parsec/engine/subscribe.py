"""The subscribe command: authorize, choose the subscription's modes, register it in
the hub and the broker, read its position (and recover), then record presence and send
the join.

``subscribe_channel`` serves a client's ``subscribe`` (through :data:`HANDLERS`), the
server-side subscriptions of a connection token at connect
(:func:`server_side_subscribe`), and the server API's ``subscribe``
(:func:`server_subscribe`). Refusals are ClientErrors (an error
reply) or Disconnects (see :mod:`parsec.engine.token_checks` for the token's).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from parsec.engine import access, protocol, token_checks
from parsec.engine.broker import HistoryFilter
from parsec.engine.codes import ClientError, errors, permission_denied
from parsec.engine.subscription import Subscription
from parsec.engine.token_checks import ON_SUBSCRIBE, ttl
from parsec.engine.types import Publication, StreamPosition

if TYPE_CHECKING:
    from parsec.engine.controller import SubscribeCommand
    from parsec.engine.session import Session
    from parsec.engine.tokens import ServerSubscription

__all__ = ["HANDLERS", "server_side_subscribe", "server_subscribe", "subscribe_channel"]

log = logging.getLogger("parsec.session")


async def subscribe_channel(
    session: Session,
    req: protocol.SubscribeRequest,
    *,
    server_side: bool = False,
    chan_info: bytes | None = None,
    data: bytes | None = None,
    expires_at: int | None = None,
) -> protocol.SubscribeResult:
    """Subscribe ``session`` to ``req.channel``, client or server side (then ``chan_info``,
    ``data`` and ``expires_at`` come from the server instead of a token). The messages
    that arrive meanwhile are held until the reply is written."""
    node = session.node
    channel = req.channel
    if not channel:
        raise errors.BAD_REQUEST
    if channel in session.subs:
        raise errors.ALREADY_SUBSCRIBED
    if len(session.subs) >= node.options.client.channel_limit:
        raise errors.LIMIT_EXCEEDED
    resolved = node.rules.resolve(channel)
    authority = node.authority
    if authority is not None and authority.manages(resolved):
        await authority.check_subscribe(channel)
    sub = Subscription(session, channel, resolved, server_side=server_side)
    if not server_side:
        chan_info, expires_at = await _authorize(session, req, sub)
    if chan_info:
        sub.chan_info = msgspec.Raw(chan_info)
    _choose_modes(session, sub, req)
    session.subs[channel] = sub
    try:
        await node.add_subscription(sub)
        result = await _position(session, sub, req)
    except BaseException:
        await session.drop(sub)
        raise
    if session.subs.get(channel) is not sub:
        return result  # the session closed meanwhile: record no presence, no join
    if data:
        result.data = msgspec.Raw(data)
    session.set_sub_expiry(sub, expires_at)
    if expires_at is not None:
        result.expires, result.ttl = True, ttl(expires_at)
    session.release_after_reply(sub)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "subscribe",
            extra=session.log_fields("subscribe", channel=channel, server_side=server_side),
        )
    await session.announce(sub)
    return result


async def _subscribe(session: Session, req: protocol.SubscribeRequest) -> protocol.SubscribeResult:
    """A client's ``subscribe`` command."""
    return await subscribe_channel(session, req)


async def server_subscribe(session: Session, cmd: SubscribeCommand) -> None:
    """Subscribe on the server's initiative (server API ``subscribe``) and tell the
    client with a ``subscribe`` push."""
    req = protocol.SubscribeRequest(
        channel=cmd.channel,
        recover=cmd.recover,
        offset=cmd.recover_offset,
        epoch=cmd.recover_epoch,
    )
    try:
        res = await subscribe_channel(
            session,
            req,
            server_side=True,
            chan_info=bytes(cmd.info) or None,
            data=bytes(cmd.data) or None,
            expires_at=cmd.expire_at or None,
        )
    except ClientError as exc:
        log.info("server subscribe of %s to %r refused: %s", session.client_id, cmd.channel, exc)
        return
    push = protocol.SubscribePush(
        recoverable=res.recoverable,
        epoch=res.epoch,
        offset=res.offset,
        positioned=res.positioned,
        data=res.data,
        expires=res.expires,
        ttl=res.ttl,
    )
    session.write(protocol.encode_push(cmd.channel, "subscribe", push))
    session.release_pending()


async def server_side_subscribe(
    session: Session,
    claims: tuple[ServerSubscription, ...],
    recover: dict[str, protocol.SubscribeRequest],
) -> dict[str, protocol.SubscribeResult]:
    """Subscribe to the channels a connection token names, recovering where the connect
    asks to (``recover``); a refused one is logged and left out of the result."""
    results: dict[str, protocol.SubscribeResult] = {}
    for sub_claim in claims:
        channel = sub_claim.channel
        hint = recover.get(channel) or protocol.SubscribeRequest(channel=channel)
        req = protocol.SubscribeRequest(
            channel=channel, recover=hint.recover, epoch=hint.epoch, offset=hint.offset
        )
        try:
            results[channel] = await subscribe_channel(
                session, req, server_side=True, chan_info=sub_claim.info, data=sub_claim.data
            )
        except ClientError as exc:
            log.warning("server-side subscription to %r refused: %s", channel, exc)
    return results


def _choose_modes(session: Session, sub: Subscription, req: protocol.SubscribeRequest) -> None:
    """Positioning, recovery and join/leave pushes for a new subscription.

    As in Centrifugo, a client may opt into positioning / recovery where the
    namespace allows it or where it may read history, and into join/leave pushes
    where it may read presence (as the subscriber it is about to be).
    """
    opts, resolved = sub.resolved.options, sub.resolved
    if opts.history_enabled:
        history_ok = access.may_read_history(resolved, session.user, True)
        sub.recoverable = opts.force_recovery or (
            req.recoverable and (opts.allow_recovery or history_ok)
        )
        sub.positioned = (
            sub.recoverable
            or opts.force_positioning
            or (req.positioned and (opts.allow_positioning or history_ok))
        )
    sub.push_join_leave = opts.join_leave and (
        opts.force_push_join_leave
        or (req.join_leave and access.may_read_presence(resolved, session.user, True))
    )


async def _authorize(
    session: Session, req: protocol.SubscribeRequest, sub: Subscription
) -> tuple[bytes | None, int | None]:
    """Check a client-side subscribe; return (chan_info, expires_at) from its token."""
    if not req.token:
        if access.may_subscribe_without_token(sub.resolved, session.user):
            return None, None
        why = access.explain_subscribe(sub.resolved, session.user)
        raise permission_denied("subscribe to", req.channel, why)
    authority = session.node.authority
    if authority is not None:
        grant = await authority.grant(req.token, req.channel)
        if grant is not None:
            sub.grant, sub.token = grant, grant.token
            return None, grant.expires_at
    try:
        claims, sub.token = token_checks.subscription_token(
            session, req.token, req.channel, ON_SUBSCRIBE
        )
    except token_checks.StaleKeys as stale:
        claims, sub.token = await stale.retry()
    return claims.info, claims.expires_at


async def _position(
    session: Session, sub: Subscription, req: protocol.SubscribeRequest
) -> protocol.SubscribeResult:
    """Read the stream position (and recover) for a positioned subscription."""
    result = protocol.SubscribeResult()
    if not sub.positioned:
        return result
    node = session.node
    opts = sub.resolved.options
    recovering = sub.recoverable and req.recover
    limit = node.options.client.recovery_max_publication_limit if recovering else 0
    since = StreamPosition(req.offset, req.epoch) if recovering else None
    history = await node.broker.history(
        sub.channel, HistoryFilter(since=since, limit=limit), opts.history_meta_ttl
    )
    top = history.position
    sub.offset, sub.epoch = top.offset, top.epoch
    result.positioned = True
    result.recoverable = sub.recoverable
    result.epoch, result.offset = top.epoch, top.offset
    if recovering:
        from parsec.engine.recovery import recovered_publications

        pubs = recovered_publications(req.offset, req.epoch, history)
        if pubs and _data_size(pubs) > node.options.client.queue_max_size:
            pubs = None  # can never fit the client's queue: see _reply_lighter
        result.was_recovering = True
        if pubs is None and req.flag & 2:
            raise errors.UNRECOVERABLE_POSITION
        result.recovered = pubs is not None
        result.publications = pubs or []
    return result


def _data_size(pubs: list[Publication]) -> int:
    """The bytes of the publications' data: a lower bound of what sending them costs."""
    return sum(len(pub.data) for pub in pubs)


HANDLERS: dict[str, Any] = {"subscribe": _subscribe}
