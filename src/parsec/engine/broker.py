"""The Broker contract: pub/sub between nodes plus per-channel history streams.

Guarantees every implementation gives (checked by ``tests/conformance``):

* **At-most-once delivery.** A publication reaches every node subscribed to its channel
  at the moment of publishing, at most once. A node that was not subscribed, or whose
  link to the broker broke, misses it; history and recovery close that gap.
* **Atomic history and delivery.** When a channel keeps history, appending the
  publication to the stream, assigning its offset and handing it to subscribers
  happen as one step: no subscriber sees a publication that history does not hold,
  and offsets reach every node in increasing order with no gaps.
* **Offsets and epochs.** A stream's offsets start at 1 and grow by 1 per publication.
  ``epoch`` is random and changes whenever the stream's state is lost; a (offset,
  epoch) pair from an older epoch must not be treated as recoverable.
* **History bounds.** A stream keeps at most ``history_size`` publications and drops
  them ``history_ttl`` seconds after the last publication. The stream position
  (offset, epoch) lives for ``history_meta_ttl`` so that positions survive idle time.
* **Idempotency.** A publish repeating an ``idempotency_key`` seen within the last
  ``idempotent_result_ttl`` seconds is not delivered again and returns the first
  publication's position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from parsec.engine.types import ClientInfo, Publication, StreamPosition

__all__ = [
    "Broker",
    "BrokerEventHandler",
    "HistoryFilter",
    "HistoryResult",
    "PublishOptions",
]

DEFAULT_HISTORY_META_TTL = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """How one publication is kept. ``history_size`` and ``history_ttl`` both > 0
    enable history for the publication."""

    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = DEFAULT_HISTORY_META_TTL
    idempotency_key: str = ""
    idempotent_result_ttl: float = 300.0

    @property
    def keeps_history(self) -> bool:
        return self.history_size > 0 and self.history_ttl > 0


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which publications to read.

    ``limit`` 0 reads only the stream position, a negative limit reads all kept
    publications. ``reverse`` reads newest first. ``since`` reads publications
    strictly after that position, oldest first — or, with ``reverse``, strictly before
    it, newest first (paging backwards, as Centrifugo does). The caller checks that
    ``since.epoch`` is the stream's current epoch.
    """

    since: StreamPosition | None = None
    limit: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class HistoryResult:
    publications: list[Publication]
    position: StreamPosition


class BrokerEventHandler(Protocol):
    """What a Node implements to receive what the broker delivers.

    Handlers are called on the event loop and must not block; they must not await.
    """

    def handle_publication(self, channel: str, pub: Publication, position: StreamPosition) -> None:
        """A publication arrived for a channel this node subscribed to."""

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        """A client joined a channel (join/leave enabled)."""

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        """A client left a channel (join/leave enabled)."""

    def handle_gap(self, channel: str) -> None:
        """Publications of a channel with history were lost to this node and cannot be
        delivered from the stream (it was trimmed, or its epoch changed). The node must
        tell its positioned subscribers that their position is gone, so that none of
        them is left with a silent gap."""


@runtime_checkable
class Broker(Protocol):
    """Pub/sub with history. One instance per node; the node owns its lifecycle."""

    async def start(self, handler: BrokerEventHandler) -> None:
        """Begin delivering to ``handler``. Called once, before any other call."""

    async def subscribe(self, channel: str) -> None:
        """Deliver the channel's publications to this node (node-level, idempotent)."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering the channel's publications to this node (idempotent)."""

    async def publish(self, channel: str, pub: Publication, opts: PublishOptions) -> StreamPosition:
        """Publish to every subscribed node; with history, append first and return the
        publication's position (offset, epoch). Without history the position is empty."""

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every subscribed node that a client joined."""

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every subscribed node that a client left."""

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float = DEFAULT_HISTORY_META_TTL
    ) -> HistoryResult:
        """Read a channel's stream. Creates the stream position (a new epoch) when the
        channel has none, so a reader always gets a position."""

    async def remove_history(self, channel: str) -> None:
        """Drop a channel's publications; the stream position (offset, epoch) stays."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
