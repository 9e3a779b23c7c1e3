"""Nothing outlives a session: no presence entry, no blocked endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from parsec import Namespace, Options, Parsec
from parsec.backends.memory import MemoryPresenceManager
from parsec.engine.codes import disconnects
from parsec.engine.types import ClientInfo
from parsec.options import AuthOptions, ClientOptions
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
