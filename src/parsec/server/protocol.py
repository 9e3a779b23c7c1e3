"""One listening socket, two protocols: uvicorn's HTTP and the native WebSocket.

uvicorn builds a ``ParsecHttpProtocol`` for each accepted connection. It reads the
request head; a WebSocket upgrade of the client path goes to the native transport
(:mod:`parsec.transports.native`), anything else to uvicorn's HTTP protocol, which
then owns the connection exactly as if it had accepted it. The head is parsed only
as far as the decision needs; the protocol that takes over parses it again, fully.

A connection that sends no complete head within ``HEAD_TIMEOUT`` seconds is closed
(uvicorn itself would wait forever); a head larger than ``MAX_HEAD`` is answered
``431 Request Header Fields Too Large`` and closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.server import ServerState

__all__ = ["HEAD_TIMEOUT", "MAX_HEAD", "http_protocol"]

HEAD_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 24\r\nConnection: close\r\n\r\nrequest head is too large"
)


def http_protocol(
    websocket_path: str, websocket_protocol: Callable[[], asyncio.BufferedProtocol]
) -> type[asyncio.Protocol]:
    """A uvicorn ``http`` protocol class serving ``websocket_path`` upgrades with
    protocols made by ``websocket_protocol``."""
    target = websocket_path.encode()

    class ParsecHttpProtocol(_Dispatch):
        _target = target
        _make_websocket = staticmethod(websocket_protocol)

    return ParsecHttpProtocol


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._timer = self._loop.call_later(HEAD_TIMEOUT, self._abandon)

    def data_received(self, data: bytes) -> None:
        head = self._head + data if self._head else data
        self._head = head
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            if _is_upgrade(head[:end], self._target):
                self._to_websocket()
            else:
                self._to_http()
        elif len(head) > MAX_HEAD:
            self._abandon(_TOO_LARGE)

    def eof_received(self) -> bool | None:
        self._to_http(eof=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._transport = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abandon(self, answer: bytes = b"") -> None:
        """Close a connection whose head never completed (answering it first)."""
        transport = self._transport
        if transport is None:
            return
        self._cancel_timer()
        self._transport, self._head = None, b""
        if answer:
            transport.write(answer)
        transport.close()

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
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol
