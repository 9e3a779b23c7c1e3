"""Prometheus metrics of one Parsec instance (``[observability] metrics``).

:class:`ParsecMetrics` owns a registry of its own (never prometheus-client's global
one: an embedder may run several Parsec instances in one process) holding the Go
Parsec's ``parsec_*`` set plus what a realtime server needs. It is the node's
:class:`parsec.engine.observer.EngineObserver` and the delivery service's
:class:`parsec.sinks.metrics.SinkMetrics`. The engine's events (publications,
commands, connections, subscriptions, token checks) are tallied in plain integers
(:mod:`parsec.observability.tally`), never per delivery; :meth:`sync` hands the
tallies and the counts the engine keeps (the Hub's deliveries, the broker's
connection) to the metrics at scrape time and every second
(:mod:`parsec.observability.runtime`).

Under ``parsec serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
for its workers: every worker writes its values there and a scrape of any worker
reads them all (:meth:`exposition`), so one scrape shows the whole server. Gauges say
how workers combine (``livesum``: connections, subscribers; ``livemax``: event-loop
lag, DLQ size).

Labels are bounded: never a channel, user, client id or raw path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from parsec.observability.tally import CounterTally, LatencyTally

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
        for visibility in ("public", "private"):  # exported from the start
            self.publishes.labels(visibility, "ok")
        self._publishes: CounterTally[tuple[str, str]] = CounterTally(self.publishes)
        self._publish_latency = LatencyTally(self.publish_duration, _LATENCY)
        self._broker_latency = LatencyTally(self.broker_publish_duration, _LATENCY)
        self._commands: CounterTally[tuple[str, str]] = CounterTally(self.commands)
        self._verifications: CounterTally[tuple[str, str]] = CounterTally(self.token_verifications)
        self._commands_ok: dict[str, int] = {}
        """Commands that succeeded since the last flush, by method (no tuple per event)."""
        self._connects: CounterTally[tuple[str, str]] = CounterTally(self.connects)
        self._connected: dict[str, int] = {"websocket": 0}
        """Connects since the start, by transport; less ``_disconnected``: connections."""
        self._disconnected: dict[str, int] = {}
        self._codes: dict[int, int] = {}
        """Disconnects since the last flush, by code."""
        self._subscribed: dict[str, int] = {}
        """Subscriptions since the start, by namespace; less ``_unsubscribed``: live ones."""
        self._unsubscribed: dict[str, int] = {}
        self._opened = [0, 0]
        """Channels that got their first subscriber here, public [0] and private [1]."""
        self._closed = [0, 0]
        self._flushed: dict[str, int] = {}
        """``_connected`` at the last flush."""
        self._http_requests: CounterTally[tuple[str, str, str]] = CounterTally(self.http_requests)
        self._rpc_requests: CounterTally[tuple[str, str]] = CounterTally(self.rpc_requests)
        self._http_latency: dict[str, LatencyTally] = {}
        """Request durations by route template (flushed with the tallies)."""
        self._tallies: tuple[CounterTally[Any] | LatencyTally, ...] = (
            self._publishes,
            self._publish_latency,
            self._broker_latency,
            self._commands,
            self._verifications,
            self._connects,
            self._http_requests,
            self._rpc_requests,
        )
        self._delivered = 0
        """``node.hub.deliveries`` at the last :meth:`sync`."""
        self._reconnects = 0
        """``node.broker.reconnects`` at the last :meth:`sync`."""

    # --- EngineObserver ----------------------------------------------------------

    def published(self, visibility: str, seconds: float, broker_seconds: float) -> None:
        self._publishes.add((visibility, "ok"))
        self._publish_latency.observe(seconds)
        self._broker_latency.observe(broker_seconds)

    def publish_failed(self, visibility: str) -> None:
        self._publishes.add((visibility, "error"))

    def command(self, method: str, result: str) -> None:
        if result == "ok":
            ok = self._commands_ok
            ok[method] = ok.get(method, 0) + 1
        else:
            self._commands.add((method, result))

    def connected(self, transport: str) -> None:
        counts = self._connected
        counts[transport] = counts.get(transport, 0) + 1

    def connect_failed(self, transport: str) -> None:
        self._connects.add((transport, "error"))

    def disconnected(self, transport: str, code: int) -> None:
        counts = self._disconnected
        counts[transport] = counts.get(transport, 0) + 1
        codes = self._codes
        codes[code] = codes.get(code, 0) + 1

    def subscribed(self, channel: ResolvedChannel, first: bool) -> None:
        counts = self._subscribed
        counts[channel.namespace] = counts.get(channel.namespace, 0) + 1
        if first:
            self._opened[channel.token_required] += 1

    def unsubscribed(self, channel: ResolvedChannel, last: bool) -> None:
        counts = self._unsubscribed
        counts[channel.namespace] = counts.get(channel.namespace, 0) + 1
        if last:
            self._closed[channel.token_required] += 1

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
        self._verifications.add((kind, result))

    # --- HTTP --------------------------------------------------------------------

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request ended; ``route`` is its route template, never a raw path."""
        self._http_requests.add((method, route, str(status)))
        latency = self._http_latency.get(route)
        if latency is None:
            latency = self._http_latency[route] = LatencyTally(
                self.http_duration.labels(route), _SLOW
            )
        latency.observe(seconds)
        if route.startswith("/twirp/"):
            rpc = route.rsplit("/", 1)[-1]
            self._rpc_requests.add((rpc, str(status)))
            self.rpc_duration.labels(rpc).observe(seconds)

    # --- scrape ------------------------------------------------------------------

    def sync(self) -> None:
        """Copy the counts the engine keeps, and those tallied since the last call, into
        the metrics."""
        for tally in self._tallies:
            tally.flush()
        for latency in self._http_latency.values():
            latency.flush()
        self._flush_sessions()
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

    def _flush_sessions(self) -> None:
        """Connections, commands and subscriptions tallied since the last flush."""
        for method, count in self._commands_ok.items():
            self.commands.labels(method, "ok").inc(count)
        self._commands_ok = {}
        for transport, count in self._connected.items():
            self.connections.labels(transport).set(count - self._disconnected.get(transport, 0))
            new = count - self._flushed.get(transport, 0)
            if new or transport not in self._flushed:
                self.connects.labels(transport, "ok").inc(new)
            self._flushed[transport] = count
        codes, self._codes = self._codes, {}
        for code, count in codes.items():
            self.disconnects.labels(str(code)).inc(count)
        live = 0
        for namespace, count in self._subscribed.items():
            now = count - self._unsubscribed.get(namespace, 0)
            self.subscriptions.labels(namespace).set(now)
            live += now
        self.subscribers_active.set(live)
        for private, visibility in enumerate(("public", "private")):
            active = self._opened[private] - self._closed[private]
            self.channels_active.labels("active", visibility).set(active)

    def exposition(self) -> bytes:
        """The Prometheus text exposition (of every worker, under ``--workers``)."""
        self.sync()
        return generate_latest(self._scrape)
