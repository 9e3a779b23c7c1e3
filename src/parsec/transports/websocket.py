"""The WebSocket transport: an ASGI endpoint at ``/connection/websocket``.

Inbound frames go to the Session in order, one at a time. Outbound messages are
queued by ``WebSocketTransport.write`` and sent by one writer task per connection,
which joins everything queued since its last send into one text frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from parsec.engine import faults
from parsec.engine.aio import cancel_and_wait
from parsec.engine.lifecycle import advance
from parsec.engine.node import Node
from parsec.engine.session import Session

__all__ = [
    "WEBSOCKET_PATH",
    "WebSocketEndpoint",
    "WebSocketTransport",
    "WriterState",
    "log_refused_origin",
    "origin_allowed",
]

log = logging.getLogger("parsec.websocket")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WEBSOCKET_PATH = "/connection/websocket"
"""Where clients open the Centrifugo protocol WebSocket."""
CLOSE_TOO_BIG = 1009
CLOSE_HANDSHAKE_TIMEOUT = 5.0


class WriterState(enum.Enum):
    """OPEN (writing) → CLOSING (``close`` asked: what is queued, then the close frame)
    → DONE (the writer ended: close sent, peer gone or aborted); OPEN → DONE on abort or
    a failed send."""

    OPEN = "open"
    CLOSING = "closing"
    DONE = "done"


_WRITER_TRANSITIONS: Mapping[WriterState, frozenset[WriterState]] = {
    WriterState.OPEN: frozenset({WriterState.CLOSING, WriterState.DONE}),
    WriterState.CLOSING: frozenset({WriterState.DONE}),
    WriterState.DONE: frozenset(),
}
_OPEN = WriterState.OPEN


class WebSocketTransport:
    """Transport over an accepted ASGI WebSocket. See ``parsec.engine.transport``.

    The writer task belongs to the transport: it ends once the close frame is sent, and
    ``abort`` (or ``finish``) cancels it; the endpoint calls one of them on every path."""

    __slots__ = (
        "_close",
        "_max",
        "_queue",
        "_send",
        "_size",
        "_state",
        "_wakeup",
        "_writer",
        "closing",
    )

    def __init__(self, send: Send, max_queue_size: int) -> None:
        self._send = send
        self._max = max_queue_size
        self._queue: list[bytes] = []
        self._size = 0
        self._close: tuple[int, str] | None = None
        """The close code and reason, once ``close`` was called."""
        self._wakeup: asyncio.Future[None] | None = None
        self._state = WriterState.OPEN
        loop = asyncio.get_running_loop()
        self.closing: asyncio.Future[None] = loop.create_future()
        """Resolved once ``close`` was called: the reader stops waiting for the peer."""
        self._writer = loop.create_task(self._run())

    @property
    def name(self) -> str:
        return "websocket"

    def write(self, message: bytes) -> bool:
        if self._state is not _OPEN:
            return True
        size = len(message) + 1
        if self._size + size > self._max:
            return False
        self._queue.append(message)
        self._size += size
        self._wake()
        return True

    def close(self, code: int, reason: str) -> None:
        if self._state is _OPEN:
            self._close = (code, reason)
            self._advance(WriterState.CLOSING)
            self._wake()
        if not self.closing.done():
            self.closing.set_result(None)

    def _advance(self, to: WriterState) -> None:
        self._state = advance("websocket writer", self._state, to, _WRITER_TRANSITIONS)

    def _end(self) -> None:
        if self._state is not WriterState.DONE:
            self._advance(WriterState.DONE)

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None:
            self._wakeup = None
            if not waiter.done():
                waiter.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._queue:
                    if self._close is not None:
                        code, reason = self._close
                        await self._send(
                            {"type": "websocket.close", "code": code, "reason": reason}
                        )
                        return
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                batch, self._queue, self._size = self._queue, [], 0
                text = (batch[0] if len(batch) == 1 else b"\n".join(batch)).decode()
                await self._send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError) as exc:  # the peer went away mid-send
            log.debug("websocket write failed: %s", exc)
        finally:
            self._end()

    async def finish(self) -> None:
        """Wait (at most CLOSE_HANDSHAKE_TIMEOUT) for queued messages and the close
        frame to be sent, then stop."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(CLOSE_HANDSHAKE_TIMEOUT):
                await asyncio.shield(self._writer)
        self.abort()

    def abort(self) -> None:
        """Stop writing at once (the connection is gone). Idempotent."""
        self._end()
        self._writer.cancel()


