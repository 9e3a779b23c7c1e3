"""Draining: how a Parsec stops without dropping anybody (``Parsec.drain``).

::

    drain(timeout)
      ├─ draining = True            /healthz answers 503 "draining" from now on
      ├─ listener.stop_accepting()  each listener (parsec serve's) refuses new connections
      ├─ 3001 shutdown              every client told to reconnect (elsewhere)
      ├─ wait: in-flight requests   the listeners' HTTP calls under way finish
      ├─ wait: sink queue           background deliveries finish (DeliveryQueue.drain)
      └─ listener.finish()          the listeners close what is left and stop

Connections already open before the drain (a load balancer's keep-alive health checks)
stay open until the end, so they see ``/healthz`` answer 503.

All waiting shares one deadline, ``timeout`` seconds after the drain began. What is still
under way at the deadline is cut (requests cancelled, undelivered messages dead-lettered)
and named in one WARNING on ``parsec.drain``. A drain runs once: a second call waits for
the first one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Protocol

from parsec.engine.codes import disconnects
from parsec.engine.node import Node
from parsec.services.delivery import DeliveryQueue

__all__ = ["Drain", "Listener"]

log = logging.getLogger("parsec.drain")

_POLL: Final = 0.05
"""Seconds between looks at a listener's in-flight requests (uvicorn keeps no event)."""


class Listener(Protocol):
    """What serves HTTP for a Parsec (``parsec.server.runner.ReadyServer``), as a drain
    drives it. Every method is idempotent and never raises."""

    def stop_accepting(self) -> None:
        """Refuse new connections from now on; connections already open stay open."""

    def in_flight(self) -> int:
        """How many HTTP requests are under way."""

    def finish(self, *, cut: bool) -> None:
        """Close every connection and stop serving; with ``cut``, cancel the requests
        still under way instead of letting them end."""


class Drain:
    """The drain of one Parsec: its node's clients, the listeners serving it
    (:meth:`add_listener`) and its background delivery queue."""

    def __init__(self, node: Node, queue: DeliveryQueue) -> None:
        self._node = node
        self._queue = queue
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        """True from the moment a drain began."""
        return self._task is not None

    def add_listener(self, listener: Listener) -> None:
        """Drain ``listener`` too (a listener added during a drain stops at once)."""
        self._listeners.append(listener)
        if self._task is not None:
            listener.stop_accepting()
            listener.finish(cut=False)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def begin(self, timeout: float) -> asyncio.Task[None]:
        """Start draining within ``timeout`` seconds, unless a drain began already: the
        drain's task (this object owns it; :meth:`run` waits for it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._drain(timeout), name="parsec-drain"
            )
        return self._task

    async def run(self, timeout: float) -> None:  # noqa: ASYNC109 - bounds the drain
        """Drain within ``timeout`` seconds (the module docstring); a second call waits
        for the first drain to end. Never raises (but CancelledError)."""
        await asyncio.shield(self.begin(timeout))

    async def _drain(self, timeout: float) -> None:  # noqa: ASYNC109
        try:
            await self._steps(timeout)
        except Exception:  # aclose goes on closing whatever went wrong here
            log.exception("draining failed; closing without it")

    async def _steps(self, timeout: float) -> None:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        listeners = list(self._listeners)
        for listener in listeners:
            listener.stop_accepting()
        clients = self._node.hub.sessions()
        for session in clients:
            session.close(disconnects.SHUTDOWN())
        if listeners or clients:  # else nothing was served: nothing to say
            log.info("draining: %d client(s) told to reconnect (3001)", len(clients))
        requests = await _requests_left(listeners, deadline)
        if requests:  # the deadline passed
            _finish(listeners, cut=True)
        deliveries = await self._queue.drain(max(deadline - loop.time(), 0.0))
        _finish(listeners, cut=False)  # open keep-alive connections saw 503 until now
        if requests or deliveries:
            log.warning(
                "shutdown_timeout (%gs) passed while draining: %d HTTP request(s) cut, "
                "%d sink delivery(ies) dead-lettered",
                timeout,
                requests,
                deliveries,
            )


def _finish(listeners: list[Listener], *, cut: bool) -> None:
    for listener in listeners:
        listener.finish(cut=cut)


async def _requests_left(listeners: list[Listener], deadline: float) -> int:
    """Wait until no listener has a request in flight, or until ``deadline``: how many
    are left."""
    loop = asyncio.get_running_loop()
    while True:  # uvicorn sets no event when its last request ends: look every _POLL
        left = sum(listener.in_flight() for listener in listeners)
        if not left or loop.time() >= deadline:
            return left
        await asyncio.sleep(_POLL)
