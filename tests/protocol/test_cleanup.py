"""Nothing outlives a session: no presence entry, no blocked endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import typing
from collections.abc import MutableMapping
from typing import Any

import pytest
from waiting import until

from parsec import Namespace, Options, Parsec
from parsec.backends.memory import MemoryPresenceManager
from parsec.engine.codes import disconnects
from parsec.engine.session import Session
from parsec.engine.types import ClientInfo
from parsec.errors import ParsecError
from parsec.options import AuthOptions, BrokerOptions, ClientOptions
from parsec.transports.websocket import WebSocketEndpoint

from .harness import WAIT

SCOPE: dict[str, Any] = {"type": "websocket", "headers": [], "path": "/connection/websocket"}


class GatedPresence(MemoryPresenceManager):
    """Memory presence whose ``add_presence`` waits until the gate opens, as a
    networked backend's round trip would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.adding = asyncio.Event()

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, ttl: float
    ) -> None:
        self.adding.set()
        await self.gate.wait()
        await super().add_presence(channel, client_id, info, ttl)


class FakeAsgi:
    """An ASGI peer: feeds ``inbound`` messages, then stays silent until ``hang_up``."""

    def __init__(self, *inbound: dict[str, Any]) -> None:
        self.inbound = list(inbound)
        self.sent: list[dict[str, Any]] = []
        self.hung_up = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.inbound:
            return self.inbound.pop(0)
        await self.hung_up.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(dict(message))

    def closes(self) -> list[int]:
        return [m["code"] for m in self.sent if m["type"] == "websocket.close"]


def frame(*commands: dict[str, Any]) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": "\n".join(json.dumps(c) for c in commands)}


async def test_timer_disconnect_ends_the_endpoint_of_a_silent_peer() -> None:
    """A session closed by a timer (stale, 3502) ends its endpoint even if the peer
    never sends another byte, instead of waiting on it forever."""
    options = Options(client=ClientOptions(stale_close_delay=0.05))
    async with Parsec(options) as parsec:
        peer = FakeAsgi({"type": "websocket.connect"})
        endpoint = WebSocketEndpoint(parsec.node)
        async with asyncio.timeout(WAIT):
            await endpoint(SCOPE, peer.receive, peer.send)
        assert peer.closes() == [3502]
        assert parsec.node.hub.num_clients == 0


async def test_presence_of_a_session_closed_mid_subscribe_is_removed() -> None:
    """A client that leaves while its presence is being recorded leaves no entry."""
    presence = GatedPresence()
    options = Options(
        auth=AuthOptions(allow_anonymous=True),
        namespaces=[
            Namespace(
                name="room",
                presence=True,
                allow_subscribe_for_client=True,
                allow_subscribe_for_anonymous=True,
            )
        ],
    )
    async with Parsec(options, presence=presence) as parsec:
        peer = FakeAsgi(
            {"type": "websocket.connect"},
            frame({"id": 1, "connect": {}}, {"id": 2, "subscribe": {"channel": "room:a"}}),
        )
        endpoint = asyncio.create_task(
            WebSocketEndpoint(parsec.node)(SCOPE, peer.receive, peer.send)
        )
        async with asyncio.timeout(WAIT):
            await presence.adding.wait()
            session = parsec.node.hub.sessions()[0]
            # disconnected (server API, a timer) while the entry is being written
            await session.disconnect(disconnects.FORCE_NO_RECONNECT())
            presence.gate.set()
            peer.hung_up.set()
            await endpoint
        assert await presence.presence("room:a") == {}
        assert peer.closes() == [3503]


# --- many sessions closing at once ---------------------------------------------------

CROWD = 1000