def origin_allowed(origin: str, host: str, allowed: list[str]) -> bool:
    """Whether a browser Origin may connect. An empty allow-list admits only the
    server's own host; ``*`` admits any; entries are globs (``https://*.example.com``)."""
    origin = origin.lower().rstrip("/")
    if not allowed:
        return urlsplit(origin).netloc == host.lower()
    return any(p == "*" or fnmatch.fnmatchcase(origin, p.lower().rstrip("/")) for p in allowed)


def log_refused_origin(origin: str, host: str, allowed: list[str]) -> None:
    """Say at INFO on ``parsec.websocket`` that ``origin`` was refused, what the
    allow-list admits, and the settings that would admit it."""
    if allowed:
        admits = f"admits only {', '.join(allowed)}"
    else:
        admits = f"is empty, so it admits only the server's own host {host.lower()!r}"
    log.info(
        "websocket from origin %r refused: server.allowed_origins %s; to admit it, add it "
        "to allowed_origins in the [server] table of the config file, to "
        "PARSEC_ALLOWED_ORIGINS (comma-separated), or pass parsec serve --allowed-origin %r",
        origin,
        admits,
        origin,
    )


class WebSocketEndpoint:
    """Raw ASGI endpoint: one Session per accepted WebSocket."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await _plain_response(send, 400, b"websocket only")
            return
        opts = self.node.options
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin and not origin_allowed(
            origin, headers.get("host", ""), opts.server.allowed_origins
        ):
            log_refused_origin(origin, headers.get("host", ""), opts.server.allowed_origins)
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        transport = WebSocketTransport(send, opts.client.queue_max_size)
        try:
            await self._serve(self.node.new_session(transport), transport, receive)
        finally:
            transport.abort()  # the writer task ends with the connection, whatever happened

    async def _serve(
        self, session: Session, transport: WebSocketTransport, receive: Receive
    ) -> None:
        """Feed the session the peer's messages until either side closes; then release
        the session and (unless the peer is gone) send what is queued and the close."""
        max_frame = self.node.options.server.max_frame_size
        peer_gone = False
        try:
            while not session.is_closed:
                message = await _receive_unless(receive, transport.closing)
                if message is None:  # the session closed while the peer was silent
                    break
                if message["type"] != "websocket.receive":
                    if message.get("code") == CLOSE_TOO_BIG:
                        # The ASGI server refused a message over its own limit (uvicorn
                        # is given server.max_frame_size) and closed with 1009.
                        self._too_big(session, max_frame)
                    peer_gone = True
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if _too_big(data, max_frame):
                    self._too_big(session, max_frame)
                    transport.close(CLOSE_TOO_BIG, "message size limit exceeded")
                    break
                await session.handle_frame(data)
        finally:
            if peer_gone:
                transport.abort()
            await session.closed()
            if not peer_gone:
                await transport.finish()

    def _too_big(self, session: Session, limit: int) -> None:
        self.node.client_faults.report(
            faults.FRAME_TOO_BIG,
            session,
            "message over %d bytes from client %s; closing with 1009",
            limit,
            session.client_id,
        )


async def _receive_unless(receive: Receive, closing: asyncio.Future[None]) -> Message | None:
    """The next ASGI message, or None if ``closing`` resolves first (a session closed by
    a timer or a slow-consumer disconnect must not wait for a peer that never speaks)."""
    receiving = asyncio.ensure_future(receive())
    try:
        await asyncio.wait((receiving, closing), return_when=asyncio.FIRST_COMPLETED)
        if receiving.done():
            return receiving.result()
    finally:
        if not receiving.done():  # ``closing`` won, or this reader was cancelled
            await cancel_and_wait(receiving)
    return None


def _too_big(data: str | bytes, limit: int) -> bool:
    """Whether a frame is over ``limit`` bytes. A text frame counts in UTF-8 bytes (up
    to 4 per character), encoded only when its character count cannot decide."""
    if len(data) > limit:
        return True
    return isinstance(data, str) and len(data) * 4 > limit and len(data.encode()) > limit


async def _plain_response(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
