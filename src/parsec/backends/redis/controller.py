"""RedisController: commands and surveys between the nodes that share one Redis.

Commands travel on one pub/sub channel, ``<prefix>:control``, as
``{"node": <sender id>, "command": <ControlCommand>}``; every node applies the commands
of the others and drops its own echoes. Node info lives in the hash
``<prefix>:nodes`` (node id → info and report time), rewritten by every node every
``report_interval`` seconds; a node that has not reported for ``node_ttl`` seconds is
no longer listed, and its entry is removed by whichever node notices.

A survey goes out on the same channel as
``{"node": <sender id>, "survey": {"id", "op", "data", "timeout"}}``. Every other node
answers on the sender's own reply channel, ``<prefix>:control:reply:<sender id>``, with
``{"id", "node", "data"}``; the sender keeps the first answer of each node to that
request id and returns once every node listed in ``<prefix>:nodes`` has answered, or
when the timeout runs out. A node gives up answering after the request's timeout; a
handler that raises sends no answer (logged).

Both listeners are supervised (:class:`SupervisedListener`): when the connection drops
they reconnect with backoff and resubscribe. Commands, requests and answers sent while
a node was cut off are lost for it (at-most-once, as the Controller contract states).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import msgspec
from redis.exceptions import RedisError

from parsec.backends.redis.client import RedisClient, translated
from parsec.backends.redis.listener import SupervisedListener
from parsec.engine.aio import cancel_and_wait
from parsec.engine.controller import (
    ControlCommand,
    ControlEventHandler,
    Controller,
    NodeInfo,
    SurveyReply,
)

__all__ = ["RedisController"]

log = logging.getLogger("parsec.redis.controller")


class _SurveyRequest(msgspec.Struct):
    id: str
    op: str
    data: bytes
    timeout: float


class _Envelope(msgspec.Struct, omit_defaults=True):
    """What travels on ``<prefix>:control``: a command or a survey request."""

    node: str
    command: ControlCommand | None = None
    survey: _SurveyRequest | None = None


class _SurveyAnswer(msgspec.Struct):
    id: str
    node: str
    data: bytes


class _Report(msgspec.Struct):
    at: float
    info: NodeInfo


class _Pending:
    """One survey this node sent: the nodes it waits for and the answers so far."""

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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_encode = msgspec.json.encode
_envelope = msgspec.json.Decoder(_Envelope)
_answer = msgspec.json.Decoder(_SurveyAnswer)
_report = msgspec.json.Decoder(_Report)


class RedisController:
    """Controller over Redis pub/sub. The client is borrowed: the owner closes it."""

    def __init__(
        self,
        client: RedisClient,
        node_id: str,
        *,
        prefix: str = "parsec",
        report_interval: float = 3.0,
        node_ttl: float = 10.0,
    ) -> None:
        self._client = client
        self._node_id = node_id
        self._prefix = prefix
        self._channel = f"{prefix}:control"
        self._nodes_key = f"{prefix}:nodes"
        self._report_interval = report_interval
        self._node_ttl = node_ttl
        self._handler: ControlEventHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._surveys: dict[str, _Pending] = {}
        self._listener = SupervisedListener(client, self._channel, self._dispatch)
        self._replies = SupervisedListener(client, self._reply_channel(node_id), self._collect)

    async def start(self, handler: ControlEventHandler) -> None:
        if self._handler is not None:
            raise RuntimeError("a controller starts once")
        self._handler = handler
        await self._report()
        await self._listener.start()
        await self._replies.start()
        self._tasks = [asyncio.create_task(self._report_forever())]

    async def broadcast(self, command: ControlCommand) -> None:
        await self._client.publish(self._channel, _encode(_Envelope(self._node_id, command)))

    async def nodes(self) -> list[NodeInfo]:
        return sorted((await self._live()).values(), key=lambda info: info.uid)

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
        sorted by node id. Raises RuntimeError before ``start``, and ParsecClientError
        ``PARSEC_BROKER_NOT_READY`` / ``PARSEC_BROKER_INTERNAL`` when Redis fails."""
        if self._handler is None:
            raise RuntimeError("start the controller before surveying")
        deadline = asyncio.get_running_loop().time() + timeout
        with translated("surveying the other nodes"):
            expected = set(await self._live())
        if not expected:
            return []
        request = _SurveyRequest(uuid.uuid4().hex, op, data, timeout)
        pending = self._surveys[request.id] = _Pending(expected)
        try:
            with translated("surveying the other nodes"):
                envelope = _Envelope(self._node_id, survey=request)
                await self._client.publish(self._channel, _encode(envelope))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await pending.done.wait()
        finally:
            del self._surveys[request.id]
        return [SurveyReply(node, pending.answers[node]) for node in sorted(pending.answers)]

    async def aclose(self) -> None:
        """Stop listening, reporting and answering, end the surveys under way with the
        answers they have, and remove this node's entry. Idempotent."""
        tasks, self._tasks = self._tasks, []
        answering, self._answering = self._answering, set()
        await self._listener.aclose()
        await self._replies.aclose()
        for pending in self._surveys.values():
            pending.done.set()
        await cancel_and_wait(*tasks, *answering)
        if tasks:
            with contextlib.suppress(RedisError, OSError):
                await self._client.hdel(self._nodes_key, self._node_id)

    # --- background -------------------------------------------------------------

    def _reply_channel(self, node: str) -> str:
        return f"{self._prefix}:control:reply:{node}"

    async def _live(self) -> dict[str, NodeInfo]:
        """Every other node that reported within ``node_ttl``, by node id; stale
        entries are removed on the way."""
        entries = await self._client.hgetall(self._nodes_key)
        now = time.time()
        alive: dict[str, NodeInfo] = {}
        stale: list[bytes | str] = []
        for node, raw in entries.items():
            node_id = _text(node)
            if node_id == self._node_id:
                continue
            try:
                report = _report.decode(raw)
            except msgspec.DecodeError:
                stale.append(node)
                continue
            if now - report.at > self._node_ttl:
                stale.append(node)
            else:
                alive[node_id] = report.info
        if stale:
            await self._client.hdel(self._nodes_key, *stale)
        return alive

    async def _report(self) -> None:
        assert self._handler is not None
        report = _Report(time.time(), self._handler.node_info())
        await self._client.hset(self._nodes_key, self._node_id, _encode(report))

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(self._report_interval)
            try:
                await self._report()
            except (RedisError, OSError) as exc:
                log.warning("node report failed: %s", exc)

    async def _dispatch(self, data: bytes) -> None:
        if self._handler is None:
            return
        try:
            envelope = _envelope.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable control message dropped")
            return
        if envelope.node == self._node_id:
            return
        if envelope.survey is not None:
            self._start_answer(envelope.node, envelope.survey)
        if envelope.command is None:
            return
        try:
            await self._handler.handle_control(envelope.command)
        except Exception:
            log.exception("control command %r failed", type(envelope.command).__name__)

    def _start_answer(self, sender: str, request: _SurveyRequest) -> None:
        """Answer in a task of its own, so a slow answer holds up no command."""
        task = asyncio.create_task(self._answer(sender, request))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, sender: str, request: _SurveyRequest) -> None:
        assert self._handler is not None
        try:
            async with asyncio.timeout(request.timeout):
                data = await self._handler.handle_survey(request.op, request.data)
        except TimeoutError:
            log.warning(
                "survey %r from %s not answered within %.1fs", request.op, sender, request.timeout
            )
            return
        except Exception:
            log.exception("survey %r from %s failed; no answer sent", request.op, sender)
            return
        answer = _encode(_SurveyAnswer(request.id, self._node_id, data))
        try:
            await self._client.publish(self._reply_channel(sender), answer)
        except (RedisError, OSError) as exc:
            log.warning("survey answer to %s lost: %s", sender, exc)

    async def _collect(self, data: bytes) -> None:
        try:
            answer = _answer.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable survey answer dropped")
            return
        pending = self._surveys.get(answer.id)
        if pending is not None and answer.node != self._node_id:
            pending.add(answer.node, answer.data)


_controller: type[Controller] = RedisController
