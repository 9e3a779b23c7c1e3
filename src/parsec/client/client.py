"""A minimal asyncio client for the Centrifugo client protocol v2 (JSON) over WebSocket.

It connects, subscribes (optionally recovering from a stream position) and yields the
publications the server pushes. It answers the server's ``{}`` pings with ``{}`` pongs,
reads several ``\\n``-joined messages per frame, and never reconnects by itself
(:class:`parsec.client.Follower` does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from parsec.client.errors import (
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientUnsubscribed,
)
from parsec.engine.types import StreamPosition

__all__ = ["Client", "ConnectResult", "PublicationDict", "SubscribeResult"]

PublicationDict = dict[str, Any]
"""A decoded ``pub`` push: ``data`` (any JSON value), and ``offset``, ``info``, ``tags``
when the server sends them."""

_T = TypeVar("_T")


class SubscribeResult(msgspec.Struct, kw_only=True):
    """The result of a subscribe command (centrifuge-protocol.md §1.4)."""

    recoverable: bool = False
    positioned: bool = False
    epoch: str = ""
    offset: int = 0
    recovered: bool = False
    was_recovering: bool = False
    expires: bool = False
    ttl: int = 0
    publications: list[PublicationDict] = msgspec.field(default_factory=list)
    """Publications the server replayed on recovery, oldest first."""
    data: Any = None


class ConnectResult(msgspec.Struct, kw_only=True):
    """The result of the connect command; ``subs`` are server-side subscriptions."""

    client: str
    version: str = ""
    expires: bool = False
    ttl: int = 0
    ping: int = 0
    pong: bool = False
    subs: dict[str, SubscribeResult] = msgspec.field(default_factory=dict)
    data: Any = None


_Item = tuple[str, PublicationDict] | ClientUnsubscribed | None


class Client:
    """One protocol connection; use as ``async with Client(url, token) as client:``.

    Every command waits at most ``timeout`` seconds for its reply (``TimeoutError``).
    Errors: :class:`ClientConnectError` when the socket cannot be opened,
    :class:`ClientProtocolError` for an error reply, :class:`ClientDisconnected` once the
    connection is closed by the server or lost.
    """

    def __init__(
        self, url: str, token: str | None = None, *, name: str = "parsec-cli", timeout: float = 10.0
    ) -> None:
        self._url = url
        self._token = token
        self._name = name
        self._timeout = timeout
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._last_id = 0
        self._failure: ClientDisconnected | None = None
        self._closed_by_us = False

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> ConnectResult:
        """Open the WebSocket and send ``connect``; may be called once per client."""
        if self._ws is not None:
            raise RuntimeError("Client.connect() was already called")
        try:
            self._ws = await connect(self._url, open_timeout=self._timeout, max_size=None)
        except (OSError, TimeoutError, WebSocketException) as e:
            raise ClientConnectError(f"cannot connect to {self._url}: {e}") from None
        self._reader = asyncio.create_task(self._read_loop(self._ws))
        params: dict[str, Any] = {"name": self._name}
        if self._token:
            params["token"] = self._token
        try:
            return _convert(ConnectResult, await self._call("connect", params), "connect")
        except BaseException:
            await self.aclose()
            raise

    async def subscribe(
        self,
        channel: str,
        *,
        token: str | None = None,
        recover_since: StreamPosition | None = None,
    ) -> SubscribeResult:
        """Subscribe to ``channel``; with ``recover_since`` the server replays what was
        published after that position into ``SubscribeResult.publications``."""
        params: dict[str, Any] = {"channel": channel}
        if token:
            params["token"] = token
        if recover_since is not None:
            params |= {
                "recover": True,
                "offset": recover_since.offset,
                "epoch": recover_since.epoch,
            }
        return _convert(SubscribeResult, await self._call("subscribe", params), "subscribe")

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe from ``channel``: the server sends no more of its publications."""
        await self._call("unsubscribe", {"channel": channel})

    async def publications(self) -> AsyncIterator[tuple[str, PublicationDict]]:
        """Yield ``(channel, publication)`` for every ``pub`` push, in arrival order.

        Ends when :meth:`aclose` was called; raises :class:`ClientDisconnected` when the
        server closed the connection and :class:`ClientUnsubscribed` when it ended a
        subscription.
        """
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # every later reader sees the end too
                if self._failure is not None and not self._closed_by_us:
                    raise self._failure
                return
            if isinstance(item, ClientUnsubscribed):
                raise item
            yield item

    async def aclose(self) -> None:
        """Close the connection; idempotent. Pending commands raise ClientDisconnected."""
        if self._failure is None:
            self._closed_by_us = True
            self._failure = ClientDisconnected(1000, "closed by client")
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._ws is None or self._failure is not None:
            raise self._failure or RuntimeError("Client.connect() was not called")
        self._last_id += 1
        command_id = self._last_id
        reply = self._pending[command_id] = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(ConnectionClosed):  # the reader fails the future
                await self._ws.send(
                    msgspec.json.encode({"id": command_id, method: params}).decode()
                )
            answer = await asyncio.wait_for(reply, self._timeout)
        finally:
            self._pending.pop(command_id, None)
        error = answer.get("error")
        if isinstance(error, dict):
            raise ClientProtocolError(
                _as_int(error.get("code")),
                str(error.get("message", "")),
                temporary=error.get("temporary") is True,
            )
        result = answer.get(method, {})
        return result if isinstance(result, dict) else {}

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                for line in text.split("\n"):
                    if line.strip():
                        await self._dispatch(ws, line)
        except ConnectionClosed:
            pass
        except (msgspec.DecodeError, ClientException) as e:
            self._failure = self._failure or ClientDisconnected(1002, f"bad message: {e}")
            await ws.close(1002, "bad message from server")
        finally:
            self._finish(ws)

    async def _dispatch(self, ws: ClientConnection, line: str) -> None:
        message = msgspec.json.decode(line)
        if not isinstance(message, dict):
            raise ClientException(f"expected a JSON object, got {line[:80]!r}")
        if not message:
            await ws.send("{}")  # pong
        elif isinstance(message.get("push"), dict):
            self._on_push(message["push"])
        elif isinstance(message.get("id"), int):
            future = self._pending.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)

    def _on_push(self, push: dict[str, Any]) -> None:
        channel = str(push.get("channel", ""))
        if isinstance(push.get("pub"), dict):
            self._queue.put_nowait((channel, push["pub"]))
        elif isinstance(push.get("unsubscribe"), dict):
            body = push["unsubscribe"]
            reason = str(body.get("reason", ""))
            self._queue.put_nowait(ClientUnsubscribed(channel, _as_int(body.get("code")), reason))

    def _finish(self, ws: ClientConnection) -> None:
        if self._failure is None:
            self._failure = ClientDisconnected(ws.close_code or 1006, ws.close_reason or "")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._failure)
        self._queue.put_nowait(None)


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _convert(cls: type[_T], result: dict[str, Any], method: str) -> _T:
    try:
        return msgspec.convert(result, cls)
    except msgspec.ValidationError as e:
        raise ClientException(f"malformed {method} reply: {e}") from None
