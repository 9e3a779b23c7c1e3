"""The native WebSocket transport: ``/connection/websocket`` without ASGI.

``Parsec.run`` (and so ``parsec serve``) listens with uvicorn for HTTP, but a WebSocket
upgrade of the client path never reaches the ASGI stack: ``ParsecHttpProtocol``
reads the request head of each new connection and hands an upgrade of that path to a
picows protocol (WebSocket framing in C), everything else to uvicorn's HTTP protocol,
on the same socket. This removes, per connection, the middleware stack, the ASGI
message dicts and a writer task, and per message, a task switch and a frame object.

Writes are coalesced per event-loop tick: ``NativeTransport.write`` appends to the
connection's pending list, and one callback per tick (shared by every connection of
the loop) sends each pending list as one text frame. Messages written in one tick —
one publication fanned out to many channels a client is on, replies to a batch of
commands — share a frame; a lone message is sent in the same tick it was written.

A mounted ASGI app (``Parsec.asgi_app``) keeps serving the same path through
:mod:`parsec.transports.websocket`; both give the same guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows import picows as _picows

from parsec.engine import faults
from parsec.engine.codes import disconnects
from parsec.engine.faults import ClientFaults
from parsec.engine.node import Node
from parsec.engine.session import Session
from parsec.observability.access_log import NativeUpgrades, request_id_of
from parsec.transports.websocket import log_refused_origin, origin_allowed

__all__ = ["NativeTransport", "SessionListener", "listener_factory", "protocol_factory"]

log = logging.getLogger("parsec.websocket")

_WSProtocol: Any = getattr(_picows, "WSProtocol")  # noqa: B009 - not in picows' stubs
_PING_WHEN_IDLE: Any = getattr(_picows, "WSAutoPingStrategy").PING_WHEN_IDLE  # noqa: B009
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INTERNAL_ERROR = 1011

CLOSE_TOO_BIG = 1009
HANDSHAKE_TIMEOUT = 5.0
_PARSER_ERROR = "WS parser error"
"""How picows starts the line it logs for a frame it could not parse."""
READ_BUFFER_SIZE = 2048
"""picows' initial read buffer per connection; it grows for larger frames. Client
commands are small, so a small start keeps idle connections light."""


class _Flusher:
    """Sends, once per loop tick, what every connection queued during the tick. One
    per event loop; it holds no reference to its loop, so the loop can be collected."""

    __slots__ = ("_dirty", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[NativeTransport] = []
        self._scheduled = False

    def mark(self, transport: NativeTransport) -> None:
        self._dirty.append(transport)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for transport in dirty:
            transport.flush()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    """The loop's flusher (one per event loop, made on first use)."""
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher()
    return flusher


class NativeTransport:
    """Transport over a picows connection. See ``parsec.engine.transport``.

    The queue limit counts the bytes not yet handed to the kernel: those pending in
    this tick plus the socket transport's write buffer."""

    __slots__ = ("_closed", "_flusher", "_max", "_pending", "_pending_size", "_raw", "_ws")

    name = "websocket"

    def __init__(self, ws: WSTransport, max_queue_size: int, flusher: _Flusher) -> None:
        self._ws = ws
        self._raw: Any = ws.underlying_transport
        self._max = max_queue_size
        self._flusher = flusher
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        self._closed = False

    def write(self, message: bytes) -> bool:
        if self._closed:
            return True
        size = self._pending_size + len(message) + 1
        if size + self._raw.get_write_buffer_size() > self._max:
            return False
        pending = self._pending
        if pending is None:
            self._pending = [message]
            self._flusher.mark(self)
        else:
            pending.append(message)
        self._pending_size = size
        return True

    def flush(self) -> None:
        """Send what is pending as one text frame."""
        pending = self._pending
        if pending is None:
            return
        self._pending, self._pending_size = None, 0
        if self._ws.is_disconnected:
            return
        self._ws.send(WSMsgType.TEXT, pending[0] if len(pending) == 1 else b"\n".join(pending))

    def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        ws = self._ws
        if not ws.is_disconnected:
            ws.send_close(code, reason.encode())  # type: ignore[arg-type]  # any 1000-4999 code
            ws.disconnect(graceful=True)

    def gone(self) -> None:
        """The connection is lost: drop whatever is still pending."""
        self._closed = True
        self._pending = None


