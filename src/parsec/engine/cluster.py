"""Cluster: the Controller of every distributed backend, written once.

The node registry, node reports, surveys and control envelopes live here, on top of a
:class:`~parsec.engine.controller.ControlTransport` — all a backend provides is a way
to send bytes to every node or to one node (Redis pub/sub channels, NATS subjects, a
:class:`~parsec.backends.memory.MemoryControlHub` in one process). **A new backend
needs only its transports and its history**: this transport for the Controller, and
for the Broker a fan-out that carries :mod:`parsec.engine.wire` channel messages and
hands what arrives to :class:`parsec.engine.dispatch.ChannelDispatch`, plus history if it
keeps one. Everything nodes send each other is in :mod:`parsec.engine.wire`.

* **Commands** go to every node as ``Envelope(node, command=…)``; every node applies
  the commands of the others, in the order they were sent, and drops its own.
* **Node reports**: every node sends its NodeInfo to every node each
  ``report_interval`` seconds and keeps the last report of each other node;
  :meth:`Cluster.nodes` lists those heard from within ``node_ttl`` seconds. A starting
  node asks the others to report at once, and a stopping node says goodbye, so both
  show up (or drop out) without waiting for a heartbeat.
* **Surveys**: a question goes to every node; every other node answers to the asker
  only, within the question's timeout. :meth:`Cluster.survey` returns when every node
  :meth:`Cluster.nodes` lists has answered, or at the timeout, with at most one answer
  per node. A slow or failing answerer is left out; a survey never raises for it.
* **Markers**: a node sends itself a marker through the stream to all nodes; once it
  comes back, everything the server had taken before was handled here
  (:meth:`Cluster.sync`; :meth:`Cluster.nodes` and :meth:`Cluster.survey` catch up
  this way first, so a node that has announced itself is listed).

Everything is at-most-once, as the transport is: a node cut off misses what is sent
meanwhile, and drops out of the others' lists after ``node_ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from parsec.engine.aio import cancel_and_wait
from parsec.engine.controller import (
    ControlCommand,
    ControlEventHandler,
    Controller,
    ControlTransport,
    NodeInfo,
    SurveyReply,
)
from parsec.engine.wire import Answer, Envelope, Question, Report, decode_envelope, encode

__all__ = ["Cluster"]

log = logging.getLogger("parsec.cluster")

CATCH_UP_TIMEOUT = 1.0
"""How long ``nodes`` and ``survey`` wait for their marker before going on without."""


class _Survey:
    """One survey this node asked: the nodes it waits for and the answers so far."""

    __slots__ = ("answers", "done", "expected")

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.answers: dict[str, bytes] = {}
        self.done = asyncio.Event()

    def add(self, node: str, data: bytes) -> None:
        """Keep a node's first answer; done once every expected node answered."""
        self.answers.setdefault(node, data)
        if self.expected.issubset(self.answers):
            self.done.set()


