"""The handoff: read a connection's request head, then hand the connection to uvicorn's
HTTP protocol or to the native WebSocket transport (one listening socket, two protocols).

uvicorn builds a ``ParsecHttpProtocol`` for each accepted connection. It reads the
request head; a WebSocket upgrade of the client path goes to the native transport
(:mod:`parsec.transports.native`), anything else to uvicorn's HTTP protocol, which
then owns the connection exactly as if it had accepted it. The head is parsed only
as far as the decision needs; the protocol that takes over parses it again, fully.
Without a native WebSocket transport the same protocol runs, handing every
connection to HTTP: the limits below hold either way.

A connection that sends no complete head within ``HEAD_TIMEOUT`` seconds is closed
(uvicorn itself would wait forever). A head larger than ``MAX_HEAD`` bytes or with more
than ``MAX_HEADERS`` header lines is answered ``431 Request Header Fields Too Large``,
whether it arrives in one read or many, and whether it is the connection's first
request or a later one on a kept-alive connection (:class:`LimitedHttpProtocol` counts
those as uvicorn parses them). The answer is followed by a lingering close: the server
stops sending, reads and drops what the client still sends for up to ``LINGER_TIMEOUT``
seconds, then closes; closing at once with unread bytes would reset the connection and
the client, still sending, would never read the 431.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.server import ServerState

__all__ = [
    "HEAD_TIMEOUT",
    "LINGER_TIMEOUT",
    "MAX_HEAD",
    "MAX_HEADERS",
    "http_protocol",
]

HEAD_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
"""Largest request head in bytes: request line, header lines, the blank line."""
MAX_HEADERS = 100
"""Most header lines a request may have (Apache's ``LimitRequestFields``)."""
LINGER_TIMEOUT = 5.0
"""How long a refused connection's remaining input is read and dropped before closing."""
_TOO_LARGE_TEXT = b"request head is too large"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TOO_LARGE_TEXT), _TOO_LARGE_TEXT)
)


def http_protocol(
    websocket_path: str = "",
    websocket_protocol: Callable[[], asyncio.BufferedProtocol] | None = None,
) -> type[asyncio.Protocol]:
    """A uvicorn ``http`` protocol class serving ``websocket_path`` upgrades with
    protocols made by ``websocket_protocol``; without one, every connection is HTTP
    (WebSocket upgrades included, through the ASGI app)."""
    target = websocket_path.encode() if websocket_protocol is not None else b""

    class ParsecHttpProtocol(_Dispatch):
        _target = target
        _make_websocket = staticmethod(websocket_protocol or _no_websocket)

    return ParsecHttpProtocol


def _no_websocket() -> asyncio.BufferedProtocol:
    raise RuntimeError("this protocol serves no native WebSocket path")


class _Lingering:
    """The lingering close of a refused connection: answer, stop sending, drop what
    still arrives until the peer ends its side or ``LINGER_TIMEOUT`` passes, close."""

    __slots__ = ("_timer", "_transport")

    def __init__(self, transport: asyncio.Transport, answer: bytes) -> None:
        self._transport = transport
        transport.write(answer)
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except (OSError, RuntimeError):  # the peer is already gone
            pass
        transport.resume_reading()  # a paused reader would leave its bytes unread
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            LINGER_TIMEOUT, self.close
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


class _Dispatch(asyncio.Protocol):
    _target: bytes
    _make_websocket: Callable[[], asyncio.BufferedProtocol]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None
        self._lingering: _Lingering | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._timer = self._loop.call_later(HEAD_TIMEOUT, self._abandon)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            return  # a refused connection: what still arrives is dropped
        seen = len(self._head)
        head = self._head + data if seen else data
        self._head = head
        end = head.find(b"\r\n\r\n", max(seen - 3, 0))
        if end < 0:
            if len(head) > MAX_HEAD:
                self._refuse()
        elif end + 4 > MAX_HEAD or head.count(b"\r\n", 0, end) > MAX_HEADERS:
            self._refuse()
        elif self._target and _is_upgrade(head[:end], self._target):
            self._to_websocket()
        else:
            self._to_http()

    def eof_received(self) -> bool | None:
        if self._lingering is not None:
            self._lingering.close()
            return None
        self._to_http(eof=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._lingering is not None:
            self._lingering.close()
        self._transport = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abandon(self) -> None:
        """Close a connection whose head never completed."""
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        self._transport, self._head = None, b""
        transport.close()

    def _refuse(self) -> None:
        """Answer 431 to a head over the limits, then close lingering."""
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        self._head = b""
        self._lingering = _Lingering(transport, _TOO_LARGE)

    def _to_http(self, *, eof: bool = False) -> None:
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        self._transport = None
        http: Any = _uvicorn_http()(
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
        )
        transport.set_protocol(http)
        http.connection_made(transport)
        head, self._head = self._head, b""
        if head:
            http.data_received(head)
        if eof:
            http.eof_received()

    def _to_websocket(self) -> None:
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        self._transport = None
        ws = self._make_websocket()
        transport.set_protocol(ws)
        ws.connection_made(transport)
        head, self._head = memoryview(self._head), b""
        while head:
            buffer = memoryview(ws.get_buffer(len(head)))
            n = min(len(buffer), len(head))
            buffer[:n] = head[:n]
            ws.buffer_updated(n)
            head = head[n:]


def _is_upgrade(head: bytes, target: bytes) -> bool:
    """Whether a request head is a GET of ``target`` asking for a WebSocket upgrade."""
    line, _, headers = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return False
    if parts[1].split(b"?", 1)[0] != target:
        return False
    for header in headers.split(b"\r\n"):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"upgrade" and value.strip().lower() == b"websocket":
            return True
    return False


def _uvicorn_http() -> Callable[..., asyncio.Protocol]:
    # httptools comes with uvicorn[standard]; no fallback to h11, which would serve
    # without the head limits (431) LimitedHttpProtocol enforces
    from parsec.server._http import LimitedHttpProtocol

    return LimitedHttpProtocol
