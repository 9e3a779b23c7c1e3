"""uvicorn's httptools protocol with Parsec's request head limits on every request.

The dispatch protocol (:mod:`parsec.server.protocol`) checks the first request head of
a connection before any HTTP parser sees it. A kept-alive connection's later requests
reach uvicorn's parser directly; this subclass counts them as the parser reports them:
the URL and each header as it completes, and the bytes read while a head is still open
with no header completing (a single header that never ends, which httptools keeps
accumulating). Over ``MAX_HEAD`` bytes or ``MAX_HEADERS`` lines, the request never
reaches the app: the client is answered 431 and the connection closes lingering, as for
a first request. The count misses at most the start of an unfinished header within one
read, so what a refused head can make the server hold stays within one read of the
limit.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parsec.server.protocol import _TOO_LARGE, MAX_HEAD, MAX_HEADERS, _Lingering

__all__ = ["LimitedHttpProtocol"]


class LimitedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing (431) any request head over Parsec's limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_size = 0
        self._header_count = 0
        self._stalled = 0
        self._progress = False
        self._over = False
        self._refused = False
        self._lingering: _Lingering | None = None

    # --- reading ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # a refused connection: what still arrives is dropped
        self._progress = False
        super().data_received(data)
        if self._in_head and not self._over:
            self._stalled = 0 if self._progress else self._stalled + len(data)
            self._over = self._head_size + self._stalled > MAX_HEAD
        if self._over:
            self._refused = True
            self._answer_refusal()

    def _answer_refusal(self) -> None:
        """The 431, once every request before the refused one has been answered (a
        pipelined request's response must not find the connection half-closed)."""
        if self._lingering is not None or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # on_response_complete comes back here
        self._lingering = _Lingering(self.transport, _TOO_LARGE)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refused:
            self._answer_refusal()

    def eof_received(self) -> None:
        if self._lingering is not None:
            self._lingering.close()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.close()
        super().connection_lost(exc)

    # --- parser callbacks: count, and drop what belongs to a refused request -----

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # once a request is refused, every later one in the same read is dropped too
        self._in_head, self._progress, self._over = True, True, self._refused
        self._head_size = self._header_count = self._stalled = 0

    def on_url(self, url: bytes) -> None:
        self._progress = True
        self._head_size += len(url)
        self._over = self._over or self._head_size > MAX_HEAD
        if not self._over:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        self._head_size += len(name) + len(value) + 4
        self._header_count += 1
        self._over = self._over or (self._head_size > MAX_HEAD or self._header_count > MAX_HEADERS)
        if not self._over:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._over:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._over:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._over:
            super().on_message_complete()

    # A refused request asking for an upgrade: claim it may upgrade (so that uvicorn
    # logs no "unsupported upgrade" warning), then do not.

    def _should_upgrade_to_ws(self, *args: Any) -> bool:
        return self._over or bool(super()._should_upgrade_to_ws(*args))

    def _should_upgrade(self) -> bool:
        return self._over or super()._should_upgrade()

    def handle_websocket_upgrade(self) -> None:
        if not self._over:
            super().handle_websocket_upgrade()
