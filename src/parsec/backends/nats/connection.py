"""NatsConnection: one node's connection to NATS, shared by its broker and controller,
and how NATS failures reach the engine.

The connection is opened in the background (``open``): a node starts while NATS is
down, and nats-py keeps reconnecting, forever, with a pause between attempts, and
re-subscribes every subscription once it is back. Publishing is never buffered while
the connection is down: a backend call that needs NATS raises at once

* ``PARSEC_BROKER_NOT_READY`` (HTTP 503; client error 100, temporary) when NATS is not
  connected, or does not answer in time;
* ``PARSEC_BROKER_INTERNAL`` (HTTP 500) when NATS refuses what was sent.

A connection may authenticate as a NATS user of an account (operator mode,
:class:`NatsUser`: a user JWT and the user's nkey, which signs the server's nonce);
``refused`` then tells when the server turned those credentials down
("Authorization Violation"), and ``wait_accepted`` stops waiting at once when it does;
a user that can be reinstated (its account pushed again) is, at most every
:data:`REINSTATE_INTERVAL` seconds, while the refusals last.
:func:`probe` tries credentials once, without reconnecting: nats-py 2.16, retrying
after a refusal, can drop a socket without closing it, so check credentials with
``probe`` before a connection that reconnects forever is opened with them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client

from parsec.backends.nats.keys import NKey
from parsec.backends.nats.urls import NatsURL, parse_url, redacted
from parsec.errors import ParsecClientError, ParsecError

__all__ = [
    "CLOSE_TIMEOUT",
    "REINSTATE_INTERVAL",
    "CredentialsRefused",
    "NatsConnection",
    "NatsUser",
    "barrier",
    "broker_error",
    "is_refusal",
    "probe",
    "translated",
]

log = logging.getLogger("parsec.nats")

CLOSE_TIMEOUT = 5.0
"""Seconds ``aclose`` gives nats-py to flush and close the socket."""

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


REINSTATE_INTERVAL = 5.0
"""Seconds between two attempts to reinstate a refused connection's user."""


@dataclass(frozen=True, slots=True)
class NatsUser:
    """Who a connection authenticates as in operator mode: the user's JWT and its key
    (whose seed signs the server's nonce; never logged). ``reinstate``, when given,
    makes the server know the user's account again (pushes its account JWT): a
    connection the server refuses calls it, then goes on retrying."""

    jwt: str
    key: NKey
    reinstate: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)

    def jwt_bytes(self) -> bytearray:
        return bytearray(self.jwt.encode())

    def sign_nonce(self, nonce: str) -> bytes:
        return base64.b64encode(self.key.sign(nonce.encode()))


class CredentialsRefused(Exception):
    """The NATS server refused the connection's credentials (Authorization Violation)."""


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the server refusing a connection's credentials."""
    return isinstance(exc, nats.errors.AuthorizationError) or (
        isinstance(exc, nats.errors.Error) and "authorization violation" in str(exc).lower()
    )


