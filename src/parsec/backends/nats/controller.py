"""The Controller on NATS: :class:`~parsec.engine.cluster.Cluster` over core NATS.

What goes to every node travels on ``<p>.control``; what goes to one node (survey
answers) on ``<p>.node.<node id>`` (``subjects.py``). The messages are
:mod:`parsec.engine.wire` envelopes; commands, node reports, surveys and the node
registry are the Cluster's (see its module docstring).

Everything is at-most-once: a node cut off from NATS misses what is sent meanwhile
(nats-py reconnects and re-subscribes by itself) and drops out of the others'
``nodes`` after ``node_ttl``. With a NATS cluster, a node that has just started is
known to the others once its first report crossed the cluster (milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parsec.backends.nats.connection import NatsConnection, barrier, translated
from parsec.backends.nats.subjects import DEFAULT_SUBJECT_PREFIX, Subjects
from parsec.engine.aio import cancel_and_wait
from parsec.engine.cluster import Cluster
from parsec.engine.controller import ControlTransport, Receiver
from parsec.errors import ParsecClientError

__all__ = ["NatsControlTransport", "NatsController"]

log = logging.getLogger("parsec.nats.controller")


class NatsControlTransport:
    """ControlTransport over core NATS.

    ``connection`` is borrowed unless ``release_connection`` is set (see NatsBroker).
    ``start`` returns once this node listens (when NATS answers within
    ``ready_timeout``; otherwise it listens in the background as soon as NATS is
    reachable). ``send`` returns once the NATS server has the message (a PING/PONG
    round trip after it, :func:`barrier`).
    """

    def __init__(
        self,
        connection: NatsConnection,
        *,
        prefix: str = DEFAULT_SUBJECT_PREFIX,
        release_connection: bool = False,
        ready_timeout: float = 5.0,
    ) -> None:
        self._conn = connection
        self._subjects = Subjects(prefix)
        self._release = release_connection
        self._ready_timeout = ready_timeout
        self._within = max(1, math.ceil(ready_timeout))
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._listening.is_set() and self._conn.connected

    async def start(self, node: str, receive: Receiver) -> None:
        if self._task is not None:
            raise RuntimeError("a control transport starts once")
        self._conn.open()
        self._task = asyncio.create_task(self._run(node, receive), name="parsec-nats-control")
        if await self._conn.settle_opening(self._ready_timeout):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ready_timeout):
                    await self._listening.wait()

    async def wait_listening(self) -> None:
        await self._listening.wait()
        while not self._conn.connected:
            with contextlib.suppress(ParsecClientError):
                await self._conn.wait_connected(3600.0)

    async def send(self, data: bytes, *, to: str | None = None) -> None:
        client = self._conn.client_now()
        subject = self._subjects.control if to is None else self._subjects.node(to)
        with translated("sending to the other nodes"):
            await client.publish(subject, data)
            await barrier(client, self._within)

    async def aclose(self) -> None:
        """Stop listening and give up the connection (when owned). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            await cancel_and_wait(self._task)
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self._release:
            await self._conn.release()

    async def _run(self, node: str, receive: Receiver) -> None:
        """Subscribe once NATS is reachable (nats-py re-subscribes after reconnects)."""
        client: Client | None = None
        while client is None:
            with contextlib.suppress(ParsecClientError):  # still down: keep waiting
                client = await self._conn.wait_connected(3600.0)

        async def deliver(msg: Msg) -> None:  # one task per subscription: in order
            await receive(msg.data)

        try:
            for subject in (self._subjects.control, self._subjects.node(node)):
                self._subs.append(await client.subscribe(subject, cb=deliver))
            await barrier(client, self._within)
        except Exception:
            log.exception("the controller could not subscribe; commands will not arrive")
            raise
        self._listening.set()


class NatsController(Cluster):
    """The Controller of the nodes sharing one NATS: a Cluster on a
    NatsControlTransport. One instance per node; ``clock`` (monotonic seconds) ages
    the reports."""

    def __init__(
        self,
        connection: NatsConnection,
        node_id: str,
        *,
        prefix: str = DEFAULT_SUBJECT_PREFIX,
        release_connection: bool = False,
        report_interval: float = 3.0,
        node_ttl: float = 10.0,
        ready_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        transport = NatsControlTransport(
            connection,
            prefix=prefix,
            release_connection=release_connection,
            ready_timeout=ready_timeout,
        )
        super().__init__(
            transport,
            node_id,
            report_interval=report_interval,
            node_ttl=node_ttl,
            ready_timeout=ready_timeout,
            clock=clock,
        )


_transport: type[ControlTransport] = NatsControlTransport
