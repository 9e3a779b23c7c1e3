"""The Controller on Redis: :class:`~parsec.engine.cluster.Cluster` over Redis pub/sub.

What goes to every node travels on the pub/sub channel ``<prefix>:control``; what goes
to one node (survey answers) on that node's ``<prefix>:control:<node id>``. The
messages are :mod:`parsec.engine.wire` envelopes; commands, node reports, surveys and
the node registry are the Cluster's (see its module docstring).

Both listeners are supervised (:class:`SupervisedListener`): when the connection drops
they reconnect with backoff and resubscribe. What is sent while a node is cut off is
lost for it (at-most-once, as the Controller contract states).
"""

from __future__ import annotations

from parsec.backends.redis.client import RedisClient, translated
from parsec.backends.redis.keys import DEFAULT_KEY_PREFIX
from parsec.backends.redis.listener import SupervisedListener
from parsec.engine.cluster import Cluster
from parsec.engine.controller import ControlTransport, Receiver

__all__ = ["RedisControlTransport", "RedisController"]


class RedisControlTransport:
    """ControlTransport over Redis pub/sub. The client is borrowed: the owner closes it."""

    def __init__(self, client: RedisClient, *, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._listeners: list[SupervisedListener] = []

    @property
    def listening(self) -> bool:
        return bool(self._listeners) and all(each.subscribed for each in self._listeners)

    async def start(self, node: str, receive: Receiver) -> None:
        """Listen on both channels; returns once subscribed. Raises what Redis raised
        when it cannot be reached, TimeoutError when subscribing takes too long."""
        if self._listeners:
            raise RuntimeError("a control transport starts once")
        await self._client.ping()  # fail at once when Redis is unreachable
        self._listeners = [
            SupervisedListener(self._client, self._channel(None), receive),
            SupervisedListener(self._client, self._channel(node), receive),
        ]
        for listener in self._listeners:
            await listener.start()

    async def wait_listening(self) -> None:
        for listener in self._listeners:
            await listener.wait_subscribed()

    async def send(self, data: bytes, *, to: str | None = None) -> None:
        with translated("sending to the other nodes"):
            await self._client.publish(self._channel(to), data)

    async def aclose(self) -> None:
        """Stop listening. Idempotent."""
        for listener in self._listeners:
            await listener.aclose()

    def _channel(self, node: str | None) -> str:
        return f"{self._prefix}:control" if node is None else f"{self._prefix}:control:{node}"


class RedisController(Cluster):
    """The Controller of the nodes sharing one Redis: a Cluster on a
    RedisControlTransport (the client is borrowed)."""

    def __init__(
        self,
        client: RedisClient,
        node_id: str,
        *,
        prefix: str = DEFAULT_KEY_PREFIX,
        report_interval: float = 3.0,
        node_ttl: float = 10.0,
    ) -> None:
        super().__init__(
            RedisControlTransport(client, prefix=prefix),
            node_id,
            report_interval=report_interval,
            node_ttl=node_ttl,
        )


_transport: type[ControlTransport] = RedisControlTransport
