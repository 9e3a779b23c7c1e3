"""parsec.client.Follower against a scripted client-protocol server: which closes and
errors it reconnects after, what it resubscribes with, what it yields once.

The real-server counterparts (restarts on Redis and memory, API disconnects) are in
test_cli_subscribe.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from parsec.client import (
    Backoff,
    ClientConnectError,
    ClientDisconnected,
    ClientTokenExpired,
    ClientUnsubscribed,
    Follower,
    FollowEvent,
    Received,
    Reconnecting,
    Subscribed,
)
from parsec.client.backoff import MAX_DELAY, MIN_DELAY
from parsec.engine.types import StreamPosition
from parsec.testing import free_port

Script = Callable[[ServerConnection], Awaitable[None]]
END = (3503, "force disconnect")
"""The terminal close that ends a scripted run."""


class Scripted:
    """Plays one script per connection, in order (``scripts``); connections past the
    last script are closed with END. Records every command each connection sent."""

    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.commands: list[list[dict[str, Any]]] = []

    async def handler(self, ws: ServerConnection) -> None:
        self.commands.append([])
        if not self.scripts:
            await ws.close(*END)
            return
        await self.scripts.pop(0)(ws)

    async def recv(self, ws: ServerConnection) -> dict[str, Any]:
        command = json.loads(await ws.recv())
        assert isinstance(command, dict)
        self.commands[-1].append(command)
        return command

    async def connect(self, ws: ServerConnection, reply: dict[str, Any] | None = None) -> None:
        command = await self.recv(ws)
        body = {"connect": {"client": "c-1", "ping": 25}} if reply is None else reply
        await ws.send(json.dumps({"id": command["id"], **body}))

    async def subscribe(self, ws: ServerConnection, result: dict[str, Any]) -> None:
        command = await self.recv(ws)
        await ws.send(json.dumps({"id": command["id"], "subscribe": result}))


@contextlib.asynccontextmanager
async def serving(server: Scripted, *scripts: Script) -> AsyncIterator[str]:
    """Serve ``scripts`` on a free loopback port; yield the endpoint URL."""
    server.scripts = list(scripts)
    async with serve(server.handler, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/connection/websocket"


def fast() -> Backoff:
    return Backoff(min_delay=0.01, max_delay=0.02)


def pub(offset: int, channel: str = "chat:a") -> str:
    return json.dumps({"push": {"channel": channel, "pub": {"data": offset, "offset": offset}}})


async def collect(follower: Follower, into: list[FollowEvent]) -> None:
    """Every event until the follower raises."""
    async for event in follower.events():
        into.append(event)


def offsets(events: list[FollowEvent]) -> list[int]:
    return [e.publication["offset"] for e in events if isinstance(e, Received)]


def kinds(events: list[FollowEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


POSITIONED = {"epoch": "ep", "offset": 2, "recoverable": True, "positioned": True}


async def test_a_shutdown_reconnects_and_recovers_from_the_last_offset() -> None:
    """After 3001 the follower reconnects and resubscribes with recover, the last
    offset and epoch; replayed and live publications already seen are not repeated."""
    server = Scripted()
    events: list[FollowEvent] = []

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, POSITIONED)
        await ws.send(pub(3) + "\n" + pub(4))
        await ws.close(3001, "shutdown")

    async def second(ws: ServerConnection) -> None:
        await server.connect(ws)
        replayed = [{"data": 5, "offset": 5}]
        await server.subscribe(
            ws, {**POSITIONED, "offset": 5, "recovered": True, "publications": replayed}
        )
        await ws.send(pub(5) + "\n" + pub(6))
        await ws.close(*END)

    async with serving(server, first, second) as url:
        follower = Follower(url, "chat:a", token="t", backoff=fast())
        with pytest.raises(ClientDisconnected) as caught:
            await collect(follower, events)
    assert caught.value.code == 3503
    assert server.commands[1][1]["subscribe"] == {
        "channel": "chat:a",
        "recover": True,
        "offset": 4,
        "epoch": "ep",
    }
    assert offsets(events) == [3, 4, 5, 6]
    assert kinds(events)[:4] == ["Subscribed", "Received", "Received", "Reconnecting"]
    reconnecting = next(e for e in events if isinstance(e, Reconnecting))
    assert reconnecting.cause == "disconnected: 3001 shutdown"
    assert 0.01 <= reconnecting.delay <= 0.02
    resubscribed = [e for e in events if isinstance(e, Subscribed)][1]
    assert resubscribed.resubscribed
    assert resubscribed.recovered
    assert resubscribed.since == StreamPosition(4, "ep")
    assert follower.position == StreamPosition(6, "ep")


async def test_a_new_epoch_is_not_recovered_and_its_offsets_start_again() -> None:
    """When the stream was reset, the resubscribe reports no recovery and the new
    epoch's publications (offsets from 1 again) are all delivered."""
    server = Scripted()
    events: list[FollowEvent] = []

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, POSITIONED)
        await ws.send(pub(3))
        await ws.close(3001, "shutdown")

    async def second(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {**POSITIONED, "epoch": "new", "offset": 0, "recovered": False})
        await ws.send(pub(1) + "\n" + pub(2))
        await ws.close(*END)

    async with serving(server, first, second) as url:
        with pytest.raises(ClientDisconnected):
            await collect(Follower(url, "chat:a", token="t", backoff=fast()), events)
    assert offsets(events) == [3, 1, 2]
    received = [e for e in events if isinstance(e, Received)]
    assert [e.epoch for e in received] == ["ep", "new", "new"]
    resubscribed = [e for e in events if isinstance(e, Subscribed)][1]
    assert not resubscribed.recovered
    assert resubscribed.since == StreamPosition(3, "ep")


