"""uvicorn's httptools protocol with Parsec's request head limits on every request.

The handoff protocol (:mod:`parsec.server.handoff`) checks the first request head of
a connection before any HTTP parser sees it. A kept-alive connection's later requests
reach uvicorn's parser directly; this subclass checks them as the parser completes
them, and, for a head that spans several reads, after each read: the URL and headers
parsed so far, plus the bytes of reads that completed none of them (a single header
that never ends, which httptools keeps accumulating). Over ``MAX_HEAD`` bytes or
``MAX_HEADERS`` lines the request never reaches the app: the client is answered 431
(after any pipelined request before it) and the connection closes lingering, as for a
first request. What a refused head can make the server hold stays within one read of
the limit.

The usual request costs four short calls more than uvicorn's own: a head that begins
and ends within one read no larger than ``MAX_HEAD`` cannot be over it, so only its
header count is checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parsec.server.handoff import _TOO_LARGE, MAX_HEAD, MAX_HEADERS, _Lingering

__all__ = ["LimitedHttpProtocol"]

_data_received = HttpToolsProtocol.data_received
_on_message_begin = HttpToolsProtocol.on_message_begin
_on_headers_complete = HttpToolsProtocol.on_headers_complete
_on_response_complete = HttpToolsProtocol.on_response_complete


class _Refused:
    """Stands in for the request cycle of a refused request: already complete, so that
    uvicorn drops that request's body (and any request after it in the same read)."""

    response_complete = True
    disconnected = True
    more_body = False

    def __init__(self) -> None:
        self.message_event = asyncio.Event()


class LimitedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing (431) any request head over Parsec's limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read = 0
        """Bytes of the read being parsed."""
        self._fresh = False
        """The open head began in the read being parsed."""
        self._in_head = False
        self._seen = (0, 0)
        self._stalled = 0
        self._refused = False
        self._before: Any = None
        """The last request cycle before the refused request."""
        self._lingering: _Lingering | None = None

    # --- reading ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # a refused connection: what still arrives is dropped
        self._read, self._fresh = len(data), False
        _data_received(self, data)
        if self._in_head and not self._refused:
            self._check_open_head(len(data))

    def _check_open_head(self, read: int) -> None:
        """After a read that left a head open: refuse it once over the limits."""
        url, headers = len(self.url), len(self.headers)
        self._stalled = self._stalled + read if (url, headers) == self._seen else 0
        self._seen = (url, headers)
        if headers > MAX_HEADERS or _size(self) + self._stalled > MAX_HEAD:
            self._refuse()

    def _refuse(self) -> None:
        self._refused, self._in_head = True, False
        self._before, self.cycle = self.cycle, _Refused()  # type: ignore[assignment]
        self._answer_refusal()

    def _answer_refusal(self) -> None:
        """The 431, once every request before the refused one has been answered (a
        pipelined request's response must not find the connection half-closed)."""
        if self._lingering is not None or self.transport.is_closing():
            return
        before = self._before
        if before is not None and not before.response_complete:
            return  # on_response_complete comes back here
        self._lingering = _Lingering(self.transport, _TOO_LARGE)

    def eof_received(self) -> None:
        if self._lingering is not None:
            self._lingering.close()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.close()
        super().connection_lost(exc)

    # --- parser and cycle callbacks ---------------------------------------------

    def on_message_begin(self) -> None:
        _on_message_begin(self)
        self._in_head, self._fresh, self._stalled, self._seen = True, True, 0, (0, 0)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._refused:
            return  # a request after the refused one, in the same read
        if len(self.headers) > MAX_HEADERS or (
            (not self._fresh or self._read > MAX_HEAD) and _size(self) > MAX_HEAD
        ):
            self._refuse()
            return
        _on_headers_complete(self)

    def on_response_complete(self) -> None:
        _on_response_complete(self)
        if self._refused:
            self._answer_refusal()

    def handle_websocket_upgrade(self) -> None:
        if not self._refused:
            super().handle_websocket_upgrade()


def _size(protocol: HttpToolsProtocol) -> int:
    """The bytes of the URL and the headers parsed so far (without the request line's
    method and version, and without separators other than each header's ": " and
    CRLF)."""
    return len(protocol.url) + sum(len(name) + len(value) + 4 for name, value in protocol.headers)
