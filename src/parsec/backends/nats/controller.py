"""NatsController: commands, node reports and surveys between the nodes sharing NATS.

* **Commands** travel on ``<p>.control`` as ``{"node": <sender>, "command": …}``; every
  node applies the commands of the others and drops its own echoes, in the order
  they were sent.
* **Node reports**: every node publishes its NodeInfo on ``<p>.nodes`` every
  ``report_interval`` seconds and keeps the reports of the others; ``nodes`` lists
  those heard from within ``node_ttl`` seconds. A starting node asks the others to
  report at once, and a stopping node says goodbye, so both show up (or drop out)
  without waiting for a heartbeat.
* **Surveys** go to ``<p>.survey`` with a reply inbox of their own; every other node
  answers there with its uid. ``survey`` returns when every node ``nodes`` lists has
  answered, or at the timeout, with at most one answer per node.

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
import uuid
from collections.abc import Callable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parsec.backends.nats.connection import NatsConnection, barrier, translated
from parsec.backends.nats.messages import Answer, Command, Question, Report, encode
from parsec.backends.nats.subjects import DEFAULT_SUBJECT_PREFIX, Subjects
from parsec.engine.aio import cancel_and_wait
from parsec.engine.controller import (
    ControlCommand,
    ControlEventHandler,
    Controller,
    NodeInfo,
    SurveyReply,
)
from parsec.errors import ParsecClientError

__all__ = ["NatsController"]

log = logging.getLogger("parsec.nats.controller")

_command = msgspec.json.Decoder(Command)
_report = msgspec.json.Decoder(Report)
_question = msgspec.json.Decoder(Question)
_answer = msgspec.json.Decoder(Answer)


class NatsController:
    """Controller over core NATS. One instance per node.

    ``connection`` is borrowed unless ``release_connection`` is set (see NatsBroker).
    ``start`` returns once this node listens and has announced itself (when NATS
    answers within ``ready_timeout``; otherwise that happens in the background as
    soon as NATS is reachable). ``clock`` (monotonic seconds) ages the reports.
    """

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
        self._conn = connection
        self._node_id = node_id
        self._subjects = Subjects(prefix)
        self._release = release_connection
        self._report_interval = report_interval
        self._node_ttl = node_ttl
        self._ready_timeout = ready_timeout
        self._clock = clock
        self._handler: ControlEventHandler | None = None
        self._reports: dict[str, tuple[float, NodeInfo]] = {}
        self._markers: dict[str, asyncio.Future[None]] = {}
        self._subs: list[Subscription] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    async def start(self, handler: ControlEventHandler) -> None:
        if self._handler is not None:
            raise RuntimeError("a controller starts once")
        self._handler = handler
        self._conn.open()
        self._task = asyncio.create_task(self._run(), name="parsec-nats-controller")
        if await self._conn.settle_opening(self._ready_timeout):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ready_timeout):
                    await self._listening.wait()

    async def broadcast(self, command: ControlCommand) -> None:
        client = self._conn.client_now()
        with translated("broadcasting a command"):
            await client.publish(self._subjects.control, encode(Command(self._node_id, command)))

    async def nodes(self) -> list[NodeInfo]:
        """The other nodes heard from within ``node_ttl``, by uid. Reports that NATS
        has already handed to this node are counted (a PING/PONG round trip first,
        when connected)."""
        await self._catch_up()
        return sorted((info for _, info in self._live()), key=lambda info: info.uid)

    async def survey(
        self,
        op: str,
        data: bytes,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109 (the Controller contract names it)
    ) -> list[SurveyReply]:
        """Ask every other node; raises PARSEC_BROKER_NOT_READY only when this node
        cannot reach NATS (slow or gone nodes are simply left out)."""
        client = self._conn.client_now()
        await self._catch_up()
        expected = {node for node, _ in self._live()}
        if not expected:
            return []
        answers: dict[str, bytes] = {}
        complete = asyncio.Event()

        async def collect(msg: Msg) -> None:
            try:
                answer = _answer.decode(msg.data)
            except msgspec.DecodeError:
                return
            if answer.node != self._node_id and answer.node not in answers:
                answers[answer.node] = answer.data
                if expected <= answers.keys():
                    complete.set()

        with translated("sending a survey"):
            inbox = await client.subscribe(client.new_inbox(), cb=collect)
        try:
            with translated("sending a survey"):
                question = encode(Question(self._node_id, op, data))
                await client.publish(self._subjects.survey, question, reply=inbox.subject)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await complete.wait()
        finally:
            with contextlib.suppress(Exception):
                await inbox.unsubscribe()
        return [SurveyReply(node, answer) for node, answer in answers.items()]

    async def sync(self) -> None:
        """Return once this node has handled every command NATS had delivered to it
        before the call (a marker sent to itself comes back after them); at once for a
        controller not started, or closed."""
        if self._handler is None:
            return
        client = await self._conn.wait_connected(self._ready_timeout)
        await asyncio.wait_for(self._listening.wait(), self._ready_timeout)
        marker = uuid.uuid4().hex
        seen = self._markers[marker] = asyncio.get_running_loop().create_future()
        try:
            with translated("synchronising"):
                await client.publish(
                    self._subjects.control, encode(Command(self._node_id, marker=marker))
                )
                async with asyncio.timeout(self._ready_timeout):
                    await seen
        finally:
            self._markers.pop(marker, None)

    async def aclose(self) -> None:
        """Say goodbye, stop listening and reporting. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._listening.is_set() and self._conn.connected:
            with contextlib.suppress(Exception):
                client = self._conn.client_now()
                await client.publish(
                    self._subjects.nodes, encode(Report(self._node_id, leaving=True))
                )
                await barrier(client, 1)
        tasks = [task for task in (self._task, *self._answering) if task is not None]
        await cancel_and_wait(*tasks)
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._handler = None
        if self._release:
            await self._conn.release()

    # --- background -------------------------------------------------------------

    async def _run(self) -> None:
        """Listen once NATS is reachable, then report every ``report_interval``."""
        client: Client | None = None
        while client is None:
            with contextlib.suppress(ParsecClientError):  # still down: keep waiting
                client = await self._conn.wait_connected(3600.0)
        try:
            await self._listen(client)
        except Exception:
            log.exception("the controller could not subscribe; commands will not arrive")
            raise
        self._listening.set()
        ask = True
        while True:
            try:
                await self._report(client, ask=ask)
                ask = False
            except Exception as exc:  # down: reported again at the next interval
                log.debug("node report failed: %r", exc)
            await asyncio.sleep(self._report_interval)

    async def _listen(self, client: Client) -> None:
        subjects = self._subjects
        for subject, receive in (
            (subjects.control, self._on_command),
            (subjects.nodes, self._on_report),
            (subjects.survey, self._on_question),
        ):
            self._subs.append(await client.subscribe(subject, cb=receive))
        await barrier(client, max(1, math.ceil(self._ready_timeout)))

    async def _report(self, client: Client, *, ask: bool = False) -> None:
        handler = self._handler
        if handler is None or not client.is_connected:
            return
        report = Report(self._node_id, handler.node_info(), ask=ask)
        await client.publish(self._subjects.nodes, encode(report))
        if ask:
            await barrier(client, max(1, math.ceil(self._ready_timeout)))

    async def _catch_up(self) -> None:
        """Let the reports NATS already sent this node be handled first."""
        if self._conn.connected and self._listening.is_set():
            with contextlib.suppress(Exception):
                await barrier(self._conn.client_now(), 1)

    def _live(self) -> list[tuple[str, NodeInfo]]:
        now = self._clock()
        stale = [node for node, (at, _) in self._reports.items() if now - at > self._node_ttl]
        for node in stale:
            del self._reports[node]
        return [(node, info) for node, (_, info) in self._reports.items()]

    # --- receiving (one task per subscription: each subject in order) ----------

    async def _on_command(self, msg: Msg) -> None:
        try:
            envelope = _command.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable control message dropped")
            return
        if envelope.node == self._node_id:
            seen = self._markers.get(envelope.marker) if envelope.marker else None
            if seen is not None and not seen.done():
                seen.set_result(None)
            return
        handler = self._handler
        if handler is None or envelope.command is None:
            return
        try:
            await handler.handle_control(envelope.command)
        except Exception:
            log.exception("control command %r failed", type(envelope.command).__name__)

    async def _on_report(self, msg: Msg) -> None:
        try:
            report = _report.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable node report dropped")
            return
        if report.node == self._node_id:
            return
        if report.leaving:
            self._reports.pop(report.node, None)
            return
        if report.info is not None:
            self._reports[report.node] = (self._clock(), report.info)
        if report.ask and self._conn.connected:
            with contextlib.suppress(Exception):
                await self._report(self._conn.client_now())

    async def _on_question(self, msg: Msg) -> None:
        try:
            question = _question.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable survey dropped")
            return
        if question.node == self._node_id or not msg.reply:
            return
        task = asyncio.create_task(self._answer(question, msg.reply))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, question: Question, reply: str) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            data = await handler.handle_survey(question.op, question.data)
        except Exception:
            log.exception("answering survey %r failed", question.op)
            return
        with contextlib.suppress(Exception):  # the asker may be gone: nothing to tell
            await self._conn.client_now().publish(reply, encode(Answer(self._node_id, data)))


_controller: type[Controller] = NatsController
