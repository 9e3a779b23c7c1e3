"""The HTTP request body limit, on every route of the ASGI app.

A request whose ``Content-Length`` is over the limit is answered ``413`` at once: the
app never sees it and not one byte of its body is asked for (so a client sending
``Expect: 100-continue`` is never told to send it). A body without a length (chunked)
is counted as the app reads it; the read that crosses the limit fails, whatever the app
then answers is dropped and the client gets the 413 instead. Either way at most
``limit`` bytes ever reach the app, and nothing buffers the rest: the server discards
what the client still sends of a body already answered.

Management routes (``/twirp/…``) get a Twirp error body (``PARSEC_PAYLOAD_TOO_LARGE``),
the others a plain-text one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import msgspec

__all__ = ["BodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TWIRP_PREFIX: Final = "/twirp/"


class BodyTooLarge(Exception):
    """Raised to the app by ``receive`` when the body crosses the limit."""


class BodyLimit:
    """ASGI middleware: HTTP request bodies over ``limit`` bytes are answered 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the body limit must be at least 1 byte, got {limit}")
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            # the server never hands the app more than the declared length
            if declared > self.limit:
                await self._refuse(scope, send)
            else:
                await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit
        received = 0
        over = started = False

        async def limited() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to the failed read: the 413 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        text = f"request body too large: the limit is {self.limit} bytes"
        if TWIRP_PREFIX in scope.get("path", ""):
            meta = {"parsec_code": "PARSEC_PAYLOAD_TOO_LARGE"}
            body = msgspec.json.encode({"code": "invalid_argument", "msg": text, "meta": meta})
            media = b"application/json"
        else:
            body, media = text.encode(), b"text/plain; charset=utf-8"
        headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (or none that parses:
    the server has refused such a request before the app sees it)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
