"""Tracing: OpenTelemetry spans when ``[observability] otlp_endpoint`` is set, a no-op
that costs nothing otherwise.

:func:`open_tracing` is what a :class:`parsec.Parsec` owns: :data:`NOOP` when no
endpoint is set (nothing of OpenTelemetry is imported), else an
:class:`~parsec.observability.otel.OtelTracing` (a TracerProvider exporting over
OTLP/HTTP to ``<endpoint>/v1/traces``, resource ``service.name=parsec``, the node id and
the region). While the instance runs, its tracer is the process's :func:`tracer` (one
traced instance per process: the last started wins), which the spans of the server API,
ParsecService, broker publish, sink deliveries and token issuance use::

    with tracer().span("parsec.publish", {"parsec.channel_visibility": "public"}):
        ...

A span opened inside another (same task or a task it started) is its child; the
access log's request span (:mod:`parsec.observability.access_log`) continues an
incoming W3C ``traceparent``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final, Protocol

from parsec.tomlfile import ConfigError

if TYPE_CHECKING:
    from parsec.options import Options

__all__ = ["NOOP", "Attributes", "Tracer", "Tracing", "open_tracing", "tracer"]

Attributes = Mapping[str, str | int | float | bool]
_NULL: Final = contextlib.nullcontext(None)
"""Reusable: entering it allocates nothing."""


class Tracer(Protocol):
    """Opens spans. Guarantees: never raises for tracing's own failures (an exporter
    that cannot reach its collector drops spans); the no-op returns a shared null
    context."""

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded (False: the no-op)."""

    def span(
        self, name: str, attributes: Attributes | None = None
    ) -> AbstractContextManager[object]:
        """An internal span, child of the current one."""

    def server_span(
        self, name: str, headers: Mapping[str, str], attributes: Attributes | None = None
    ) -> AbstractContextManager[str | None]:
        """A server span for an incoming request continuing the W3C ``traceparent`` (and
        ``tracestate``) in ``headers`` (lower-case names); yields its trace id (32 hex
        characters), None for the no-op."""


class Tracing(Tracer, Protocol):
    """A tracer its owner starts and closes (flushing what is buffered)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None:
        """Flush buffered spans and stop exporting. Idempotent."""


class _Noop:
    enabled = False

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[None]:
        return _NULL

    def server_span(
        self, name: str, headers: Mapping[str, str], attributes: Attributes | None = None
    ) -> AbstractContextManager[None]:
        return _NULL

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


NOOP: Final[Tracing] = _Noop()
_current: Tracer = NOOP


def tracer() -> Tracer:
    """The running traced instance's tracer, else :data:`NOOP`."""
    return _current


def install(tracing: Tracer) -> None:
    """Make ``tracing`` the process's tracer (called by a tracing's ``start``)."""
    global _current
    _current = tracing


def uninstall(tracing: Tracer) -> None:
    """Back to :data:`NOOP`, when ``tracing`` is still the process's tracer."""
    global _current
    if _current is tracing:
        _current = NOOP


def open_tracing(options: Options, node_id: str) -> Tracing:
    """:data:`NOOP` without ``observability.otlp_endpoint``; else an OpenTelemetry
    tracing. Raises ConfigError (key ``observability.otlp_endpoint``) when the endpoint
    is not an ``http(s)://`` URL or OpenTelemetry is not installed (the ``otel``
    extra)."""
    endpoint = options.observability.otlp_endpoint
    if not endpoint:
        return NOOP
    key = "observability.otlp_endpoint"
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(key, f"{endpoint!r} is not an http:// or https:// URL")
    try:
        from parsec.observability.otel import OtelTracing
    except ImportError as exc:
        raise ConfigError(
            key,
            f"tracing needs OpenTelemetry, which is not installed ({exc.name}): "
            "install parsec-realtime[otel] or unset it",
            code="missing_dependency",
        ) from None
    return OtelTracing(endpoint, node_id=node_id, region=options.region)