@pytest.mark.parametrize("code", [3000, 3001, 3011, 4000, 4499])
async def test_reconnect_codes_reconnect(code: int) -> None:
    """Closes in 3000-3499 and 4000-4499 are followed by a new connection."""
    server = Scripted()

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {})
        await ws.close(code, "bye")

    async with serving(server, first) as url:
        events: list[FollowEvent] = []
        with pytest.raises(ClientDisconnected) as caught:
            await collect(Follower(url, "news", token="t", backoff=fast()), events)
    assert caught.value.code == END[0]
    assert len(server.commands) == 2
    assert kinds(events) == ["Subscribed", "Reconnecting"]


@pytest.mark.parametrize("code", [3500, 3503, 3999, 4500, 4999, 1009])
async def test_terminal_codes_end_the_iteration(code: int) -> None:
    """Closes in 3500-3999 and 4500-4999 (and 1009, message too big) are raised, with
    no reconnect."""
    server = Scripted()

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {})
        await ws.close(code, "go away")

    async with serving(server, first) as url:
        events: list[FollowEvent] = []
        with pytest.raises(ClientDisconnected) as caught:
            await collect(Follower(url, "news", token="t", backoff=fast()), events)
    assert (caught.value.code, caught.value.reason) == (code, "go away")
    assert len(server.commands) == 1
    assert kinds(events) == ["Subscribed"]


async def test_a_lost_connection_reconnects() -> None:
    """A connection that drops without a close frame (1006) is reconnected."""
    server = Scripted()

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {})
        ws.transport.abort()

    async with serving(server, first) as url:
        events: list[FollowEvent] = []
        with pytest.raises(ClientDisconnected):
            await collect(Follower(url, "news", token="t", backoff=fast()), events)
    assert len(server.commands) == 2
    assert [e.cause for e in events if isinstance(e, Reconnecting)] == ["disconnected: 1006"]


async def test_a_temporary_error_reply_reconnects() -> None:
    """A temporary subscribe error is retried on a new connection; a permanent one is
    raised."""
    server = Scripted()

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        command = await server.recv(ws)
        error = {"code": 100, "message": "internal server error", "temporary": True}
        await ws.send(json.dumps({"id": command["id"], "error": error}))
        await ws.wait_closed()

    async def second(ws: ServerConnection) -> None:
        await server.connect(ws)
        command = await server.recv(ws)
        error = {"code": 103, "message": "permission denied"}
        await ws.send(json.dumps({"id": command["id"], "error": error}))
        await ws.wait_closed()

    async with serving(server, first, second) as url:
        events: list[FollowEvent] = []
        with pytest.raises(Exception, match="103: permission denied"):
            await collect(Follower(url, "news", token="t", backoff=fast()), events)
    assert [e.cause for e in events if isinstance(e, Reconnecting)] == [
        "error 100: internal server error"
    ]


