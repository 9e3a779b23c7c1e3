"""The running side of metrics: the sampler and the optional own address.

:class:`MetricsService` is started and closed with its Parsec instance. Its sampler
task measures the event loop's lag and copies the engine's counts into the metrics
(:meth:`ParsecMetrics.sync`) once a second, so that under ``--workers`` a scrape of
one worker shows the others' recent values. With ``[observability] metrics_addr`` it
also serves ``GET /metrics`` there, on a small HTTP/1.1 server of its own; the main
application then has no ``/metrics`` route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from parsec.engine.aio import cancel_and_wait
from parsec.engine.node import Node
from parsec.observability.access import authorized
from parsec.observability.metrics import CONTENT_TYPE, ParsecMetrics, multiprocess

if TYPE_CHECKING:
    from parsec.options import Options

__all__ = ["SAMPLE_INTERVAL", "MetricsService", "observe"]

log = logging.getLogger(__name__)

SAMPLE_INTERVAL: Final = 1.0
_MAX_HEAD: Final = 16 * 1024
_READ_TIMEOUT: Final = 10.0


def observe(node: Node, options: Options) -> MetricsService:
    """Metrics for ``node`` (made its observer) and the service that runs them, as
    ``options.observability`` says; ``options.region`` labels ``parsec_node_info``."""
    scheme = options.broker.url.partition("://")[0] if "://" in options.broker.url else ""
    metrics = ParsecMetrics(
        node, region=options.region, version=node.version, backend=scheme or "memory"
    )
    node.observer = metrics
    obs = options.observability
    return MetricsService(metrics, obs.metrics_addr, obs.metrics_bearer_token)


class MetricsService:
    """Samples ``metrics`` while started; serves them on ``addr`` (``host:port``) when
    given, answering 401 without ``Authorization: Bearer <bearer>`` when ``bearer`` is
    set. ``start`` once; ``aclose`` is idempotent."""

    def __init__(self, metrics: ParsecMetrics, addr: str | None, bearer: str | None) -> None:
        self.metrics = metrics
        self._addr = addr
        self._bearer = bearer
        self._sampler: asyncio.Task[None] | None = None
        self._servers: list[asyncio.Server] = []

    @property
    def port(self) -> int | None:
        """The port ``addr`` serves on once started (useful with port 0)."""
        for server in self._servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None

    async def start(self) -> None:
        """Listen on ``addr`` (every address its host resolves to; SO_REUSEPORT under
        ``--workers``) and start sampling. Raises
        :class:`parsec.server.listen.ListenError` when ``addr`` cannot be listened on."""
        if self._addr:
            from parsec.server.listen import ListenError, listen

            host, _, port = self._addr.rpartition(":")
            try:
                sockets = listen(host or "127.0.0.1", int(port), reuse_port=multiprocess())
            except ListenError as e:  # named as configured
                raise ListenError(self._addr, e.errno, e.why) from None
            for sock in sockets:
                self._servers.append(await asyncio.start_server(self._serve, sock=sock))
        self._sampler = asyncio.get_running_loop().create_task(self._sample())

    async def aclose(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            await cancel_and_wait(sampler)
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> MetricsService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + SAMPLE_INTERVAL
            await asyncio.sleep(SAMPLE_INTERVAL)
            self.metrics.loop_lag.set(max(0.0, loop.time() - due))
            self.metrics.sync()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            status, body, kind = self._answer(head)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if path != "/metrics":
            return "404 Not Found", b"not found\n", "text/plain"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"method not allowed\n", "text/plain"
        headers = dict(_header(line) for line in lines[1:] if ":" in line)
        if not authorized(self._bearer, headers.get("authorization")):
            return "401 Unauthorized", b"unauthorized\n", "text/plain"
        body = self.metrics.exposition()
        return "200 OK", body if method == "GET" else b"", CONTENT_TYPE


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()