class SessionListener(WSListener):
    """One Session per connection. Inbound messages go to the Session in order, one
    at a time; while one is being handled the socket is not read (backpressure).

    Messages are handled in a task the node owns (:meth:`Node.spawn`), one per burst:
    it handles the message that started it, then those queued meanwhile, and ends.
    So an idle connection holds no task, and :meth:`Node.aclose` cancels and awaits
    whatever is still being handled. A connection that goes away does not cancel the
    message being handled: it was received whole, and is handled to its end as on the
    ASGI transport (a ``send`` just before closing still reaches the handler); what is
    queued behind it is dropped."""

    __slots__ = (
        "_busy",
        "_fragments",
        "_fragments_size",
        "_inbox",
        "_max_frame",
        "_paused",
        "_upgrade",
        "node",
        "session",
        "transport",
    )

    def __init__(self, node: Node, upgrade: _Upgrade | None = None) -> None:
        self.node = node
        self._upgrade = upgrade
        self.session: Session | None = None
        self.transport: NativeTransport | None = None
        self._inbox: deque[bytes] | None = None
        self._busy = False
        self._paused = False
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._max_frame = node.options.server.max_frame_size

    def on_ws_connected(self, transport: WSTransport) -> None:
        loop = asyncio.get_running_loop()
        queue_max = self.node.options.client.queue_max_size
        self.transport = NativeTransport(transport, queue_max, _flusher(loop))
        self.session = self.node.new_session(self.transport)
        upgrade, self._upgrade = self._upgrade, None
        if upgrade is not None:
            upgrade.logged(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if transport.is_close_frame_sent:
            # Closing (picows itself sends the close after a framing error, and keeps
            # parsing what follows): nothing more reaches the session.
            return
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self._fragments is not None:
                self._close(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
            elif frame.fin:
                self._receive(frame.get_payload_as_bytes())
            else:
                self._fragments, self._fragments_size = [], 0
                self._add_fragment(frame)
        elif kind is WSMsgType.CONTINUATION:
            if self._fragments is None:
                self._close(CLOSE_PROTOCOL_ERROR, "unexpected continuation frame")
            elif self._add_fragment(frame) and frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._receive(data)
        elif kind is WSMsgType.CLOSE:
            code = frame.get_close_code()
            transport.send_close(code if code != WSCloseCode.NO_INFO else WSCloseCode.OK)
            transport.disconnect(graceful=True)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.transport is not None:
            self.transport.gone()
        if self.session is not None:
            self.session.close()  # the node finishes the cleanup

    def _add_fragment(self, frame: WSFrame) -> bool:
        """Keep one fragment of a message; False (and 1009) once the message is over
        the size limit."""
        assert self._fragments is not None
        self._fragments_size += frame.payload_size
        if self._fragments_size > self._max_frame:
            self._fragments = None
            self._fault(faults.FRAME_TOO_BIG, "fragmented message over %d bytes", self._max_frame)
            self._close(CLOSE_TOO_BIG, "message size limit exceeded")
            return False
        self._fragments.append(frame.get_payload_as_bytes())
        return True

    def _close(self, code: int, reason: str) -> None:
        if code == CLOSE_PROTOCOL_ERROR:
            self._fault(faults.WEBSOCKET_PROTOCOL_ERROR, "broken framing (%s)", reason)
        if self.transport is not None:
            self.transport.close(code, reason)

    def _fault(self, reason: str, what: str, *args: object) -> None:
        session = self.session
        client = session.client_id if session is not None else "?"
        self.node.client_faults.report(
            reason, session, what + " from client %s; closing", *args, client
        )

    def _receive(self, data: bytes) -> None:
        if self._busy:
            if self._inbox is None:
                self._inbox = deque()
            self._inbox.append(data)
            raw = self.transport._raw if self.transport is not None else None
            if not self._paused and raw is not None and not raw.is_closing():
                raw.pause_reading()  # read no more until the queued frames are handled
                self._paused = True
            return
        session = self.session
        if session is None or session.is_closed:
            return
        self._busy = True
        try:
            self.node.spawn(self._handle(session, data))
        except RuntimeError:  # the node is closed: so is this connection (3001)
            self._busy = False
            session.close(disconnects.SHUTDOWN())

    async def _handle(self, session: Session, data: bytes) -> None:
        try:
            while True:
                await session.handle_frame(data)
                inbox = self._inbox
                if not inbox or session.is_closed:
                    return
                data = inbox.popleft()
        except Exception:
            log.exception("handling a frame from %s failed", session.client_id)
            self._close(CLOSE_INTERNAL_ERROR, "internal server error")
        finally:
            self._busy = False
            if self._inbox:
                self._inbox.clear()
            if self._paused:
                self._paused = False
                raw = self.transport._raw if self.transport is not None else None
                if raw is not None and not raw.is_closing():
                    raw.resume_reading()


def listener_factory(node: Node, path: str, trusted_proxies: Sequence[str] = ()) -> Any:
    """The picows listener factory: a SessionListener for an upgrade of ``path`` from
    an allowed origin; 403 for a refused origin, 404 for any other path."""
    allowed = node.options.server.allowed_origins
    target = path.encode()
    upgrades = NativeUpgrades(trusted_proxies)

    def factory(request: WSUpgradeRequest) -> Any:
        if request.path.split(b"?", 1)[0] != target:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(404, b"not found"), None
            )
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin and not origin_allowed(origin, host, allowed):
            log_refused_origin(origin, host, allowed)
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(403, b"origin not allowed"), None
            )
        upgrade = _Upgrade(upgrades, request)
        response = WSUpgradeResponse.create_101_response({"X-Request-ID": upgrade.request_id})
        return WSUpgradeResponseWithListener(response, SessionListener(node, upgrade))

    return factory


