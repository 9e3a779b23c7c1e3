"""The refresh commands: a new connection token (``refresh``), a new subscription
token (``sub_refresh``), and a refresh on the server's initiative (server API
``refresh``). What a token that fails is answered: :mod:`parsec.engine.token_checks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from parsec.engine import protocol, token_checks
from parsec.engine.codes import ClientError, disconnects, errors, permission_denied
from parsec.engine.token_checks import ON_REFRESH, ON_SUB_REFRESH, ttl

if TYPE_CHECKING:
    from parsec.engine.controller import RefreshCommand
    from parsec.engine.session import Session
    from parsec.engine.subscription import Subscription

__all__ = ["HANDLERS", "refresh", "server_refresh", "sub_refresh"]


async def refresh(session: Session, req: protocol.RefreshRequest) -> protocol.RefreshResult:
    """A new token for the connection, of the same user: it may move the expiry and
    change the connection info (presence shows it at once)."""
    try:
        claims, token = token_checks.connection_token(
            session, req.token, ON_REFRESH, user=session.user
        )
    except token_checks.StaleKeys as stale:
        claims, token = await stale.retry()
    expires_at = claims.expires_at
    session.token = token
    session.set_expiry(expires_at)
    if claims.info:
        session.conn_info = msgspec.Raw(claims.info)
        for sub in list(session.subs.values()):
            await session.update_presence(sub)
    result = protocol.RefreshResult(client=session.client_id, version=session.node.version)
    if expires_at is not None:
        result.expires, result.ttl = True, ttl(expires_at)
    return result


async def sub_refresh(
    session: Session, req: protocol.SubRefreshRequest
) -> protocol.SubRefreshResult:
    """A new token for a client-side subscription (a bearer access token for one made
    with one). A token bound to another client (its ``client`` claim) is refused as
    at subscribe: 3500."""
    sub = session.subs.get(req.channel)
    if sub is None or sub.server_side:
        why = "not subscribed" if sub is None else "a server-side subscription"
        raise permission_denied("sub_refresh of", req.channel, why)
    if sub.grant is not None:
        return await _refresh_grant(session, sub, req.token)
    try:
        claims, sub.token = token_checks.subscription_token(
            session, req.token, req.channel, ON_SUB_REFRESH
        )
    except token_checks.StaleKeys as stale:
        claims, sub.token = await stale.retry()
    expires_at = claims.expires_at
    if claims.info:
        sub.chan_info = msgspec.Raw(claims.info)
        await session.update_presence(sub)  # presence shows the new chan_info at once
    session.set_sub_expiry(sub, expires_at)
    result = protocol.SubRefreshResult()
    if expires_at is not None:
        result.expires, result.ttl = True, ttl(expires_at)
    return result


async def _refresh_grant(
    session: Session, sub: Subscription, token: str
) -> protocol.SubRefreshResult:
    """sub_refresh of a subscription made with a bearer access token: the new token
    must be one too, for the same channel."""
    assert session.node.authority is not None
    try:
        grant = await session.node.authority.grant(token, sub.channel)
    except ClientError as exc:
        if exc.code == errors.TOKEN_EXPIRED.code:
            raise disconnects.SUBSCRIPTION_EXPIRED from None
        raise disconnects.INVALID_TOKEN from None
    if grant is None:
        raise disconnects.INVALID_TOKEN
    sub.grant, sub.token = grant, grant.token
    session.set_sub_expiry(sub, grant.expires_at)
    result = protocol.SubRefreshResult()
    if grant.expires_at is not None:
        result.expires, result.ttl = True, ttl(grant.expires_at)
    return result


async def server_refresh(session: Session, cmd: RefreshCommand) -> None:
    """Refresh on the server's initiative (server API ``refresh``)."""
    if cmd.expired:
        await session.disconnect(disconnects.EXPIRED())
        return
    if cmd.info:
        session.conn_info = cmd.info
        for sub in list(session.subs.values()):
            await session.update_presence(sub)
    if cmd.expire_at:
        session.set_expiry(cmd.expire_at)


HANDLERS: dict[str, Any] = {"refresh": refresh, "sub_refresh": sub_refresh}
