"""Node: the heart of a Parsec process.

A Node owns the Hub (local sessions and subscriptions), the Broker (pub/sub and
history), the PresenceManager and the Controller (commands between nodes), and
implements the publish path: resolve the channel's options, let the broker append
to history and assign the position, fan out to local subscribers.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from parsec.engine.aio import cancel_and_wait
from parsec.engine.auth_log import AuthFailures
from parsec.engine.authority import ChannelAuthority
from parsec.engine.broker import Broker, HistoryFilter, HistoryResult, PublishOptions
from parsec.engine.channel import (
    ChannelOptions,
    ChannelResolver,
    ResolvedChannel,
    has_safe_characters,
)
from parsec.engine.cleanup import Cleanups
from parsec.engine.codes import Disconnect, disconnects, errors
from parsec.engine.codes import unsubscribes as unsub
from parsec.engine.commands import RPCCall
from parsec.engine.controller import (
    ControlCommand,
    Controller,
    DisconnectCommand,
    NodeInfo,
    RefreshCommand,
    RevokeCommand,
    SubscribeCommand,
    SurveyReply,
    UnsubscribeCommand,
)
from parsec.engine.faults import ClientFaults
from parsec.engine.hub import Hub
from parsec.engine.lifecycle import RUN_TRANSITIONS, RunState, advance
from parsec.engine.observer import EngineObserver
from parsec.engine.presence import PresenceManager, PresenceStats
from parsec.engine.revocation import REVOCATIONS_SURVEY, TokenRevocations
from parsec.engine.session import Session
from parsec.engine.settings import EngineSettings
from parsec.engine.subscription import Subscription
from parsec.engine.tokens import Verifier
from parsec.engine.types import ClientInfo, Publication, StreamPosition

__all__ = ["Node", "RPCHandler"]

log = logging.getLogger("parsec.node")
_NO_HISTORY = PublishOptions()
"""How a publication without history or idempotency key is kept (made once)."""

RPCHandler = Callable[[RPCCall], Awaitable[Any]]

CHANNELS_SURVEY = "channels"
"""The survey a node answers with its channels: the request is a JSON glob pattern
string, the answer a JSON object of channel → local subscriber count."""
SURVEY_TIMEOUT = 2.0
"""How long a cluster-wide question waits for the other nodes' answers."""
RECHECK_DELAY = 0.05
"""Seconds between a change of the revocations and the re-check of the live
connections: changes arriving meanwhile share one pass over the sessions."""

_encode = msgspec.json.encode
_pattern = msgspec.json.Decoder(str)
_counts = msgspec.json.Decoder(dict[str, int])