class _Upgrade:
    """An upgrade accepted, until its access-log line is written (once connected)."""

    __slots__ = ("request", "request_id", "start", "upgrades")

    def __init__(self, upgrades: NativeUpgrades, request: WSUpgradeRequest) -> None:
        self.upgrades = upgrades
        self.request = request
        self.request_id = request_id_of(request.headers.get("x-request-id"))
        self.start = time.perf_counter()

    def logged(self, transport: WSTransport) -> None:
        peer = transport.underlying_transport.get_extra_info("peername")
        self.upgrades.log(
            self.request.path.decode("latin-1"),
            self.request_id,
            str(peer[0]) if peer else "",
            self.request.headers,
            self.start,
        )


class _PicowsLog:
    """The logger picows is given: shared by every connection. (Given a
    ``logging.Logger``, picows would make a child logger per connection.) Info and
    debug lines, one per connection, are dropped; warnings and errors go to
    ``parsec.websocket``, except framing errors a client caused (an oversized or
    broken frame), which are client faults (:mod:`parsec.engine.faults`)."""

    __slots__ = ("_faults",)

    name = "parsec.websocket"

    def __init__(self, client_faults: ClientFaults) -> None:
        self._faults = client_faults

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and log.isEnabledFor(level)

    def log(self, level: int, msg: str, *args: object, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            log.log(level, msg, *args, **kwargs)

    def debug(self, msg: str, *args: object, **kwargs: Any) -> None:
        """Dropped."""

    def info(self, msg: str, *args: object, **kwargs: Any) -> None:
        """Dropped."""

    def warning(self, msg: str, *args: object, **kwargs: Any) -> None:
        log.warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: object, **kwargs: Any) -> None:
        if msg.startswith(_PARSER_ERROR) and args and isinstance(args[0], tuple):
            # picows' WSProtocolError(close code, text): the client sent bad framing.
            code, *text = args[0] or (None,)
            too_big = code == CLOSE_TOO_BIG
            reason = faults.FRAME_TOO_BIG if too_big else faults.WEBSOCKET_PROTOCOL_ERROR
            self._faults.report(
                reason,
                None,
                "websocket framing error from a client (%s); closing with %s",
                text[0] if text else "unknown",
                int(code) if isinstance(code, int) else code,
            )
            return
        log.error(msg, *args, **kwargs)

    def exception(self, msg: str, *args: object, **kwargs: Any) -> None:
        log.exception(msg, *args, **kwargs)


def protocol_factory(node: Node, path: str, trusted_proxies: Sequence[str] = ()) -> Any:
    """A picows server protocol for one connection (its handshake not yet read);
    ``trusted_proxies``: the CIDRs whose ``X-Forwarded-For`` the access log believes."""
    factory = listener_factory(node, path, trusted_proxies)
    max_frame = node.options.server.max_frame_size
    logger = _PicowsLog(node.client_faults)

    def make() -> asyncio.BufferedProtocol:
        protocol: asyncio.BufferedProtocol = _WSProtocol(
            None,
            None,
            False,
            factory,
            logger,
            True,
            HANDSHAKE_TIMEOUT,
            False,
            20.0,
            20.0,
            _PING_WHEN_IDLE,
            True,
            max_frame,
            None,
            READ_BUFFER_SIZE,
        )
        return protocol

    return make
