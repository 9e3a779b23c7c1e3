"""Follow one channel across reconnects, as the official SDKs do.

A :class:`Follower` connects, subscribes and yields what happens as events:
:class:`Subscribed` each time the subscription is active (again), :class:`Received`
for every publication (replayed ones first, all in order, none twice) and
:class:`Reconnecting` before each wait.

When the connection is lost or refused, closed with a reconnect code (3000-3499,
4000-4499, transport codes), a command times out or fails temporarily, or the server
asks for a resubscribe (unsubscribe codes 2500 and up), it waits (:class:`Backoff`:
0.5 s to 20 s, full jitter), connects again and resubscribes with ``recover: true`` from
the last position it saw, so that what was published meanwhile arrives, when the
server's history still holds it. ``Subscribed.recovered`` False after a resubscribe
means publications may have been missed.

What retrying cannot fix ends the iteration with the client's exception: a terminal
disconnect (3500-3999, 4500-4999), a terminal unsubscribe, a non-temporary error reply,
an expired token that cannot be renewed (:class:`ClientTokenExpired`). So does any
failure before the first connect succeeded: a wrong URL fails at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from parsec.client.backoff import Backoff
from parsec.client.client import Client, ConnectResult, PublicationDict, SubscribeResult
from parsec.client.errors import (
    TOKEN_EXPIRED,
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientTokenExpired,
    ClientUnsubscribed,
)
from parsec.engine.types import StreamPosition

__all__ = [
    "FollowEvent",
    "Follower",
    "Received",
    "Reconnecting",
    "Subscribed",
    "TokenGetter",
    "describe_failure",
]

TokenGetter = Callable[[], Awaitable[str]]
"""The SDKs' ``getToken``: a new connection token."""


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The subscription is active; ``since`` is the position recovery was asked from
    (None when there was none to ask from)."""

    channel: str
    result: SubscribeResult
    resubscribed: bool
    since: StreamPosition | None

    @property
    def recovered(self) -> bool:
        """Whether every publication after ``since`` is (or was) delivered."""
        return self.since is not None and self.result.recovered


@dataclass(frozen=True, slots=True)
class Received:
    """One publication of ``channel``; ``epoch`` is empty for a channel without a
    stream position."""

    channel: str
    publication: PublicationDict
    epoch: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The follower waits ``delay`` seconds, then connects again; ``cause`` says why."""

    delay: float
    cause: str


FollowEvent = Subscribed | Received | Reconnecting


class _RenewToken(ClientException):
    """The connection token expired: get a new one, then connect again."""

    def __init__(self) -> None:
        super().__init__("the connection token expired; getting a new one")


_RETRIED = (ClientException, TimeoutError)


class Follower:
    """Keeps one subscription to ``channel`` alive; iterate :meth:`events`.

    ``get_token`` (the SDKs' ``getToken``) is awaited for a new connection token when
    the server answers 109; without it, 109 ends the iteration. ``since`` recovers
    from a known position on the first subscribe too.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        token: str | None = None,
        get_token: TokenGetter | None = None,
        sub_token: str | None = None,
        since: StreamPosition | None = None,
        backoff: Backoff | None = None,
        name: str = "parsec-cli",
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.position = since
        """Where the stream was last seen; recovery starts after it."""
        self._token = token
        self._get_token = get_token
        self._sub_token = sub_token
        self._backoff = backoff or Backoff()
        self._name = name
        self._timeout = timeout
        self._connected = False
        self._renew = False
        self._fresh_token = False
        self._resubscribing = False

    async def events(self) -> AsyncIterator[FollowEvent]:
        """Subscribed, Received and Reconnecting events until a failure that retrying
        cannot fix (raised) or until the caller stops iterating."""
        while True:
            try:
                async for event in self._connection():
                    yield event
                return  # the connection was closed from this side
            except _RETRIED as exc:
                if not self._retries(exc):
                    raise
                cause = describe_failure(exc, self.url)
            delay = self._backoff.next_delay()
            yield Reconnecting(delay, cause)
            await asyncio.sleep(delay)

    def _retries(self, exc: ClientException | TimeoutError) -> bool:
        if isinstance(exc, _RenewToken):
            return True
        if not self._connected:
            return False
        if isinstance(exc, ClientDisconnected):
            return exc.reconnect
        if isinstance(exc, ClientUnsubscribed):
            return exc.resubscribe and exc.channel == self.channel
        if isinstance(exc, ClientProtocolError):
            return exc.retryable
        return isinstance(exc, ClientConnectError | TimeoutError)

    async def _connection(self) -> AsyncIterator[FollowEvent]:
        client = Client(
            self.url, await self._current_token(), name=self._name, timeout=self._timeout
        )
        try:
            connected = await self._connect(client)
            epochs = {name: sub.epoch for name, sub in connected.subs.items()}
            async for event in self._subscription(client, epochs):
                yield event
        finally:
            await client.aclose()

    async def _current_token(self) -> str | None:
        if self._renew and self._get_token is not None:
            self._token = await self._get_token()
            self._renew, self._fresh_token = False, True
        return self._token

    async def _connect(self, client: Client) -> ConnectResult:
        try:
            result = await client.connect()
        except ClientProtocolError as exc:
            if exc.code != TOKEN_EXPIRED:
                raise
            if self._get_token is None or self._fresh_token:
                raise ClientTokenExpired("connection", exc.message) from None
            self._renew = True
            raise _RenewToken from None
        self._connected, self._fresh_token = True, False
        return result

    async def _subscription(
        self, client: Client, epochs: dict[str, str]
    ) -> AsyncIterator[FollowEvent]:
        since = self.position
        try:
            result = await client.subscribe(
                self.channel, token=self._sub_token, recover_since=since
            )
        except ClientProtocolError as exc:
            if exc.code == TOKEN_EXPIRED:
                raise ClientTokenExpired("subscription", exc.message) from None
            raise
        self._backoff.reset()
        yield Subscribed(self.channel, result, self._resubscribing, since)
        self._resubscribing = True
        epochs[self.channel] = result.epoch
        for publication in self._restart(result, since):
            yield Received(self.channel, publication, result.epoch)
        async for channel, publication in client.publications():
            if channel != self.channel:
                yield Received(channel, publication, epochs.get(channel, ""))
            elif self._advance(publication):
                yield Received(channel, publication, result.epoch)

    def _restart(
        self, result: SubscribeResult, since: StreamPosition | None
    ) -> list[PublicationDict]:
        """Take the new subscription's position; the replayed publications not yet
        seen."""
        if not result.epoch:
            self.position = None  # no stream position: nothing to recover from later
            return []
        if since is None or not result.recovered:
            self.position = StreamPosition(result.offset, result.epoch)
            return []
        self.position = StreamPosition(since.offset, result.epoch)
        return [p for p in result.publications if self._advance(p)]

    def _advance(self, publication: PublicationDict) -> bool:
        """Move the position past ``publication``; False when it was already seen."""
        offset = publication.get("offset")
        position = self.position
        if position is None or not isinstance(offset, int) or offset <= 0:
            return True
        if offset <= position.offset:
            return False
        self.position = StreamPosition(offset, position.epoch)
        return True


def describe_failure(exc: BaseException, url: str) -> str:
    """A one-line account of a client failure, for people."""
    if isinstance(exc, ClientDisconnected):
        return f"disconnected: {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, ClientUnsubscribed):
        return f"unsubscribed from {exc.channel}: {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, ClientProtocolError):
        return f"error {exc.code}: {exc.message}"
    if isinstance(exc, TimeoutError):
        return f"no reply from {url} in time"
    return str(exc)