class Node:
    """One Parsec process's engine. Use as an async context manager, or call
    ``start`` and ``aclose``; the backends it is given are not closed by the node.

    Everything above the engine comes in through contracts: ``options`` (read-only
    settings, :class:`parsec.options.Options` in practice), ``verifier`` (tokens),
    ``rules`` (channel names, :class:`parsec.channels.namespaces.ChannelRules`) and the
    backends (``parsec.backends``). ``version`` is what :meth:`node_info` reports."""

    def __init__(
        self,
        options: EngineSettings,
        verifier: Verifier,
        *,
        rules: ChannelResolver,
        broker: Broker,
        presence: PresenceManager,
        controller: Controller,
        authority: ChannelAuthority | None = None,
        revocations: TokenRevocations | None = None,
        node_id: str | None = None,
        version: str = "",
    ) -> None:
        self.id = node_id or str(uuid.uuid4())
        self.authority = authority
        self.revocations = revocations
        self.options = options
        self.verifier = verifier
        self.version = version
        self.rules = rules
        self._max_publication_size = options.server.max_publication_size
        self.hub = Hub()
        self.client_faults = ClientFaults()
        self.published: dict[str, int] = {}
        """Publications this node accepted, by namespace (``""``: none), since it started."""
        """Problems clients caused, counted by reason (``client_faults.counts``)."""
        self.auth_failures = AuthFailures()
        """The ``auth_failure`` log lines of this node (:mod:`parsec.engine.auth_log`)."""
        self.broker = broker
        self.presence = presence
        self.controller = controller
        self.rpc_handlers: dict[str, RPCHandler] = {}
        self.message_handler: RPCHandler | None = None
        self.publish_gate: Callable[[], None] | None = None
        """Called before each publication this node accepts (from a client or an API);
        raises a ClientError (111 too many requests) to refuse it. None: no gate."""
        self.observer: EngineObserver | None = None
        """Told about publications, commands, connections and subscriptions (metrics);
        None: nobody, at the cost of one test per event."""
        self._broker_channels: set[str] = set()
        self._channel_locks: dict[str, _ChannelLock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # half the broker's connections at most: the rest stays free for publishing
        self.cleanups = Cleanups(
            max(1, options.broker.pool_size // 2), presence_ttl=options.client.presence_ttl
        )
        self._recheck: asyncio.TimerHandle | None = None
        self._started_at = time.monotonic()
        self._state = RunState.NEW

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start once (a second start raises IllegalTransition, a RuntimeError)."""
        self._state = advance("node", self._state, RunState.RUNNING, RUN_TRANSITIONS)
        await self.broker.start(self)
        await self.controller.start(self)
        self.spawn(self._refresh_presence(), name="parsec-presence-refresh")

    async def aclose(self) -> None:
        """Disconnect every session (3001 shutdown), cancel every task the node owns
        (:meth:`spawn`) and wait for them, then for the sessions' cleanups (presence
        removed, leaves sent: at most ``cleanup.DRAIN_TIMEOUT``). Idempotent."""
        if self._state is RunState.CLOSED:
            return
        self._state = advance("node", self._state, RunState.CLOSED, RUN_TRANSITIONS)
        if self._recheck is not None:
            self._recheck.cancel()
        for session in self.hub.sessions():
            session.close(disconnects.SHUTDOWN())
        await cancel_and_wait(*self._tasks)
        await self.cleanups.drain()

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the node owns: kept until it ends, cancelled and
        waited for by :meth:`aclose`. A task that fails (other than by cancellation) is
        logged on ``parsec.node`` with its traceback; nobody else needs to await it.

        Cheap enough for once per inbound frame (a task, a set entry, a done callback);
        never call it on the fan-out path. Raises RuntimeError (and closes ``coro``) on a
        closed node: nothing may start after :meth:`aclose`."""
        if self._state is RunState.CLOSED:
            coro.close()
            raise RuntimeError("the node is closed: it starts no more tasks")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # while the node closes, cancel_and_wait reports failures: never twice
        if self._state is RunState.CLOSED or task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.error("node task %s failed", task.get_name(), exc_info=exc)

    @property
    def running(self) -> bool:
        return self._state is RunState.RUNNING

    @property
    def healthy(self) -> bool:
        """Running, and the broker (when it can tell) is connected."""
        return self.running and bool(getattr(self.broker, "connected", True))

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def new_session(self, transport: Any) -> Session:
        """A session for a newly accepted connection."""
        return Session(self, transport)

    # --- broker events (BrokerEventHandler) -------------------------------------

    def handle_publication(self, channel: str, pub: Publication, position: StreamPosition) -> None:
        self.hub.broadcast_publication(channel, pub, position)

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self.hub.broadcast_join_leave(channel, "join", info)

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self.hub.broadcast_join_leave(channel, "leave", info)

    def handle_gap(self, channel: str) -> None:
        """Positioned subscribers lose their position: 2500 (client side) or 3010."""
        for sub in self.hub.subscribers(channel):
            if sub.positioned and sub.pending is None and not sub.lost:
                sub.session.lost_position(sub)

    # --- subscriptions ----------------------------------------------------------

    async def add_subscription(self, sub: Subscription) -> None:
        """Register a subscription; subscribe the node on its channel's first one."""
        first = self.hub.add_subscription(sub)
        if self.observer is not None:
            self.observer.subscribed(sub.resolved, first)
        if sub.channel in self._broker_channels:
            return
        async with self._lock(sub.channel):
            if sub.channel not in self._broker_channels and self.hub.has_subscribers(sub.channel):
                await self.broker.subscribe(sub.channel)
                self._broker_channels.add(sub.channel)

    async def remove_subscription(self, sub: Subscription) -> None:
        """Unregister a subscription; unsubscribe the node after its channel's last."""
        observer = self.observer if self.hub.holds(sub) else None
        last = self.hub.remove_subscription(sub)
        if observer is not None:
            observer.unsubscribed(sub.resolved, last)
        if not last:
            return
        async with self._lock(sub.channel):
            if sub.channel in self._broker_channels and not self.hub.has_subscribers(sub.channel):
                self._broker_channels.discard(sub.channel)
                await self.broker.unsubscribe(sub.channel)

    def _lock(self, channel: str) -> _ChannelLock:
        lock = self._channel_locks.get(channel)
        if lock is None:
            lock = self._channel_locks[channel] = _ChannelLock(self._channel_locks, channel)
        return lock

    # --- publish, history, presence ---------------------------------------------

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        info: ClientInfo | None = None,
        tags: dict[str, str] | None = None,
        skip_history: bool = False,
        idempotency_key: str = "",
        resolved: ResolvedChannel | None = None,
    ) -> StreamPosition:
        """Publish raw JSON ``data`` (compact, no raw newlines) to a channel.

        Returns the publication's stream position when the channel keeps history.
        Raises ClientError 102 / 107 for unknown or invalid channels,
        ``errors.PUBLICATION_TOO_LARGE`` (106) before anything is stored when ``data``
        and ``tags`` are over the channel's size limit, and whatever ``publish_gate``
        raises (111 too many requests) before anything else.
        """
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        try:
            if self.publish_gate is not None:
                self.publish_gate()
            resolved = resolved or self.rules.resolve(channel)
            opts = resolved.options
            if tags or len(data) > (opts.max_publication_size or self._max_publication_size):
                self.check_publication_size(opts, data, tags)
            if self.authority is not None and self.authority.manages(resolved):
                await self.authority.check_publish(channel)
            pub = Publication(data=msgspec.Raw(data), info=info, tags=tags or None)
            if opts.history_enabled and not skip_history:
                popts = PublishOptions(
                    history_size=opts.history_size,
                    history_ttl=opts.history_ttl,
                    history_meta_ttl=opts.history_meta_ttl,
                    idempotency_key=idempotency_key,
                )
            elif idempotency_key:
                popts = PublishOptions(idempotency_key=idempotency_key)
            else:
                popts = _NO_HISTORY
            if observer is None:
                position = await self.broker.publish(channel, pub, popts)
            else:
                sent = time.perf_counter()
                position = await self.broker.publish(channel, pub, popts)
                done = time.perf_counter()
                observer.published(_visibility(resolved), done - started, done - sent)
            namespace = resolved.namespace
            self.published[namespace] = self.published.get(namespace, 0) + 1
            return position
        except Exception:
            if observer is not None:
                observer.publish_failed(_visibility(resolved))
            raise

    def check_publication_size(
        self, options: ChannelOptions, data: bytes, tags: dict[str, str] | None = None
    ) -> None:
        """Raise ``errors.PUBLICATION_TOO_LARGE`` (106) when ``data`` plus ``tags``
        (encoded as JSON) are over the limit of a channel with ``options``. Once per
        publication, on bytes the caller already has; tags are encoded only when given."""
        limit = options.max_publication_size or self._max_publication_size
        size = len(data) + len(_encode(tags)) if tags else len(data)
        if size > limit:
            raise errors.PUBLICATION_TOO_LARGE(
                message=f"publication too large: {size} bytes, the limit is {limit}"
            )

    async def history(
        self,
        channel: str,
        *,
        limit: int = 0,
        since: StreamPosition | None = None,
        reverse: bool = False,
        resolved: ResolvedChannel | None = None,
    ) -> HistoryResult:
        """Read a channel's history. ``limit`` < 0 or above the configured maximum is
        clamped to the maximum; 0 returns only the position. A ``since`` position in
        another epoch raises 112."""
        opts = (resolved or self.rules.resolve(channel)).options
        if not opts.history_enabled:
            raise errors.NOT_AVAILABLE
        cap = self.options.client.history_max_publication_limit
        if limit < 0 or limit > cap:
            limit = cap
        result = await self.broker.history(
            channel, HistoryFilter(since=since, limit=limit, reverse=reverse), opts.history_meta_ttl
        )
        if since is not None and since.epoch and since.epoch != result.position.epoch:
            raise errors.UNRECOVERABLE_POSITION
        return result

    async def remove_history(self, channel: str) -> None:
        if not self.rules.resolve(channel).options.history_enabled:
            raise errors.NOT_AVAILABLE
        await self.broker.remove_history(channel)

    async def presence_of(self, channel: str) -> dict[str, ClientInfo]:
        if not self.rules.resolve(channel).options.presence:
            raise errors.NOT_AVAILABLE
        return await self.presence.presence(channel)

    async def presence_stats_of(self, channel: str) -> PresenceStats:
        if not self.rules.resolve(channel).options.presence:
            raise errors.NOT_AVAILABLE
        return await self.presence.presence_stats(channel)

    def channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with subscribers on this node and their local subscriber counts;
        ``pattern`` is a glob (``chat:*``)."""
        return {
            ch: n
            for ch, n in self.hub.channels()
            if not pattern or fnmatch.fnmatchcase(ch, pattern)
        }

    async def cluster_channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with subscribers on any node, with subscriber counts summed over
        the nodes; a node that does not answer within SURVEY_TIMEOUT is left out."""
        replies = await self.controller.survey(
            CHANNELS_SURVEY, _encode(pattern), timeout=SURVEY_TIMEOUT
        )
        merged = self.channels(pattern)
        for reply in replies:
            for ch, n in _channel_counts(reply).items():
                merged[ch] = merged.get(ch, 0) + n
        return merged

    # --- user-level commands (applied here and on every other node) -------------

    async def disconnect_user(self, cmd: DisconnectCommand) -> None:
        await self._apply(cmd)
        await self.controller.broadcast(cmd)

    async def unsubscribe_user(self, cmd: UnsubscribeCommand) -> None:
        """Unsubscribe a user everywhere. The channel need not resolve (unsubscribing
        from nothing is no error), but a name no channel can have is 107."""
        if not has_safe_characters(cmd.channel):
            raise errors.BAD_REQUEST
        await self._apply(cmd)
        await self.controller.broadcast(cmd)

    async def subscribe_user(self, cmd: SubscribeCommand) -> None:
        self.rules.resolve(cmd.channel)  # 102 / 107 before anything is sent anywhere
        await self._apply(cmd)
        await self.controller.broadcast(cmd)

    async def refresh_user(self, cmd: RefreshCommand) -> None:
        await self._apply(cmd)
        await self.controller.broadcast(cmd)

    async def unsubscribe_channel(self, channel: str) -> None:
        """Unsubscribe every local subscriber of a channel (2000): the channel is gone."""
        for sub in self.hub.subscribers(channel):
            await sub.session.unsubscribe_channel(channel, unsub.SERVER)

    async def handle_control(self, command: ControlCommand) -> None:
        if isinstance(command, RevokeCommand):
            if self.revocations is not None:
                await self.revocations.handle_command(command)
            return
        await self._apply(command)

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        """Answer another node's survey. Raises ValueError for an unknown ``op`` and
        msgspec.DecodeError for a malformed request."""
        if op == CHANNELS_SURVEY:
            return _encode(self.channels(_pattern.decode(data)))
        if op == REVOCATIONS_SURVEY and self.revocations is not None:
            return self.revocations.survey_answer()
        raise ValueError(f"unknown survey {op!r}")

    # --- revocations --------------------------------------------------------------

    def revocations_changed(self) -> None:
        """The revocations changed: within ``RECHECK_DELAY`` re-check every live
        connection and subscription. A connection whose token is revoked is closed (3005
        "token revoked"), a client-side subscription whose token is revoked is ended
        (unsubscribe 2501). One pass over this node's sessions serves every change made
        meanwhile (at most 20 passes a second, whatever the rate of revocations); never
        per message. The closing happens in tasks of their own."""
        if self.revocations is None or self._recheck is not None or self._state is RunState.CLOSED:
            return
        loop = asyncio.get_running_loop()
        self._recheck = loop.call_later(RECHECK_DELAY, self._recheck_revocations)

    def _recheck_revocations(self) -> None:
        self._recheck = None
        revocations = self.revocations
        if revocations is None:
            return
        for session in self.hub.sessions():
            token = session.token
            if token is not None and revocations.connection_revoked(token):
                session.schedule_disconnect(disconnects.TOKEN_REVOKED())
                continue
            for sub in list(session.subs.values()):
                token = sub.token
                if (
                    token is not None
                    and not sub.server_side
                    and revocations.subscription_revoked(token, sub.channel)
                ):
                    session.revoked(sub)

    async def _apply(
        self, cmd: DisconnectCommand | UnsubscribeCommand | SubscribeCommand | RefreshCommand
    ) -> None:
        for session in self.hub.user_sessions(cmd.user):
            if cmd.client and session.client_id != cmd.client:
                continue
            if isinstance(cmd, DisconnectCommand):
                if session.client_id not in cmd.whitelist:
                    await session.disconnect(Disconnect(cmd.code, cmd.reason))
            elif isinstance(cmd, UnsubscribeCommand):
                await session.unsubscribe_channel(cmd.channel, unsub.SERVER)
            elif isinstance(cmd, SubscribeCommand):
                await session.server_subscribe(cmd)
            else:
                await session.server_refresh(cmd)

    # --- node info --------------------------------------------------------------

    def node_info(self) -> NodeInfo:
        hub = self.hub
        return NodeInfo(
            uid=self.id,
            name=self.options.node_name,
            version=self.version,
            num_clients=hub.num_clients,
            num_users=hub.num_users,
            num_channels=hub.num_channels,
            num_subs=hub.num_subs,
            uptime=int(time.monotonic() - self._started_at),
        )

    async def info(self) -> list[NodeInfo]:
        """This node and every other live node of the cluster."""
        return [self.node_info(), *await self.controller.nodes()]

    # --- background -------------------------------------------------------------

    async def _refresh_presence(self) -> None:
        """Keep every presence entry of this node's sessions from expiring."""
        while True:
            await asyncio.sleep(self.options.client.presence_update_interval)
            for session in self.hub.sessions():
                for sub in list(session.subs.values()):
                    try:
                        await session.update_presence(sub)
                    except Exception:
                        log.exception("presence refresh failed for %r", sub.channel)


def _visibility(resolved: ResolvedChannel | None) -> str:
    """A publication's ``channel_visibility`` label."""
    if resolved is None:
        return "unknown"
    return "private" if resolved.token_required else "public"


def _channel_counts(reply: SurveyReply) -> dict[str, int]:
    """A node's answer to the channels survey; empty (logged) when malformed."""
    try:
        return _counts.decode(reply.data)
    except msgspec.DecodeError:
        log.warning("malformed channels answer from node %s ignored", reply.node)
        return {}


class _ChannelLock:
    """A per-channel lock that exists only while someone holds or waits for it, so
    that node-level broker subscribe / unsubscribe of one channel never interleave."""

    __slots__ = ("_channel", "_lock", "_locks", "_users")

    def __init__(self, locks: dict[str, _ChannelLock], channel: str) -> None:
        self._locks = locks
        self._channel = channel
        self._lock = asyncio.Lock()
        self._users = 0

    async def __aenter__(self) -> None:
        self._users += 1
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._users -= 1
        if self._users == 0:
            self._locks.pop(self._channel, None)
