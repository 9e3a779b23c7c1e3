"""Opening (and closing) many load-generator connections.

``open_conns`` connects ``count`` connections with at most ``concurrency`` handshakes in
flight, each one through the WebSocket upgrade, the protocol handshake and, when a
channel is given, a confirmed subscription. A connection that fails is counted by
reason, never raised: a workload reports how many it holds.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from picows import WSError, ws_connect

from bench.loadgen.adapters import ADAPTERS, Conn
from bench.loadgen.adapters.base import ConnectRefused
from bench.loadgen.latency import Sink
from bench.loadgen.spec import Target

__all__ = ["Opened", "close_all", "open_conns", "open_one", "raise_nofile_limit"]

HANDSHAKE_TIMEOUT = 15.0


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass(slots=True)
class Opened:
    """The connections that opened, the failures by reason, and how long it took."""

    conns: list[Conn] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    handshake_ns: list[int] = field(default_factory=list)
    """Per connection: from the TCP connect to a confirmed protocol handshake."""

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


async def open_one(
    target: Target, sink: Sink, token: str | None, channel: str | None
) -> tuple[Conn, int]:
    """One connection, handshaken (and subscribed to ``channel``); with its handshake
    time in ns. Raises ConnectRefused, WSError, OSError or TimeoutError."""
    cls = ADAPTERS[target.adapter]
    url = f"ws://{target.host}:{target.port}{cls.path}"
    query = cls.query(token)
    if query:
        url += ("&" if "?" in url else "?") + query[1:]
    started = time.perf_counter_ns()
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        _, listener = await ws_connect(
            lambda: cls(sink, token),
            url,
            enable_auto_pong=False,
            websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
        )
        assert isinstance(listener, Conn)
        try:
            await listener.ready
            handshake = time.perf_counter_ns() - started
            if channel is not None:
                await listener.subscribe(channel)
        except BaseException:
            listener.close()
            raise
    return listener, handshake


async def open_conns(
    target: Target,
    sink: Sink,
    count: int,
    *,
    concurrency: int,
    channel_of: Callable[[int], str | None],
    token_of: Callable[[int], str | None] = lambda i: None,
) -> Opened:
    """Open ``count`` connections; connection ``i`` uses ``token_of(i)`` and subscribes
    to ``channel_of(i)`` (None: no subscription)."""
    opened = Opened()
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            try:
                conn, handshake = await open_one(target, sink, token_of(i), channel_of(i))
            except ConnectRefused as exc:
                opened.fail(str(exc))
            except (WSError, OSError, TimeoutError) as exc:
                opened.fail(type(exc).__name__)
            else:
                opened.conns.append(conn)
                opened.handshake_ns.append(handshake)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())
    opened.seconds = time.perf_counter() - started
    return opened


def close_all(conns: list[Conn]) -> None:
    """Drop every connection at once (no close handshake: the measurement is over)."""
    for conn in conns:
        conn.close()
