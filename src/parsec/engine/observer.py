"""Observer: what the engine reports to metrics, as a small contract.

The node holds one ``observer`` (``Node.observer``); None, the default, costs one
attribute test per event and nothing else. The observability layer
(:mod:`parsec.observability.metrics`) implements it for Prometheus.

Guarantees to an implementation: every call is synchronous, on the event loop, never
once per delivered message (per publication, per command, per connection at most), and
carries only bounded labels (no channel, user or client id). An implementation must
not raise or block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from parsec.engine.channel import ResolvedChannel

__all__ = ["EngineObserver"]


class EngineObserver(Protocol):
    """Receives the engine's events."""

    def published(self, visibility: str, seconds: float, broker_seconds: float) -> None:
        """A publication was accepted: ``visibility`` is ``public`` or ``private``,
        ``seconds`` the whole publish, ``broker_seconds`` the broker's part of it."""
        ...

    def publish_failed(self, visibility: str) -> None:
        """A publication was refused or failed."""
        ...

    def command(self, method: str, result: str) -> None:
        """A client command ended: ``result`` is ``ok``, a client error code
        (``"103"``) or ``internal``."""
        ...

    def connected(self, transport: str) -> None:
        """A client connected over ``transport`` (``websocket``, …)."""
        ...

    def connect_failed(self, transport: str) -> None:
        """A client's connect command was refused."""
        ...

    def disconnected(self, transport: str, code: int) -> None:
        """A connected client is gone, with disconnect ``code``."""
        ...

    def subscribed(self, channel: ResolvedChannel, first: bool) -> None:
        """A subscription to ``channel`` was registered on this node; ``first``: the
        channel's first subscriber here."""
        ...

    def unsubscribed(self, channel: ResolvedChannel, last: bool) -> None:
        """A subscription to ``channel`` was unregistered; ``last``: the channel has no
        subscriber left here."""
        ...

    def token_verified(self, kind: str, result: str) -> None:
        """A client's token was checked: ``kind`` is ``connection`` or
        ``subscription``, ``result`` ``ok``, ``expired`` or ``invalid``."""
        ...