async def test_a_refused_first_connect_is_raised_at_once() -> None:
    """Before any connect succeeded, a refused connection is not retried."""
    follower = Follower(f"ws://127.0.0.1:{free_port()}/connection/websocket", "news", token="t")
    events: list[FollowEvent] = []
    with pytest.raises(ClientConnectError):
        await collect(follower, events)
    assert events == []


async def test_an_unsubscribe_2500_resubscribes_and_2000_ends() -> None:
    """An insufficient-state unsubscribe (2500) leads to a resubscribe with recovery;
    a server unsubscribe (2000) is raised."""
    server = Scripted()

    async def first(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, POSITIONED)
        unsubscribe = {"code": 2500, "reason": "insufficient state"}
        await ws.send(json.dumps({"push": {"channel": "chat:a", "unsubscribe": unsubscribe}}))
        await ws.wait_closed()

    async def second(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {**POSITIONED, "recovered": True})
        unsubscribe = {"code": 2000, "reason": "server unsubscribe"}
        await ws.send(json.dumps({"push": {"channel": "chat:a", "unsubscribe": unsubscribe}}))
        await ws.wait_closed()

    async with serving(server, first, second) as url:
        events: list[FollowEvent] = []
        with pytest.raises(ClientUnsubscribed) as caught:
            await collect(Follower(url, "chat:a", token="t", backoff=fast()), events)
    assert caught.value.code == 2000
    assert server.commands[1][1]["subscribe"]["recover"] is True
    assert [e.cause for e in events if isinstance(e, Reconnecting)] == [
        "unsubscribed from chat:a: 2500 insufficient state"
    ]


def expired(server: Scripted) -> Script:
    async def script(ws: ServerConnection) -> None:
        await server.connect(ws, {"error": {"code": 109, "message": "token expired"}})
        await ws.wait_closed()

    return script


async def test_an_expired_token_is_renewed_with_get_token() -> None:
    """On 109 the follower asks get_token for a new token and connects with it."""
    server = Scripted()
    renewed: list[str] = []

    async def get_token() -> str:
        renewed.append(f"fresh-{len(renewed)}")
        return renewed[-1]

    async def second(ws: ServerConnection) -> None:
        await server.connect(ws)
        await server.subscribe(ws, {})
        await ws.close(*END)

    async with serving(server, expired(server), second) as url:
        follower = Follower(url, "news", token="old", get_token=get_token, backoff=fast())
        with pytest.raises(ClientDisconnected):
            await collect(follower, [])
    assert renewed == ["fresh-0"]
    assert [c[0]["connect"]["token"] for c in server.commands] == ["old", "fresh-0"]


async def test_an_expired_token_without_renewal_ends_the_iteration() -> None:
    """Without get_token, 109 ends the iteration with ClientTokenExpired."""
    server = Scripted()
    async with serving(server, expired(server)) as url:
        with pytest.raises(ClientTokenExpired) as caught:
            await collect(Follower(url, "news", token="old", backoff=fast()), [])
    assert caught.value.kind == "connection"
    assert len(server.commands) == 1


async def test_a_renewed_token_that_is_expired_too_ends_the_iteration() -> None:
    """A token from get_token that the server also finds expired is not renewed again:
    no endless loop of 109s."""
    server = Scripted()
    calls: list[int] = []

    async def get_token() -> str:
        calls.append(1)
        return "also-expired"

    async with serving(server, expired(server), expired(server), expired(server)) as url:
        follower = Follower(url, "news", token="old", get_token=get_token, backoff=fast())
        with pytest.raises(ClientTokenExpired):
            await collect(follower, [])
    assert len(calls) == 1
    assert len(server.commands) == 2


def test_backoff_grows_with_jitter_within_the_sdk_bounds() -> None:
    """Delays start in 0.5-1 s, never exceed 20 s, and reset() starts again."""
    backoff = Backoff()
    first = [backoff.next_delay() for _ in range(40)]
    assert MIN_DELAY <= first[0] <= 2 * MIN_DELAY
    assert all(MIN_DELAY <= d <= MAX_DELAY for d in first)
    assert max(first[10:]) > 2 * MIN_DELAY  # it grew
    backoff.reset()
    assert backoff.next_delay() <= 2 * MIN_DELAY
