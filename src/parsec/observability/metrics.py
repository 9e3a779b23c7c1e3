"""Prometheus metrics of one Parsec instance (``[observability] metrics``).

:class:`ParsecMetrics` owns a registry of its own (never prometheus-client's global
one: an embedder may run several Parsec instances in one process) holding the Go
Parsec's ``parsec_*`` set plus what a realtime server needs. It is the node's
:class:`parsec.engine.observer.EngineObserver` and the delivery service's
:class:`parsec.sinks.metrics.SinkMetrics`; counts the engine already keeps (the Hub's
deliveries, the broker's connection) are read by :meth:`sync`, at
scrape time and every second (:mod:`parsec.observability.runtime`), never per
delivery.

Under ``parsec serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
for its workers: every worker writes its values there and a scrape of any worker
reads them all (:meth:`exposition`), so one scrape shows the whole server. Gauges say
how workers combine (``livesum``: connections, subscribers; ``livemax``: event-loop
lag, DLQ size).

Labels are bounded: never a channel, user, client id or raw path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from parsec.engine.channel import ResolvedChannel
    from parsec.engine.node import Node

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "ParsecMetrics", "multiprocess"]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
_LATENCY: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess() -> bool:
    """Whether values go to ``PROMETHEUS_MULTIPROC_DIR`` (a ``--workers`` worker)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class ParsecMetrics:
    """The metrics of one Parsec instance; ``node`` is read at :meth:`sync`."""

    def __init__(self, node: Node, *, region: str, version: str, backend: str) -> None:
        self.node = node
        self.registry = r = CollectorRegistry()
        self._multiprocess = multiprocess()
        self._scrape = r
        if self._multiprocess:
            self._scrape = CollectorRegistry()
            MultiProcessCollector(self._scrape)  # type: ignore[no-untyped-call]
        else:
            from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                r.register(collector)
        info = Gauge(
            "parsec_node_info",
            "This node: its id, region and version (value 1).",
            ["node", "region", "version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        info.labels(node.id, region, version).set(1)
        self.publishes = Counter(
            "parsec_publishes_total",
            "Publications through any API, by channel visibility and result.",
            ["channel_visibility", "result"],
            registry=r,
        )
        self.publish_duration = Histogram(
            "parsec_publish_duration_seconds",
            "Time to accept a publication (checks and broker).",
            registry=r,
            buckets=_LATENCY,
        )
        self.broker_publish_duration = Histogram(
            "parsec_broker_publish_duration_seconds",
            "The broker's part of a publication (history append and fan-out to nodes).",
            ["backend"],
            registry=r,
            buckets=_LATENCY,
        ).labels(backend)
        self.deliveries = Counter(
            "parsec_deliveries_total",
            "Publications handed to local subscribers.",
            registry=r,
        )
        self.connections = Gauge(
            "parsec_connections",
            "Connected clients, by transport.",
            ["transport"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connects = Counter(
            "parsec_connects_total",
            "Connect attempts, by transport and result.",
            ["transport", "result"],
            registry=r,
        )
        self.disconnects = Counter(
            "parsec_disconnects_total",
            "Disconnected clients, by disconnect code.",
            ["code"],
            registry=r,
        )
        self.subscriptions = Gauge(
            "parsec_subscriptions",
            "Client subscriptions on this node, by channel namespace.",
            ["namespace"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.subscribers_active = Gauge(
            "parsec_subscribers_active",
            "Subscriptions of connected clients.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.channels_active = Gauge(
            "parsec_channels_active",
            "Channels with subscribers on this node, by state and visibility.",
            ["state", "visibility"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.commands = Counter(
            "parsec_client_commands_total",
            "Client protocol commands, by method and result (ok, an error code, internal).",
            ["method", "result"],
            registry=r,
        )
        self.broker_connected = Gauge(
            "parsec_broker_connected",
            "1 while the broker (Redis, NATS) connection is up, else 0.",
            ["backend"],
            registry=r,
            multiprocess_mode="livemin",
        ).labels(backend)
        self.broker_reconnects = Counter(
            "parsec_broker_reconnects_total",
            "Times the broker's subscription connection came back after it was lost (Redis).",
            ["backend"],
            registry=r,
        ).labels(backend)
        self.loop_lag = Gauge(
            "parsec_event_loop_lag_seconds",
            "How late the event loop ran a timer, last sample.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.http_requests = Counter(
            "parsec_http_requests_total",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "parsec_http_request_duration_seconds",
            "HTTP request duration, by route template.",
            ["route"],
            registry=r,
            buckets=_SLOW,
        )
        self.rpc_requests = Counter(
            "parsec_rpc_requests_total",
            "ParsecService (Twirp) calls, by method and HTTP status.",
            ["method", "status"],
            registry=r,
        )
        self.rpc_duration = Histogram(
            "parsec_rpc_duration_seconds",
            "ParsecService (Twirp) call duration, by method.",
            ["method"],
            registry=r,
            buckets=_SLOW,
        )
        self.sink_attempts = Counter(
            "parsec_sink_attempts_total",
            "Out-of-band delivery attempts, by sink and result.",
            ["sink", "result"],
            registry=r,
        )
        self.sink_duration = Histogram(
            "parsec_sink_duration_seconds",
            "Out-of-band delivery attempt duration, by sink.",
            ["sink"],
            registry=r,
            buckets=_SLOW,
        )
        self.dlq = Gauge(
            "parsec_dlq_size",
            "Items in a sink's dead-letter queue.",
            ["sink"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.token_verifications = Counter(
            "parsec_token_verifications_total",
            "Token verifications, by token type and result.",
            ["type", "result"],
            registry=r,
        )
        self.key_rotations = Counter(
            "parsec_key_rotations_total",
            "Signing key changes, by action (generate, promote, retire).",
            ["action"],
            registry=r,
        )
        self.rate_limit_decisions = Counter(
            "parsec_rate_limit_decisions_total",
            "Rate limit decisions, by result.",
            ["result"],
            registry=r,
        )
        self.refresh_rotations = Counter(
            "parsec_refresh_rotations_total",
            "Refresh token rotations, by result.",
            ["result"],
            registry=r,
        )
        self._published = {
            v: self.publishes.labels(v, "ok") for v in ("public", "private", "unknown")
        }
        self._refused = {
            v: self.publishes.labels(v, "error") for v in ("public", "private", "unknown")
        }
        self._transports: dict[str, tuple[Gauge, Counter]] = {}
        self._transport("websocket")
        self._commands: dict[tuple[str, str], Counter] = {}
        self._namespaces: dict[str, Gauge] = {}
        self._codes: dict[int, Counter] = {}
        self._verifications: dict[tuple[str, str], Counter] = {}
        self._delivered = 0
        self._reconnects = 0
        """``node.broker.reconnects`` at the last :meth:`sync`."""
        self._channels = {
            private: self.channels_active.labels("active", "private" if private else "public")
            for private in (False, True)
        }
        """``node.hub.deliveries`` at the last :meth:`sync`."""

    # --- EngineObserver ----------------------------------------------------------

    def published(self, visibility: str, seconds: float, broker_seconds: float) -> None:
        self._published[visibility].inc()
        self.publish_duration.observe(seconds)
        self.broker_publish_duration.observe(broker_seconds)

    def publish_failed(self, visibility: str) -> None:
        self._refused[visibility].inc()

    def command(self, method: str, result: str) -> None:
        child = self._commands.get((method, result))
        if child is None:
            child = self._commands[method, result] = self.commands.labels(method, result)
        child.inc()

    def connected(self, transport: str) -> None:
        gauge, ok = self._transport(transport)
        gauge.inc()
        ok.inc()

    def connect_failed(self, transport: str) -> None:
        self.connects.labels(transport, "error").inc()

    def disconnected(self, transport: str, code: int) -> None:
        self._transport(transport)[0].dec()
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self.disconnects.labels(str(code))
        child.inc()

    def subscribed(self, channel: ResolvedChannel, first: bool) -> None:
        self._namespace(channel.namespace).inc()
        self.subscribers_active.inc()
        if first:
            self._channels[channel.token_required].inc()

    def unsubscribed(self, channel: ResolvedChannel, last: bool) -> None:
        self._namespace(channel.namespace).dec()
        self.subscribers_active.dec()
        if last:
            self._channels[channel.token_required].dec()

    def _transport(self, transport: str) -> tuple[Gauge, Counter]:
        children = self._transports.get(transport)
        if children is None:
            children = self._transports[transport] = (
                self.connections.labels(transport),
                self.connects.labels(transport, "ok"),
            )
        return children

    def _namespace(self, namespace: str) -> Gauge:
        child = self._namespaces.get(namespace)
        if child is None:
            child = self._namespaces[namespace] = self.subscriptions.labels(namespace)
        return child

    # --- SinkMetrics -------------------------------------------------------------

    def attempt(self, sink: str, outcome: str, seconds: float) -> None:
        self.sink_attempts.labels(sink, outcome).inc()
        self.sink_duration.labels(sink).observe(seconds)

    def dlq_size(self, sink: str, size: int) -> None:
        self.dlq.labels(sink).set(size)

    # --- services -----------------------------------------------------------------

    def count(self, counter: str, label: str) -> None:
        """Count one event of a one-label counter of the services: ``key_rotations``
        (``generate``, ``promote``, ``retire``), ``refresh_rotations`` (``ok``,
        ``error``), ``rate_limit_decisions`` (``allowed``, ``limited``)."""
        metric: Counter = getattr(self, counter)
        metric.labels(label).inc()

    def token_verified(self, kind: str, result: str) -> None:
        child = self._verifications.get((kind, result))
        if child is None:
            child = self._verifications[kind, result] = self.token_verifications.labels(
                kind, result
            )
        child.inc()

    # --- HTTP --------------------------------------------------------------------

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request ended; ``route`` is its route template, never a raw path."""
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(route).observe(seconds)
        if route.startswith("/twirp/"):
            rpc = route.rsplit("/", 1)[-1]
            self.rpc_requests.labels(rpc, str(status)).inc()
            self.rpc_duration.labels(rpc).observe(seconds)

    # --- scrape ------------------------------------------------------------------

    def sync(self) -> None:
        """Copy the counts the engine keeps into the metrics: constant time."""
        hub = self.node.hub
        delivered = hub.deliveries
        if delivered > self._delivered:
            self.deliveries.inc(delivered - self._delivered)
        self._delivered = delivered
        broker = self.node.broker
        self.broker_connected.set(1 if getattr(broker, "connected", True) else 0)
        reconnects = int(getattr(broker, "reconnects", 0))
        if reconnects > self._reconnects:
            self.broker_reconnects.inc(reconnects - self._reconnects)
        self._reconnects = reconnects

    def exposition(self) -> bytes:
        """The Prometheus text exposition (of every worker, under ``--workers``)."""
        self.sync()
        return generate_latest(self._scrape)