async def probe(url: str, user: NatsUser, within: float) -> None:
    """Connect once as ``user`` (no reconnecting) and close again.

    Raises :class:`CredentialsRefused` when the server refuses the credentials,
    ``PARSEC_BROKER_NOT_READY`` when no server answers within ``within`` seconds."""
    client = Client()
    refusals: list[Exception] = []

    async def record(exc: Exception) -> None:
        if is_refusal(exc):
            refusals.append(exc)

    try:
        async with asyncio.timeout(within):
            await client.connect(
                list(parse_url(url).servers),
                connect_timeout=max(1, int(within)),
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                user_jwt_cb=user.jwt_bytes,
                signature_cb=user.sign_nonce,
                error_cb=record,
            )
    except Exception as exc:
        if refusals or is_refusal(exc):
            raise CredentialsRefused(str(refusals[-1] if refusals else exc)) from None
        raise broker_error(
            "PARSEC_BROKER_NOT_READY", f"nats at {redacted(url)} is not reachable: {exc!r}"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await client.close()


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
    three ``ping_interval`` periods is taken for lost. ``user``: authenticate as that
    NATS user (operator mode).

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
        user: NatsUser | None = None,
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
        self._user = user
        self._refused: Exception | None = None
        self._reinstating: asyncio.Task[None] | None = None
        self._reinstated_at = -REINSTATE_INTERVAL
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

    @property
    def refused(self) -> bool:
        """Whether the server refused this connection's credentials at its last
        attempt (cleared once connected)."""
        return self._refused is not None

    async def wait_accepted(self, within: float) -> Client:
        """Like ``wait_connected``, but raises :class:`CredentialsRefused` as soon as
        the server refuses the credentials (nats-py keeps retrying in the background:
        close the connection if the refusal is final)."""
        client = self._client
        if client is None or self._closed:
            raise RuntimeError("the NATS connection is not open")
        try:
            async with asyncio.timeout(within):
                while not client.is_connected:
                    if self._refused is not None:
                        raise CredentialsRefused(str(self._refused))
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise broker_error(
                "PARSEC_BROKER_NOT_READY", f"nats at {self._shown} is not connected"
            ) from None
        return client

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
        for task in (self._reinstating, self._opening):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reinstating = None
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        client = self._client
        if client is not None and self._connecting and not client.is_closed:
            try:
                # nats-py flushes and waits for its socket to close: bounded, so a
                # half-dead peer cannot hold up the node's shutdown.
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await client.close()
            except Exception as exc:  # closing must not fail the caller's shutdown
                log.debug("closing the NATS connection failed: %r", exc)
        self._changed.set()

    # --- nats-py callbacks and the first connect ---------------------------------

    async def _connect(self) -> None:
        assert self._client is not None
        self._connecting = True
        user = self._user
        await self._client.connect(
            list(self._url.servers),
            user_jwt_cb=None if user is None else user.jwt_bytes,
            signature_cb=None if user is None else user.sign_nonce,
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
        self._refused = None
        self._changed.set()

    async def _on_error(self, exc: Exception) -> None:
        if is_refusal(exc):
            self._refused = exc
            self._changed.set()
            self._reinstate()
        if isinstance(exc, nats.errors.SlowConsumerError):
            log.warning("nats: a subscription fell behind and dropped messages: %r", exc)
        elif not self._warned and not self.connected:
            self._warned = True  # once per outage: attempts repeat every reconnect_wait
            log.warning("cannot reach nats at %s (%r); retrying", self._shown, exc)
        else:
            log.debug("nats: %r", exc)

    def _reinstate(self) -> None:
        """Have the refused user's account pushed again, in the background (owned:
        ``aclose`` cancels it); nats-py's next attempt then gets in."""
        user = self._user
        if user is None or user.reinstate is None or self._closed:
            return
        if self._reinstating is not None and not self._reinstating.done():
            return
        now = time.monotonic()
        if now - self._reinstated_at < REINSTATE_INTERVAL:
            return
        self._reinstated_at = now
        self._reinstating = asyncio.create_task(
            self._reinstate_once(user.reinstate), name="parsec-nats-reinstate"
        )

    async def _reinstate_once(self, reinstate: Callable[[], Awaitable[None]]) -> None:
        log.warning(
            "nats at %s refuses %s's user; pushing its account again", self._shown, self._name
        )
        try:
            await reinstate()
        except Exception as exc:  # the next refusal tries again
            log.warning("nats: %s's account could not be pushed again: %s", self._name, exc)

    async def _on_disconnected(self) -> None:
        self._changed.set()
        if not self._closed:
            log.warning("nats connection to %s lost; reconnecting", self._shown)

    async def _on_reconnected(self) -> None:
        self._warned = False
        self._refused = None
        self._changed.set()
        log.info("nats connection to %s is back", self._shown)
