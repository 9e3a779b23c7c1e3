"""Channel dispatch: what a distributed Broker receives on a channel, handed to the node.

Every broker that fans out through a server (Redis pub/sub, NATS subjects) receives
the channel messages of :mod:`parsec.engine.wire` and hands them to the node's
:class:`~parsec.engine.broker.BrokerEventHandler` the same way; this is that way,
written once.

Guarantees:

* Never awaits and never raises: a malformed message is dropped (logged), a handler
  that raises is logged, and the next message is delivered as usual.
* A publication is never delivered twice: one whose offset is not past the last one
  delivered for its channel in the same epoch is dropped. A publication without an
  offset (a broker without history) carries no position and is always delivered.
"""

from __future__ import annotations

import logging

import msgspec

from parsec.engine.broker import BrokerEventHandler
from parsec.engine.types import Publication, StreamPosition
from parsec.engine.wire import Join, Published, decode_channel_message

__all__ = ["ChannelDispatch"]

log = logging.getLogger("parsec.broker")

_NO_POSITION = StreamPosition()


class ChannelDispatch:
    """Channel messages to a BrokerEventHandler, with the last position delivered per
    channel. Delivers nothing while ``handler`` is None (not started, or closed)."""

    __slots__ = ("_last", "handler")

    def __init__(self) -> None:
        self.handler: BrokerEventHandler | None = None
        self._last: dict[str, StreamPosition] = {}

    def message(self, channel: str, data: bytes) -> None:
        """Decode one channel message and hand it to the handler."""
        handler = self.handler
        if handler is None:
            return
        try:
            message = decode_channel_message(data)
        except msgspec.DecodeError:
            log.warning("dropped a malformed message on channel %r", channel)
            return
        try:
            if isinstance(message, Published):
                if message.offset:
                    self.publication(channel, message.pub, message.offset, message.epoch)
                else:  # no history, no position: nothing to check
                    handler.handle_publication(channel, message.pub, _NO_POSITION)
            elif isinstance(message, Join):
                handler.handle_join(channel, message.info)
            else:
                handler.handle_leave(channel, message.info)
        except Exception:
            log.exception("the broker event handler failed on channel %r", channel)

    def publication(self, channel: str, pub: Publication, offset: int, epoch: str) -> None:
        """Hand a publication at ``offset`` in ``epoch`` to the handler, unless it was
        delivered already. The handler's exceptions propagate."""
        handler = self.handler
        if handler is None:
            return
        position = _NO_POSITION
        if offset:
            last = self._last.get(channel)
            if last is not None and offset <= last.offset and epoch == last.epoch:
                return
            position = self._last[channel] = StreamPosition(offset, epoch)
            pub.offset = offset
        handler.handle_publication(channel, pub, position)

    def last(self, channel: str) -> StreamPosition | None:
        """The position of the last publication delivered for ``channel``."""
        return self._last.get(channel)

    def start_at(self, channel: str, position: StreamPosition) -> None:
        """Take ``position`` as delivered, unless a later one is known already."""
        self._last.setdefault(channel, position)

    def forget(self, channel: str) -> None:
        """Drop what is known of ``channel`` (the node no longer follows it)."""
        self._last.pop(channel, None)
