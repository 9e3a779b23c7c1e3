"""The OpenTelemetry side of :mod:`parsec.observability.tracing`: imported only when
``[observability] otlp_endpoint`` is set.

A TracerProvider of its own (not the global one: an application embedding Parsec keeps
its own), a batch processor and the OTLP/HTTP span exporter posting protobuf to
``<endpoint>/v1/traces``. Resource: ``service.name=parsec``, ``service.version``,
``service.instance.id`` and ``parsec.node_id`` (the node id), ``cloud.region`` and
``parsec.region`` (when a region is set).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from parsec.observability import tracing
from parsec.observability.tracing import Attributes
from parsec.version import __version__

__all__ = ["OtelTracing"]

_PROPAGATOR = TraceContextTextMapPropagator()


class OtelTracing:
    """Spans exported to an OTLP/HTTP collector (see the module docstring)."""

    enabled = True

    def __init__(self, endpoint: str, *, node_id: str, region: str = "") -> None:
        attributes: dict[str, str] = {
            "service.name": "parsec",
            "service.version": __version__,
            "service.instance.id": node_id,
            "parsec.node_id": node_id,
        }
        if region:
            attributes["cloud.region"] = attributes["parsec.region"] = region
        self._provider = TracerProvider(resource=Resource.create(attributes))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("parsec", __version__)
        self._closed = False

    async def start(self) -> None:
        tracing.install(self)

    async def aclose(self) -> None:
        """Flush what is buffered (the exporter posts synchronously: in a thread), then
        shut the provider down. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tracing.uninstall(self)
        await asyncio.to_thread(self._provider.shutdown)

    def span(
        self, name: str, attributes: Attributes | None = None
    ) -> AbstractContextManager[object]:
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def server_span(
        self, name: str, headers: Mapping[str, str], attributes: Attributes | None = None
    ) -> AbstractContextManager[str | None]:
        return self._server_span(name, headers, attributes)

    @contextlib.contextmanager
    def _server_span(
        self, name: str, headers: Mapping[str, str], attributes: Attributes | None
    ) -> Iterator[str | None]:
        parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else None
        with self._tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield format_trace_id(span.get_span_context().trace_id)
