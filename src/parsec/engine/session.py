"""Session: one client connection — its state machine, commands and timers.

States: CONNECTING (until a successful ``connect``) → CONNECTED → CLOSED. A command
other than ``connect`` while CONNECTING, a second ``connect``, an unknown or malformed
command close the connection with 3501 (moves go through
:func:`parsec.engine.lifecycle.advance`). Commands of one frame are handled, and
answered, in order: ``connect`` and ``unsubscribe`` here, ``subscribe`` in
:mod:`parsec.engine.subscribe`, ``refresh`` and ``sub_refresh`` in
:mod:`parsec.engine.refresh`, the others in :mod:`parsec.engine.commands`; how a token
that fails is answered, in :mod:`parsec.engine.token_checks`. Problems the client
causes are counted and logged within a budget (:mod:`parsec.engine.faults`); only the
server's own faults are logged as errors.

Logger ``parsec.session`` writes one line per ``connect`` and ``disconnect`` at INFO
(the disconnect of a connection that never connected at DEBUG),
per ``subscribe`` and ``unsubscribe`` at DEBUG, with structured fields (``event``,
``client``, ``user``, ``transport``; ``channel`` for subscriptions; ``code`` and
``reason`` for unsubscribes and disconnects). Each is guarded by a level check: with
its level off a line costs that check and nothing else; nothing is logged per message.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from parsec.engine import commands, faults, protocol, refresh, subscribe, token_checks
from parsec.engine.codes import (
    ClientError,
    Disconnect,
    Unsubscribe,
    disconnects,
    errors,
)
from parsec.engine.codes import unsubscribes as unsub
from parsec.engine.lifecycle import advance
from parsec.engine.protocol import Command, MalformedCommand
from parsec.engine.revocation import TokenId
from parsec.engine.subscription import Subscription
from parsec.engine.token_checks import ON_CONNECT, ttl
from parsec.engine.tokens import ServerSubscription
from parsec.engine.types import EMPTY_RAW, ClientInfo

if TYPE_CHECKING:
    from parsec.engine.controller import RefreshCommand, SubscribeCommand
    from parsec.engine.node import Node
    from parsec.engine.transport import Transport

__all__ = ["Session", "SessionState", "new_client_id"]

log = logging.getLogger("parsec.session")

_MAX_COMMAND_ID = 2**32 - 1
"""Command ids are uint32 on the wire; anything outside that range is a bad request."""
_PEER_CLOSED = disconnects.CONNECTION_CLOSED()
"""How a connection the client closed (or lost) is logged."""


def new_client_id() -> str:
    """A random (version 4) UUID in its canonical text form, as ``str(uuid4())`` but
    several times cheaper: one is made per connection."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class SessionState(enum.Enum):
    """CONNECTING → CONNECTED → CLOSED; a session may close before it connects."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


_TRANSITIONS: Mapping[SessionState, frozenset[SessionState]] = {
    SessionState.CONNECTING: frozenset({SessionState.CONNECTED, SessionState.CLOSED}),
    SessionState.CONNECTED: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class Session:
    """One client connection. The transport feeds it frames (``handle_frame``) and it
    writes replies and pushes back through ``Transport.write``."""

    def __init__(self, node: Node, transport: Transport) -> None:
        self.node = node
        self.transport = transport
        self.client_id = new_client_id()
        self.user = ""
        self.state = SessionState.CONNECTING
        self.conn_info = EMPTY_RAW
        self.subs: dict[str, Subscription] = {}
        self.expires_at: int | None = None
        self.token: TokenId | None = None
        """The connection token, when the client connected with one: the connection is
        closed when it is revoked."""
        self.close_reason: Disconnect | None = None
        """Why the session closed (code and reason; 3000 when the peer closed or went
        away), or is about to close on the loop's next step; None while open."""
        self._connect_failed = False
        self._awaiting_pong = False
        self._loop = asyncio.get_running_loop()
        copts = node.options.client
        self._stale: asyncio.TimerHandle | None = self._loop.call_later(
            copts.stale_close_delay, self._on_stale
        )
        self._ping: asyncio.TimerHandle | None = None
        self._pong: asyncio.TimerHandle | None = None
        self._expire: asyncio.TimerHandle | None = None
        self._release: list[Subscription] = []
        self._cleanup: asyncio.Task[None] | None = None
        self.fault_lines = faults.LINES_PER_CONNECTION
        """How many more client problems of this connection may be logged at INFO."""

    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED

    def _advance(self, to: SessionState) -> None:
        """Move to state ``to``; IllegalTransition (a bug) where ``_TRANSITIONS`` forbids."""
        self.state = advance(f"session {self.client_id}", self.state, to, _TRANSITIONS)

    # --- identity ---------------------------------------------------------------

    def log_fields(self, event: str, **more: object) -> dict[str, object]:
        """The structured fields of this connection's log lines (no secret)."""
        return {
            "event": event,
            "client": self.client_id,
            "user": self.user,
            "transport": self.transport.name,
            **more,
        }

    def client_info(self, sub: Subscription | None = None) -> ClientInfo:
        chan_info = sub.chan_info if sub is not None else EMPTY_RAW
        return ClientInfo(self.user, self.client_id, self.conn_info, chan_info)

    # --- reading ----------------------------------------------------------------

    async def handle_frame(self, frame: bytes | str) -> None:
        """Handle every command of one inbound frame, in order."""
        if self.state is SessionState.CLOSED:
            return
        try:
            for command in protocol.decode_frame(frame):
                await self._dispatch(command)
                if self.is_closed:
                    return
        except MalformedCommand as exc:
            self.node.client_faults.report(
                faults.MALFORMED_COMMAND,
                self,
                "malformed command from client %s: %s; closing with 3501",
                self.client_id,
                exc,
            )
            await self.disconnect(disconnects.BAD_REQUEST())
        except Disconnect as d:
            if isinstance(d, disconnects.BAD_REQUEST):
                why = "; ".join(getattr(d, "__notes__", ())) or "bad request"
                self.node.client_faults.report(
                    faults.PROTOCOL_VIOLATION,
                    self,
                    "protocol violation by client %s: %s; closing with 3501",
                    self.client_id,
                    why,
                )
            await self.disconnect(d)

    async def _dispatch(self, cmd: Command) -> None:
        method = cmd.method
        if not 0 <= cmd.id <= _MAX_COMMAND_ID:
            raise _violation(f"command id {cmd.id} out of range")
        if method == "send" and self.state is SessionState.CONNECTED:
            await commands.send(self, cmd)
            return
        if cmd.id == 0:
            if method != "":
                raise _violation(f"{method} command without an id")
            self._on_pong()
            return
        if method == "":
            raise _violation("empty or unknown command")
        if self._connect_failed:
            raise _violation(f"{method} command after a refused connect")
        if (method == "connect") != (self.state is SessionState.CONNECTING):
            raise _violation(
                "second connect" if method == "connect" else f"{method} before connect"
            )
        handler = _HANDLERS[method]
        observer = self.node.observer
        try:
            result = await handler(self, getattr(cmd, method))
        except ClientError as exc:
            if method == "connect":
                self._connect_failed = True
                if observer is not None:
                    observer.connect_failed(self.transport.name)
            if exc.detail:
                self._log_refusal(method, exc)
            if observer is not None:
                observer.command(method, str(exc.code))
            self.write(protocol.encode_error(cmd.id, exc.code, exc.message, exc.temporary))
        except (Disconnect, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("command %s failed for client %s", method, self.client_id)
            e = errors.INTERNAL
            if observer is not None:
                observer.command(method, "internal")
            self.write(protocol.encode_error(cmd.id, e.code, e.message, e.temporary))
        else:
            if observer is not None:
                observer.command(method, "ok")
            if not self._try_write(protocol.encode_reply(cmd.id, method, result)):
                await self._reply_lighter(cmd, method, result)
        self.release_pending()

    def _log_refusal(self, method: str, exc: ClientError) -> None:
        """A command refused with a reason for the log (102, 103: the channel is in the
        message, the rule in ``detail``): a client-caused problem, logged within the
        budget of :mod:`parsec.engine.faults`."""
        self.node.client_faults.report(
            faults.REFUSED_COMMAND,
            self,
            "%s refused for client %s (user %r): %s (%s)",
            method,
            self.client_id,
            self.user,
            exc.message,
            exc.detail,
        )

    def release_after_reply(self, sub: Subscription) -> None:
        """Deliver what ``sub`` holds (``Subscription.pending``) once the reply to the
        command being handled is written."""
        self._release.append(sub)

    def release_pending(self) -> None:
        """Deliver what the subscriptions made since the last call hold: call it once
        their reply (or subscribe push) is written."""
        released, self._release = self._release, []
        for sub in released:
            if self.subs.get(sub.channel) is sub:
                sub.release()

    # --- writing ----------------------------------------------------------------

    def write(self, message: bytes) -> None:
        """Queue one message; a client whose queue overflows is disconnected (3008)."""
        if self.state is SessionState.CLOSED:
            return
        if not self.transport.write(message):
            self.schedule_disconnect(disconnects.SLOW())

    def _try_write(self, message: bytes) -> bool:
        """Queue one message; False, with nothing queued and the client still connected,
        when it does not fit the client's queue."""
        return self.state is SessionState.CLOSED or self.transport.write(message)

    async def _reply_lighter(self, cmd: Command, method: str, result: Any) -> None:
        """A reply too large for the client's queue. One that carries publications
        (recovered ones, a history page) is replaced by one without them, so that the
        client is not disconnected as slow (3008) and, reconnecting, asks for the same
        again: a subscribe or connect answers ``recovered: false`` at the stream's top
        (112 for a subscribe with ``flag & 2``, which then does not subscribe), a
        history read answers 106. Any other reply, or one still too large, is 3008."""
        lighter: bytes | None = None
        if method == "subscribe" and result.publications:
            request = cmd.subscribe
            assert request is not None
            if request.flag & 2:
                sub = self.subs.get(request.channel)
                if sub is not None:
                    await self.drop(sub)
                e = errors.UNRECOVERABLE_POSITION
                lighter = protocol.encode_error(cmd.id, e.code, e.message)
            else:
                result.publications, result.recovered = [], False
                lighter = protocol.encode_reply(cmd.id, method, result)
        elif method == "connect" and result.subs:
            recovered = [r for r in result.subs.values() if r.publications]
            for sub_result in recovered:
                sub_result.publications, sub_result.recovered = [], False
            if recovered:
                lighter = protocol.encode_reply(cmd.id, method, result)
        elif method == "history" and result.publications:
            e = errors.LIMIT_EXCEEDED
            lighter = protocol.encode_error(cmd.id, e.code, _HISTORY_TOO_LARGE)
        if lighter is None or not self._try_write(lighter):
            self.schedule_disconnect(disconnects.SLOW())

    def schedule_disconnect(self, d: Disconnect) -> None:
        """Disconnect from a context that cannot await (timers, fan-out): the session
        closes on the loop's next step and the node finishes its cleanup."""
        if self.state is not SessionState.CLOSED and self.close_reason is None:
            self.close_reason = d
            self._loop.call_soon(self.close, d)

    # --- connect ----------------------------------------------------------------

    async def _connect(self, req: protocol.ConnectRequest) -> protocol.ConnectResult:
        node = self.node
        subs_claims: tuple[ServerSubscription, ...] = ()
        expires_at: int | None = None
        if req.token:
            try:
                claims, self.token = token_checks.connection_token(self, req.token, ON_CONNECT)
            except token_checks.StaleKeys as stale:
                claims, self.token = await stale.retry()
                if self.state is not SessionState.CONNECTING:  # closed while fetching
                    raise disconnects.CONNECTION_CLOSED() from None
            self.user = claims.user
            if claims.info:
                self.conn_info = msgspec.Raw(claims.info)
            expires_at = claims.expires_at
            subs_claims = claims.subscriptions
        elif not node.options.auth.allow_anonymous:
            raise _violation("connect without a token (anonymous connections are off)")
        self._advance(SessionState.CONNECTED)
        self._cancel(self._stale)
        self._stale = None
        node.hub.add_session(self)
        if node.observer is not None:
            node.observer.connected(self.transport.name)
        if log.isEnabledFor(logging.DEBUG):  # the upgrade's access line is the INFO one
            log.debug("connect", extra=self.log_fields("connect"))
        self.set_expiry(expires_at)
        copts = node.options.client
        if copts.ping_interval > 0:
            self._ping = self._loop.call_later(copts.ping_interval, self._on_ping)
        result = protocol.ConnectResult(
            client=self.client_id,
            version=node.version,
            ping=round(copts.ping_interval),
            pong=copts.ping_interval > 0 and copts.pong_timeout > 0,
        )
        if expires_at is not None:
            result.expires, result.ttl = True, ttl(expires_at)
        if subs_claims:
            result.subs = await subscribe.server_side_subscribe(self, subs_claims, req.subs or {})
        return result

    def set_expiry(self, expires_at: int | None) -> None:
        """The connection expires at ``expires_at`` (None: never); past it, plus the
        ``expired_close_delay`` grace, it closes with 3005."""
        self._cancel(self._expire)
        self._expire = None
        self.expires_at = expires_at
        if expires_at is not None:
            delay = expires_at - time.time() + self.node.options.client.expired_close_delay
            self._expire = self._loop.call_later(max(delay, 0), self._on_expired)

    def _on_expired(self) -> None:
        if self.expires_at is not None and self.expires_at <= time.time():
            self.schedule_disconnect(disconnects.EXPIRED())

    # --- channels ---------------------------------------------------------------

    async def announce(self, sub: Subscription) -> None:
        """Record presence and send the join. If the subscription was dropped while
        that was under way (the session closed), undo both: nothing may outlive it."""
        opts, node = sub.resolved.options, self.node
        if opts.presence:
            await self._add_presence(sub)
        if opts.join_leave:
            await node.broker.publish_join(sub.channel, self.client_info(sub))
        if self.subs.get(sub.channel) is sub:
            sub.announced = True
        else:
            await self._unannounce(sub)

    async def update_presence(self, sub: Subscription) -> None:
        """Refresh a subscription's presence entry (its TTL and its ClientInfo)."""
        if sub.announced and sub.resolved.options.presence:
            await self._add_presence(sub)

    async def _add_presence(self, sub: Subscription) -> None:
        await self.node.presence.add_presence(
            sub.channel,
            self.client_id,
            self.client_info(sub),
            self.node.options.client.presence_ttl,
        )

    async def _unannounce(self, sub: Subscription) -> None:
        opts, node = sub.resolved.options, self.node
        if opts.presence:
            await node.presence.remove_presence(sub.channel, self.client_id, self.user)
        if opts.join_leave:
            await node.broker.publish_leave(sub.channel, self.client_info(sub))

    async def _unsubscribe(self, req: protocol.ChannelRequest) -> protocol.Empty:
        sub = self.subs.get(req.channel)
        if sub is not None:
            await self.drop(sub, unsub.CLIENT)
        return protocol.Empty()

    async def unsubscribe_channel(self, channel: str, reason: Unsubscribe) -> None:
        """Server-side unsubscribe: tell the client, then drop the subscription."""
        sub = self.subs.get(channel)
        if sub is None:
            return
        self.write(
            protocol.encode_push(channel, "unsubscribe", protocol.UnsubscribePush(*_u(reason)))
        )
        await self.drop(sub, reason)

    async def drop(self, sub: Subscription, why: Unsubscribe | None = None) -> None:
        """Forget a subscription: hub, broker, presence, leave. Idempotent. ``why`` is
        logged; None for a subscribe that failed midway."""
        if await self._forget(sub, why):
            await self._unannounce(sub)

    async def _forget(self, sub: Subscription, why: Unsubscribe | None = None) -> bool:
        """Forget a subscription here, in the hub and (after its channel's last local
        one) in the broker; whether its presence and leave are due. Idempotent."""
        if self.subs.get(sub.channel) is not sub:
            return False
        del self.subs[sub.channel]
        if why is not None and log.isEnabledFor(logging.DEBUG):
            fields = self.log_fields("unsubscribe", channel=sub.channel)
            log.debug("unsubscribe", extra={**fields, "code": why.code, "reason": why.reason})
        sub.cancel_expiry()
        await self.node.remove_subscription(sub)
        announced, sub.announced = sub.announced, False
        return announced

    def lost_position(self, sub: Subscription) -> None:
        """A publication did not follow the last one delivered: the client can no
        longer trust its state. Client subscriptions are asked to resubscribe (2500);
        server-side ones force a reconnect (3010)."""
        if sub.server_side:
            self.schedule_disconnect(disconnects.INSUFFICIENT_STATE())
            return
        sub.lost = True  # deliver nothing more: the subscription is going away
        self.node.cleanups.submit(self._unsubscribe_later(sub.channel, unsub.INSUFFICIENT_STATE))

    def revoked(self, sub: Subscription) -> None:
        """The token of a client-side subscription was revoked: end it (2501), from a
        context that cannot await."""
        if self.subs.get(sub.channel) is sub:
            self.node.cleanups.submit(self._unsubscribe_later(sub.channel, unsub.TOKEN_REVOKED))

    def set_sub_expiry(self, sub: Subscription, expires_at: int | None) -> None:
        """``sub`` expires at ``expires_at`` (None: never); past it, plus the grace, a
        client-side one is unsubscribed (2501), a server-side one disconnects (3006)."""
        sub.cancel_expiry()
        sub.expires_at = expires_at
        if expires_at is not None:
            delay = expires_at - time.time() + self.node.options.client.expired_sub_close_delay
            sub.expire_handle = self._loop.call_later(max(delay, 0), self._on_sub_expired, sub)

    def _on_sub_expired(self, sub: Subscription) -> None:
        if sub.expires_at is None or sub.expires_at > time.time():
            return
        if sub.server_side:
            self.schedule_disconnect(disconnects.SUBSCRIPTION_EXPIRED())
        else:
            self.node.cleanups.submit(self._unsubscribe_later(sub.channel, unsub.EXPIRED))

    async def _unsubscribe_later(self, channel: str, reason: Unsubscribe) -> None:
        """``unsubscribe_channel`` as one of the node's cleanups (from a timer or the
        fan-out, which cannot await it)."""
        try:
            await self.unsubscribe_channel(channel, reason)
        except Exception as exc:
            self.node.cleanups.failed(1, exc)

    async def server_subscribe(self, cmd: SubscribeCommand) -> None:
        """Subscribe on the server's initiative (server API ``subscribe``)."""
        await subscribe.server_subscribe(self, cmd)

    async def server_refresh(self, cmd: RefreshCommand) -> None:
        """Refresh on the server's initiative (server API ``refresh``)."""
        await refresh.server_refresh(self, cmd)

    # --- ping / pong / stale ----------------------------------------------------

    def _on_ping(self) -> None:
        copts = self.node.options.client
        self.write(protocol.PING)
        if copts.pong_timeout > 0 and not self._awaiting_pong:
            self._awaiting_pong = True
            self._pong = self._loop.call_later(copts.pong_timeout, self._on_no_pong)
        self._ping = self._loop.call_later(copts.ping_interval, self._on_ping)

    def _on_pong(self) -> None:
        if self.state is not SessionState.CONNECTED or not self._awaiting_pong:
            raise _violation("pong without a ping")
        self._awaiting_pong = False
        self._cancel(self._pong)
        self._pong = None

    def _on_no_pong(self) -> None:
        self.schedule_disconnect(disconnects.NO_PONG())

    def _on_stale(self) -> None:
        if self.state is SessionState.CONNECTING:
            self.schedule_disconnect(disconnects.STALE())

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()

    # --- closing ----------------------------------------------------------------

    def close(self, d: Disconnect | None = None) -> None:
        """Close now — with ``d`` while the connection is open, without when it is
        already gone — and hand the release of what the session holds elsewhere
        (node-level subscriptions, presence, leaves) to the node's cleanups, which run a
        bounded number at a time. Idempotent."""
        if self.state is SessionState.CLOSED:
            return
        if d is not None:
            self.close_reason = self.close_reason or d
            self.transport.close(d.code, d.reason)
        was_connected = self.state is SessionState.CONNECTED
        self._advance(SessionState.CLOSED)
        d = self.close_reason = self.close_reason or _PEER_CLOSED
        if log.isEnabledFor(logging.DEBUG):
            fields = self.log_fields("disconnect")
            log.debug("disconnect", extra={**fields, "code": d.code, "reason": d.reason})
        for handle in (self._stale, self._ping, self._pong, self._expire):
            self._cancel(handle)
        if was_connected:
            self.node.hub.remove_session(self)
            if self.node.observer is not None:
                self.node.observer.disconnected(self.transport.name, d.code)
        if self.subs:
            self._cleanup = self.node.cleanups.submit(self._release_all(list(self.subs.values())))

    async def disconnect(self, d: Disconnect) -> None:
        """Close with ``d`` and release everything the session holds; returns once
        released. Idempotent."""
        self.close(d)
        await self._released()

    async def closed(self) -> None:
        """The connection is gone (closed by us or by the peer): clean up; returns once
        released. Idempotent."""
        self.close()
        await self._released()

    async def _released(self) -> None:
        """Wait for the cleanup ``close`` started (a waiter's cancellation leaves it
        running: the node owns it)."""
        if self._cleanup is not None:
            await asyncio.shield(self._cleanup)

    async def _release_all(self, subs: list[Subscription]) -> None:
        """The cleanup of a closed session: drop each of its subscriptions. After the
        first failure (the broker is unreachable) the others are only forgotten here
        and in the hub: their presence expires, their leaves are lost (reported)."""
        error: Exception | None = None
        undone = 0
        for sub in subs:
            try:
                if error is None:
                    await self.drop(sub, unsub.DISCONNECT)
                elif await self._forget(sub, unsub.DISCONNECT):
                    undone += 1
            except Exception as exc:
                error = error or exc
                undone += 1
        if error is not None:
            self.node.cleanups.failed(undone, error)


def _violation(why: str) -> Disconnect:
    """A 3501 disconnect noting ``why`` for the log (the client gets "bad request")."""
    disconnect = disconnects.BAD_REQUEST()
    disconnect.add_note(why)
    return disconnect


_HISTORY_TOO_LARGE = (
    "history reply too large for the client's queue: ask for fewer publications (limit)"
)


def _u(reason: Unsubscribe) -> tuple[int, str]:
    return reason.code, reason.reason


_HANDLERS: dict[str, Any] = {
    "connect": Session._connect,
    "unsubscribe": Session._unsubscribe,
    **subscribe.HANDLERS,
    **refresh.HANDLERS,
    **commands.HANDLERS,
}
