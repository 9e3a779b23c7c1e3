"""RedisController: commands between the nodes that share one Redis.

Commands travel on one pub/sub channel, ``<prefix>:control``, as
``{"node": <sender id>, "command": <ControlCommand>}``; every node applies the commands
of the others and drops its own echoes. Node info lives in the hash
``<prefix>:nodes`` (node id → info and report time), rewritten by every node every
``report_interval`` seconds; a node that has not reported for ``node_ttl`` seconds is
no longer listed, and its entry is removed by whichever node notices.

The listener is supervised (:class:`SupervisedListener`): when the connection drops it
reconnects with backoff and resubscribes. Commands sent while a node was cut off are
lost for it (at-most-once, as the Controller contract states).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
from redis.exceptions import RedisError

from parsec.backends.redis.client import RedisClient
from parsec.backends.redis.listener import SupervisedListener
from parsec.engine.controller import ControlCommand, ControlEventHandler, NodeInfo

__all__ = ["RedisController"]

log = logging.getLogger("parsec.redis.controller")


class _Envelope(msgspec.Struct):
    node: str
    command: ControlCommand


class _Report(msgspec.Struct):
    at: float
    info: NodeInfo


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_encode = msgspec.json.encode
_envelope = msgspec.json.Decoder(_Envelope)
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
        self._channel = f"{prefix}:control"
        self._nodes_key = f"{prefix}:nodes"
        self._report_interval = report_interval
        self._node_ttl = node_ttl
        self._handler: ControlEventHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._listener = SupervisedListener(client, self._channel, self._dispatch)

    async def start(self, handler: ControlEventHandler) -> None:
        if self._handler is not None:
            raise RuntimeError("a controller starts once")
        self._handler = handler
        await self._report()
        await self._listener.start()
        self._tasks = [asyncio.create_task(self._report_forever())]

    async def broadcast(self, command: ControlCommand) -> None:
        await self._client.publish(self._channel, _encode(_Envelope(self._node_id, command)))

    async def nodes(self) -> list[NodeInfo]:
        entries = await self._client.hgetall(self._nodes_key)
        now, alive, stale = time.time(), [], []
        for node, raw in entries.items():
            if _text(node) == self._node_id:
                continue
            try:
                report = _report.decode(raw)
            except msgspec.DecodeError:
                stale.append(node)
                continue
            if now - report.at > self._node_ttl:
                stale.append(node)
            else:
                alive.append(report.info)
        if stale:
            await self._client.hdel(self._nodes_key, *stale)
        return sorted(alive, key=lambda info: info.uid)

    async def aclose(self) -> None:
        """Stop listening and reporting and remove this node's entry. Idempotent."""
        tasks, self._tasks = self._tasks, []
        await self._listener.aclose()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            with contextlib.suppress(RedisError, OSError):
                await self._client.hdel(self._nodes_key, self._node_id)

    # --- background -------------------------------------------------------------

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
        try:
            await self._handler.handle_control(envelope.command)
        except Exception:
            log.exception("control command %r failed", type(envelope.command).__name__)