class Cluster:
    """The Controller over a ControlTransport. One instance per node.

    ``transport`` is owned: :meth:`aclose` closes it. ``clock`` (monotonic seconds)
    ages the reports; ``ready_timeout`` bounds :meth:`sync`'s waits.
    """

    def __init__(
        self,
        transport: ControlTransport,
        node_id: str,
        *,
        report_interval: float = 3.0,
        node_ttl: float = 10.0,
        ready_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._node_id = node_id
        self._report_interval = report_interval
        self._node_ttl = node_ttl
        self._ready_timeout = ready_timeout
        self._clock = clock
        self._handler: ControlEventHandler | None = None
        self._reports: dict[str, tuple[float, NodeInfo]] = {}
        self._surveys: dict[str, _Survey] = {}
        self._markers: dict[str, asyncio.Future[None]] = {}
        self._reporter: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    @property
    def node_id(self) -> str:
        return self._node_id

    async def start(self, handler: ControlEventHandler) -> None:
        """Listen, announce this node (asking the others to report) and report every
        ``report_interval``. When the transport is not listening yet, the announcement
        goes out as soon as it is."""
        if self._started:
            raise RuntimeError("a controller starts once")
        self._started = True
        self._handler = handler
        await self._transport.start(self._node_id, self._receive)
        announced = False
        if self._transport.listening:
            await self._report(ask=True)
            announced = True
        self._reporter = asyncio.create_task(
            self._report_forever(announced), name=f"parsec-cluster-report:{self._node_id}"
        )

    async def broadcast(self, command: ControlCommand) -> None:
        await self._transport.send(encode(Envelope(self._node_id, command=command)))

    async def nodes(self) -> list[NodeInfo]:
        """The other nodes heard from within ``node_ttl``, by uid; the reports the
        transport had already taken are counted (:meth:`sync`, bounded)."""
        await self._catch_up()
        return sorted(self._live().values(), key=lambda info: info.uid)

    # the timeout is the survey's own (answering nodes get it too) and not an error:
    # cancelling the call from outside would lose the answers that did arrive
    async def survey(
        self,
        op: str,
        data: bytes,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> list[SurveyReply]:
        """Ask every other live node; the answers that arrived within ``timeout``,
        sorted by node id. Raises RuntimeError before ``start``, and what the
        transport's ``send`` raises when this node cannot reach the others at all."""
        if self._handler is None:
            raise RuntimeError("start the controller before surveying")
        deadline = asyncio.get_running_loop().time() + timeout
        await self._catch_up()
        expected = set(self._live())
        if not expected:
            return []
        question = Question(uuid.uuid4().hex, op, data, timeout)
        pending = self._surveys[question.id] = _Survey(expected)
        try:
            await self._transport.send(encode(Envelope(self._node_id, question=question)))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await pending.done.wait()
        finally:
            del self._surveys[question.id]
        return [SurveyReply(node, pending.answers[node]) for node in sorted(pending.answers)]

    async def sync(self) -> None:
        """Return once this node has handled every message the transport had taken
        for all nodes before the call; at once for a controller not started, or
        closed. Raises TimeoutError when that takes longer than ``ready_timeout``."""
        if self._handler is None:
            return
        async with asyncio.timeout(self._ready_timeout):
            await self._transport.wait_listening()
            await self._marker()

    async def aclose(self) -> None:
        """Say goodbye, stop reporting and answering, end the surveys under way with
        the answers they have, and close the transport. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._started and self._transport.listening:
            with contextlib.suppress(Exception):
                goodbye = Envelope(self._node_id, report=Report(leaving=True))
                await self._transport.send(encode(goodbye))
        for pending in self._surveys.values():
            pending.done.set()
        tasks = [task for task in (self._reporter, *self._tasks) if task is not None]
        self._reporter, self._tasks = None, set()
        await cancel_and_wait(*tasks)
        await self._transport.aclose()
        self._handler = None

    # --- background -------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in a task this cluster owns (cancelled by ``aclose``)."""
        if self._closed:
            work.close()
            return
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, *, ask: bool = False, to: str | None = None) -> None:
        handler = self._handler
        if handler is None:
            return
        report = Report(handler.node_info(), ask=ask)
        await self._transport.send(encode(Envelope(self._node_id, report=report)), to=to)

    async def _report_forever(self, announced: bool) -> None:
        """Report every ``report_interval``; first announce this node (asking the
        others to report) once listening, unless ``start`` did."""
        ask = not announced
        if ask:
            await self._transport.wait_listening()
        else:
            await asyncio.sleep(self._report_interval)
        while True:
            try:
                await self._report(ask=ask)
                ask = False
            except Exception as exc:  # down: reported again at the next interval
                log.debug("node report failed: %r", exc)
            await asyncio.sleep(self._report_interval)

    def _live(self) -> dict[str, NodeInfo]:
        """Every other node heard from within ``node_ttl``; older reports are dropped."""
        now = self._clock()
        stale = [node for node, (at, _) in self._reports.items() if now - at > self._node_ttl]
        for node in stale:
            del self._reports[node]
        return {node: info for node, (_, info) in self._reports.items()}

    async def _catch_up(self) -> None:
        """Let the messages the transport already took be handled first (bounded)."""
        if self._transport.listening:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CATCH_UP_TIMEOUT):
                    await self._marker()

    async def _marker(self) -> None:
        marker = uuid.uuid4().hex
        seen = self._markers[marker] = asyncio.get_running_loop().create_future()
        try:
            await self._transport.send(encode(Envelope(self._node_id, marker=marker)))
            await seen
        finally:
            self._markers.pop(marker, None)

    # --- receiving ----------------------------------------------------------------

    async def _receive(self, data: bytes) -> None:
        """One message from the transport, to all nodes or to this one."""
        try:
            envelope = decode_envelope(data)
        except msgspec.DecodeError:
            log.warning("undecodable control message dropped")
            return
        sender = envelope.node
        if sender == self._node_id:
            seen = self._markers.get(envelope.marker) if envelope.marker else None
            if seen is not None and not seen.done():
                seen.set_result(None)
            return
        handler = self._handler
        if handler is None:
            return
        if envelope.report is not None:
            self._on_report(sender, envelope.report)
        if envelope.question is not None:
            self._spawn(self._answer(handler, sender, envelope.question))
        if envelope.answer is not None:
            pending = self._surveys.get(envelope.answer.id)
            if pending is not None:
                pending.add(sender, envelope.answer.data)
        if envelope.command is not None:
            try:
                await handler.handle_control(envelope.command)
            except Exception:
                log.exception("control command %r failed", type(envelope.command).__name__)

    def _on_report(self, sender: str, report: Report) -> None:
        if report.leaving:
            self._reports.pop(sender, None)
            return
        if report.info is not None:
            self._reports[sender] = (self._clock(), report.info)
        if report.ask:
            self._spawn(self._report_quietly())

    async def _report_quietly(self) -> None:
        try:
            await self._report()
        except Exception as exc:
            log.debug("node report failed: %r", exc)

    async def _answer(self, handler: ControlEventHandler, sender: str, question: Question) -> None:
        """Answer in a task of its own, so a slow answer holds up no command."""
        try:
            async with asyncio.timeout(question.timeout):
                data = await handler.handle_survey(question.op, question.data)
        except TimeoutError:
            log.warning(
                "survey %r from %s not answered within %.1fs", question.op, sender, question.timeout
            )
            return
        except Exception:
            log.exception("survey %r from %s failed; no answer sent", question.op, sender)
            return
        answer = Envelope(self._node_id, answer=Answer(question.id, data))
        try:
            await self._transport.send(encode(answer), to=sender)
        except Exception as exc:  # the asker may be gone: nothing to tell
            log.debug("survey answer to %s lost: %r", sender, exc)


_controller: type[Controller] = Cluster
