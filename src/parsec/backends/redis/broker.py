"""RedisBroker: the Broker contract on Redis, for nodes that share one Redis.

History lives in a Redis Stream per channel (entry id = offset) beside a hash holding
the stream position (epoch, top offset); ``lua/publish.lua`` checks the idempotency
key, appends, assigns the offset and PUBLISHes in one atomic step, so offsets reach
every node in order and history always holds what was delivered. ``lua/history.lua``
reads the position and a page of the stream. The key layout is in ``keys.py``, the
pub/sub messages in ``parsec.engine.wire``, node-level pub/sub and its supervision in
``subscriber.py``.

Every call that cannot reach Redis raises quickly (socket timeouts bound it) with the
temporary error described in ``client.py``: PARSEC_BROKER_NOT_READY.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from parsec.backends.memory import new_epoch
from parsec.backends.redis.client import ClientShare, RedisClient, translated
from parsec.backends.redis.keys import DEFAULT_KEY_PREFIX, Keys, load_script
from parsec.backends.redis.subscriber import Backoff, Subscriber, exponential_backoff
from parsec.engine.broker import (
    DEFAULT_HISTORY_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryFilter,
    HistoryResult,
    PublishOptions,
)
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.engine.wire import Join, Leave, encode, publication_json

__all__ = ["RedisBroker"]

_NO_POSITION = StreamPosition()
_publication = msgspec.json.Decoder(Publication)


class RedisBroker:
    """Broker on Redis. One instance per node.

    ``client`` is borrowed unless ``share`` says otherwise (see ``ClientShare``).
    ``backoff`` paces reconnects of the pub/sub connection; ``ready_timeout`` bounds
    how long ``subscribe`` waits for that connection before it fails.

    A stream position TTL (``history_meta_ttl``) of 0 or less keeps the position
    forever, as in Centrifugo.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = DEFAULT_KEY_PREFIX,
        share: ClientShare | None = None,
        backoff: Backoff | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._share = share
        self._publish = client.register_script(load_script("publish"))
        self._history = client.register_script(load_script("history"))
        self._subscriber = Subscriber(
            client,
            self._keys,
            self,
            backoff=backoff or exponential_backoff(),
            ready_timeout=ready_timeout,
        )
        self._closed = False

    @property
    def client(self) -> RedisClient:
        """The connection this broker uses (shared with the node's other Redis parts)."""
        return self._client

    @property
    def connected(self) -> bool:
        """Whether the node's pub/sub connection is up (for health checks)."""
        return self._subscriber.connected

    @property
    def reconnects(self) -> int:
        """How many times the pub/sub connection came back after it was lost (metrics)."""
        return self._subscriber.reconnects

    async def start(self, handler: BrokerEventHandler) -> None:
        """Start the supervised pub/sub listener. It connects in the background, so a
        node can start while Redis is down; ``subscribe`` waits for it."""
        self._subscriber.start(handler)

    async def subscribe(self, channel: str) -> None:
        await self._subscriber.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._subscriber.unsubscribe(channel)

    async def sync(self) -> None:
        """Return once every message Redis sent this node before the call was handled
        (at once for a broker not started). Raises PARSEC_BROKER_NOT_READY when the
        pub/sub connection is down."""
        await self._subscriber.sync()

    async def publish(self, channel: str, pub: Publication, opts: PublishOptions) -> StreamPosition:
        keys = self._keys
        history = opts.keeps_history
        key = opts.idempotency_key
        with translated("publishing"):
            offset, epoch = await self._publish(
                keys=[keys.stream(channel), keys.meta(channel), keys.result(channel, key)],
                args=[
                    keys.pubsub(channel),
                    publication_json(pub),
                    opts.history_size if history else 0,
                    _ms(opts.history_ttl) if history else 0,
                    _ms(opts.history_meta_ttl),
                    new_epoch(),
                    _ms(opts.idempotent_result_ttl) if key else 0,
                ],
            )
        return StreamPosition(offset, _text(epoch)) if offset else _NO_POSITION

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        with translated("publishing a join"):
            await self._client.publish(self._keys.pubsub(channel), encode(Join(info)))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        with translated("publishing a leave"):
            await self._client.publish(self._keys.pubsub(channel), encode(Leave(info)))

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float = DEFAULT_HISTORY_META_TTL
    ) -> HistoryResult:
        since = "" if flt.since is None else str(flt.since.offset)
        with translated("reading history"):
            reply = await self._read(
                channel, new_epoch(), _ms(meta_ttl), since, flt.limit, flt.reverse
            )
        top, epoch, pubs = _parse_history(reply)
        return HistoryResult(pubs, StreamPosition(top, epoch))

    async def remove_history(self, channel: str) -> None:
        with translated("removing history"):
            await self._client.delete(self._keys.stream(channel))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._subscriber.aclose()
        if self._share is not None:
            await self._share.release()

    # --- StreamReader (for the subscriber's catch-up; raises redis errors) -------

    async def position(self, channel: str) -> StreamPosition | None:
        epoch, top = await self._client.hmget(self._keys.meta(channel), ["e", "s"])
        if epoch is None:
            return None
        return StreamPosition(int(top or 0), _text(epoch))

    async def read_after(
        self, channel: str, last: StreamPosition | None
    ) -> tuple[str, list[Publication]]:
        since = "" if last is None else str(last.offset)
        _, epoch, pubs = _parse_history(await self._read(channel, "", 0, since, -1, False))
        if last is not None and epoch and epoch != last.epoch:
            _, epoch, pubs = _parse_history(await self._read(channel, "", 0, "", -1, False))
        return epoch, pubs

    async def _read(
        self, channel: str, epoch: str, meta_ttl: int, since: str, limit: int, reverse: bool
    ) -> Any:
        keys = self._keys
        return await self._history(
            keys=[keys.stream(channel), keys.meta(channel)],
            args=[epoch, meta_ttl, since, limit, "1" if reverse else "0"],
        )


def _parse_history(reply: Any) -> tuple[int, str, list[Publication]]:
    """(top offset, epoch, publications) from ``history.lua``'s reply."""
    pubs = []
    for entry_id, fields in reply[2] if len(reply) > 2 else ():
        pub = _publication.decode(fields[1])
        pub.offset = int(entry_id.split(b"-", 1)[0])
        pubs.append(pub)
    return int(reply[0]), _text(reply[1]), pubs


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least 1 for any positive time; 0 for none."""
    return max(1, math.ceil(seconds * 1000)) if seconds > 0 else 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_broker: type[Broker] = RedisBroker
