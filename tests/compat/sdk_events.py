"""Record centrifuge-python events so that tests can await them instead of sleeping.

An ``EventLog`` is passed as ``events`` to ``centrifuge.Client`` or to
``Client.new_subscription``: the SDK looks handlers up by name (``on_connected``,
``on_publication``, ...), and the union of the client and subscription handler names
is implemented here. Each event is kept in order (``seen``) and queued per kind, so
``await log.next("publication")`` returns the next one or fails the test after a
timeout with a summary of what did arrive.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import centrifuge

from .parsec_process import ParsecServer

__all__ = ["EVENT_TIMEOUT", "EventLog", "Hook", "sdk_client"]

EVENT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0

Hook = Callable[[Any], Awaitable[None]]


class EventLog:
    """Every event an SDK object reported, in order, and a queue per event kind.

    ``hooks[kind]`` (optional) is awaited with the event context before the event is
    recorded; the SDK awaits the handler, so a hook holds the SDK at that point (for
    example, a ``connecting`` hook runs before the SDK schedules its reconnect).
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.hooks: dict[str, Hook] = {}
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)

    def of(self, kind: str) -> list[Any]:
        """The contexts of every ``kind`` event so far, oldest first."""
        return [ctx for seen_kind, ctx in self.seen if seen_kind == kind]

    async def next(self, kind: str, within: float = EVENT_TIMEOUT) -> Any:
        """The next ``kind`` event not returned yet; fails the test after ``within`` seconds."""
        try:
            return await asyncio.wait_for(self._queues[kind].get(), within)
        except TimeoutError:
            summary = ", ".join(f"{k}: {ctx!r}" for k, ctx in self.seen) or "nothing"
            raise AssertionError(
                f"no {kind!r} event within {within}s; events so far: {summary}"
            ) from None

    async def until(
        self, kind: str, matches: Callable[[Any], bool], within: float = EVENT_TIMEOUT
    ) -> Any:
        """The next ``kind`` event for which ``matches`` is true, skipping the others."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            ctx = await self.next(kind, max(remaining, 0.0))
            if matches(ctx):
                return ctx

    async def _record(self, kind: str, ctx: Any) -> None:
        hook = self.hooks.get(kind)
        if hook is not None:
            await hook(ctx)
        self.seen.append((kind, ctx))
        self._queues[kind].put_nowait(ctx)

    async def on_connecting(self, ctx: Any) -> None:
        await self._record("connecting", ctx)

    async def on_connected(self, ctx: Any) -> None:
        await self._record("connected", ctx)

    async def on_disconnected(self, ctx: Any) -> None:
        await self._record("disconnected", ctx)

    async def on_error(self, ctx: Any) -> None:
        await self._record("error", ctx)

    async def on_subscribing(self, ctx: Any) -> None:
        await self._record("subscribing", ctx)

    async def on_subscribed(self, ctx: Any) -> None:
        await self._record("subscribed", ctx)

    async def on_unsubscribed(self, ctx: Any) -> None:
        await self._record("unsubscribed", ctx)

    async def on_publication(self, ctx: Any) -> None:
        await self._record("publication", ctx)

    async def on_join(self, ctx: Any) -> None:
        await self._record("join", ctx)

    async def on_leave(self, ctx: Any) -> None:
        await self._record("leave", ctx)


@asynccontextmanager
async def sdk_client(
    server: ParsecServer,
    user: str = "alice",
    *,
    token: str | None = None,
    get_token: Callable[[], Awaitable[str]] | None = None,
    info: object = None,
) -> AsyncIterator[tuple[Any, EventLog]]:
    """A not yet connected ``centrifuge.Client`` for ``server`` with its event log.

    Without ``token`` it carries a valid one-hour connection token for ``user`` (with
    ``info`` as the token's ``info`` claim). The client is disconnected on exit.
    """
    events = EventLog()
    client = centrifuge.Client(
        server.ws_url,
        events=events,
        token=server.connection_token(user, info=info) if token is None else token,
        get_token=get_token,
        proxy=None,
    )
    try:
        yield client, events
    finally:
        # disconnect() closes the WebSocket in a task it does not await; wait for
        # that task so the socket is closed before the test's event loop ends.
        before = asyncio.all_tasks()
        await client.disconnect()
        closing = asyncio.all_tasks() - before
        if closing:
            await asyncio.wait(closing, timeout=CLOSE_TIMEOUT)