class CountingPresence(MemoryPresenceManager):
    """Memory presence whose removals wait for ``gate``, as a networked backend's round
    trip would, counting how many are under way at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.removing = 0
        self.most = 0

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        self.removing += 1
        self.most = max(self.most, self.removing)
        try:
            await self.gate.wait()
            await super().remove_presence(channel, client_id, user)
        finally:
            self.removing -= 1


class UnreachablePresence(MemoryPresenceManager):
    """Memory presence whose removals fail as a Redis that is down makes them fail."""

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        raise ParsecError(
            "PARSEC_BROKER_NOT_READY", "redis is unreachable while removing presence"
        ).client_error()


class NullTransport:
    """A connection that accepts every write and forgets it."""

    name = "null"

    def write(self, message: bytes) -> bool:
        return True

    def close(self, code: int, reason: str) -> None:
        pass


def crowd_options(pool_size: int = 50) -> Options:
    return Options(
        auth=AuthOptions(allow_anonymous=True),
        broker=BrokerOptions(pool_size=pool_size),
        namespaces=[
            Namespace(
                name="room",
                presence=True,
                join_leave=True,
                allow_subscribe_for_client=True,
                allow_subscribe_for_anonymous=True,
            )
        ],
    )


async def crowd_of_sessions(parsec: Parsec, count: int) -> list[Session]:
    """``count`` in-process sessions, connected and subscribed to ``room:a``."""
    sessions = []
    for _ in range(count):
        session = parsec.node.new_session(NullTransport())
        await session.handle_frame(
            '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"room:a"}}'
        )
        assert "room:a" in session.subs
        sessions.append(session)
    return sessions


async def test_sessions_closing_together_are_cleaned_up_a_few_at_a_time() -> None:
    """A thousand connections lost in the same instant: their cleanups run at most
    half the broker pool at once (the others wait their turn), and every presence entry
    is removed in the end."""
    presence = CountingPresence()
    async with Parsec(crowd_options(pool_size=8), presence=presence) as parsec:
        sessions = await crowd_of_sessions(parsec, CROWD)
        assert len(await presence.presence("room:a")) == CROWD

        # every connection lost at once: each transport tells its session
        lost = [asyncio.create_task(session.closed()) for session in sessions]
        await until(lambda: presence.removing == 4)
        for _ in range(10):  # the others wait, however long the first ones take
            await asyncio.sleep(0)
        assert presence.removing == 4

        presence.gate.set()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*lost)
        assert presence.most == 4
        assert await presence.presence("room:a") == {}


async def test_a_node_closing_waits_for_every_cleanup() -> None:
    """A node that shuts down returns from ``aclose`` only once every session's presence
    is removed, even when each removal takes its time."""
    presence = CountingPresence()
    async with Parsec(crowd_options(pool_size=8), presence=presence) as parsec:
        await crowd_of_sessions(parsec, 100)
        closing = asyncio.create_task(parsec.aclose())
        await until(lambda: presence.removing == 4)
        assert not closing.done()
        presence.gate.set()
        async with asyncio.timeout(WAIT):
            await closing
        assert await presence.presence("room:a") == {}


async def test_cleanups_that_cannot_reach_the_broker_are_reported_once_briefly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hundred cleanups failing on a broker that is down give one warning at once and
    one summary when the node stops — no traceback, no error — that count every
    session and say the presence expires by itself."""
    caplog.set_level(logging.WARNING, logger="parsec")
    async with Parsec(crowd_options(), presence=UnreachablePresence()) as parsec:
        sessions = await crowd_of_sessions(parsec, 100)
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(session.closed() for session in sessions))
    reports = [r for r in caplog.records if "failed at the broker" in r.getMessage()]
    counted = [typing.cast(int, r.args[0]) for r in reports if isinstance(r.args, tuple)]

    assert [r.levelno for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert 1 <= len(reports) <= 2
    assert all(r.exc_info is None for r in reports)
    assert sum(counted) == 100
    assert "PARSEC_BROKER_NOT_READY: redis is unreachable" in reports[0].getMessage()
    assert "expires within 60s" in reports[0].getMessage()
