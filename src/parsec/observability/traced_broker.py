"""A Broker that opens a ``broker.publish`` span around each publish: what
:class:`parsec.Parsec` puts in front of its node's broker when tracing is on (and only
then: an untraced node publishes straight to its broker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from parsec.observability.tracing import Attributes, Tracer

if TYPE_CHECKING:
    from parsec.engine.broker import Broker, PublishOptions
    from parsec.engine.types import Publication, StreamPosition

__all__ = ["traced_broker"]


class _TracedBroker:
    """Everything but ``publish`` goes to the inner broker unchanged."""

    def __init__(self, inner: Broker, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self._system = type(inner).__name__

    async def publish(self, channel: str, pub: Publication, opts: PublishOptions) -> StreamPosition:
        attributes: Attributes = {
            "messaging.system": self._system,
            "parsec.history": opts.history_size > 0,
        }
        with self._tracer.span("broker.publish", attributes):
            return await self._inner.publish(channel, pub, opts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def traced_broker(inner: Broker, tracer: Tracer) -> Broker:
    """``inner``, its publishes traced by ``tracer``."""
    return cast("Broker", _TracedBroker(inner, tracer))
