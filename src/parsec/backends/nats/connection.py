"""NatsConnection: one node's connection to NATS, shared by its broker and controller,
and how NATS failures reach the engine.

The connection is opened in the background (``open``): a node starts while NATS is
down, and nats-py keeps reconnecting, forever, with a pause between attempts, and
re-subscribes every subscription once it is back. Publishing is never buffered while
the connection is down: a backend call that needs NATS raises at once

* ``PARSEC_BROKER_NOT_READY`` (HTTP 503; client error 100, temporary) when NATS is not
  connected, or does not answer in time;
* ``PARSEC_BROKER_INTERNAL`` (HTTP 500) when NATS refuses what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import nats.errors
from nats.aio.client import Client

from parsec.backends.nats.urls import NatsURL, parse_url, redacted
from parsec.errors import ParsecClientError, ParsecError

__all__ = ["NatsConnection", "barrier", "broker_error", "translated"]

log = logging.getLogger("parsec.nats")

_UNREACHABLE = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.TimeoutError,
    nats.errors.NoServersError,
    OSError,
    TimeoutError,
)
"""Failures that mean NATS is down, unreachable or too slow: retrying later may work."""


def broker_error(code: str, message: str) -> ParsecClientError:
    """The error a backend call raises: a client error carrying ParsecError ``code``."""
    return ParsecError(code, message).client_error()


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn a NATS failure inside the block into the backend's coded error.

    ``action`` completes the message: "nats is unreachable while <action>"."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise broker_error(
            "PARSEC_BROKER_NOT_READY", f"nats is unreachable while {action}: {exc!r}"
        ) from exc
    except nats.errors.MaxPayloadError as exc:
        raise broker_error(
            "PARSEC_INVALID_ARGUMENT", f"too large for the NATS server's max_payload ({action})"
        ) from exc
    except nats.errors.Error as exc:
        raise broker_error(
            "PARSEC_BROKER_INTERNAL", f"nats failed while {action}: {exc!r}"
        ) from exc


async def barrier(client: Client, within: int) -> None:
    """Return once the NATS server has handled every command this client sent before the
    call (a subscribe is then in force; a publish has reached the server).

    ``Client.flush`` alone is no such barrier in nats-py 2.16: it writes its PING to the
    socket at once, while the commands before it (SUB, PUB) wait in a buffer for the
    flusher task, so the PONG can come back before the server saw them — a publication
    right after a "confirmed" subscribe was then lost now and then. The first flush lets
    the flusher task write the buffer (it was scheduled before the PONG can arrive); the
    second PING then follows those commands on the wire."""
    await client.flush(timeout=within)
    await client.flush(timeout=within)


class NatsConnection:
    """A nats-py client connected in the background, for the backends of one node.

    ``holders`` backends share it: each calls ``release`` once when it closes, and the
    last release closes the connection (``aclose`` closes it at once). ``name`` labels
    the connection in the NATS server's monitoring. Reconnect attempts pause
    ``reconnect_wait`` seconds; a connection that answers no ping for
    three ``ping_interval`` periods is taken for lost.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a malformed URL.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "parsec",
        holders: int = 1,
        connect_timeout: int = 2,
        reconnect_wait: int = 1,
        ping_interval: int = 5,
    ) -> None:
        if holders < 1:
            raise ValueError("a connection needs at least one holder")
        self._url: NatsURL = parse_url(url)
        self._shown = redacted(url)
        self._name = name
        self._holders = holders
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._ping_interval = ping_interval
        self._client: Client | None = None
        self._opening: asyncio.Task[None] | None = None
        self._opened_at: float | None = None
        self._changed = asyncio.Event()
        self._warned = False
        self._connecting = False
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return self._client is not None and self._client.is_connected

    def open(self) -> None:
        """Start connecting in the background (once; later calls do nothing)."""
        if self._closed:
            raise RuntimeError("the NATS connection is closed")
        if self._opening is None:
            self._opened_at = time.monotonic()
            self._client = Client()
            self._opening = asyncio.create_task(self._connect(), name="parsec-nats-connect")

    async def wait_connected(self, within: float) -> Client:
        """The client once connected; ``PARSEC_BROKER_NOT_READY`` when it is not
        ``within`` seconds. ``open`` must have been called."""
        client = self._client
        if client is None or self._closed:
            raise RuntimeError("the NATS connection is not open")
        try:
            async with asyncio.timeout(within):
                while not client.is_connected:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise broker_error(
                "PARSEC_BROKER_NOT_READY", f"nats at {self._shown} is not connected"
            ) from None
        return client

    async def settle_opening(self, within: float) -> bool:
        """Wait for the first connection until ``within`` seconds after ``open``
        (shared by the backends that start together, so an unreachable NATS delays
        a node's start once); whether the connection is up."""
        if self._opened_at is None:
            raise RuntimeError("the NATS connection is not open")
        left = self._opened_at + within - time.monotonic()
        if not self.connected and left > 0:
            with contextlib.suppress(ParsecClientError):
                await self.wait_connected(left)
        return self.connected

    def client_now(self) -> Client:
        """The client if connected now, else ``PARSEC_BROKER_NOT_READY`` at once."""
        client = self._client
        if client is None or not client.is_connected:
            raise broker_error("PARSEC_BROKER_NOT_READY", f"nats at {self._shown} is not connected")
        return client

    async def release(self) -> None:
        """Give up one holder's share; the last release closes the connection."""
        if self._holders == 0:
            raise RuntimeError("every holder has already released this connection")
        self._holders -= 1
        if self._holders == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop connecting and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        client = self._client
        if client is not None and self._connecting and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # closing must not fail the caller's shutdown
                log.debug("closing the NATS connection failed: %r", exc)
        self._changed.set()

    # --- nats-py callbacks and the first connect ---------------------------------

    async def _connect(self) -> None:
        assert self._client is not None
        self._connecting = True
        await self._client.connect(
            list(self._url.servers),
            name=self._name,
            connect_timeout=self._connect_timeout,
            reconnect_time_wait=self._reconnect_wait,
            max_reconnect_attempts=-1,
            ping_interval=self._ping_interval,
            max_outstanding_pings=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        log.info("connected to nats at %s", self._shown)
        self._warned = False
        self._changed.set()

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            log.warning("nats: a subscription fell behind and dropped messages: %r", exc)
        elif not self._warned and not self.connected:
            self._warned = True  # once per outage: attempts repeat every reconnect_wait
            log.warning("cannot reach nats at %s (%r); retrying", self._shown, exc)
        else:
            log.debug("nats: %r", exc)

    async def _on_disconnected(self) -> None:
        self._changed.set()
        if not self._closed:
            log.warning("nats connection to %s lost; reconnecting", self._shown)

    async def _on_reconnected(self) -> None:
        self._warned = False
        self._changed.set()
        log.info("nats connection to %s is back", self._shown)
