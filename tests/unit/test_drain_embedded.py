"""An application embedding Parsec gets the drain from ``aclose`` (and ``drain``): healthz
503 and 3001 to the clients while the sink queue still delivers, then the close; the
telemetry counters behind ``/parsec/telemetry`` (the minute ring, token expiries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import centrifuge
import httpx
import pytest
from aiohttp import web

from parsec import Options
from parsec.services.telemetry import MinuteRing, TokenCounters
from parsec.sinks.base import Message, SinkRegistry
from parsec.sinks.webhook import WebhookSink
from parsec.testing import free_port, serve_for_tests

WAIT = 10.0


class SlowHook:
    """A webhook receiver answering once ``release`` is set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: asyncio.Queue[Any] = asyncio.Queue()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived.put_nowait(await request.json())
        await self.release.wait()
        return web.Response(text="ok")


@pytest.fixture
async def hook() -> AsyncIterator[SlowHook]:
    receiver = SlowHook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()


class Disconnects:
    """centrifuge-python events: the codes the client was told to reconnect with."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.codes: asyncio.Queue[int] = asyncio.Queue()

    async def on_connected(self, ctx: Any) -> None:
        self.connected.set()

    async def on_connecting(self, ctx: Any) -> None:
        if ctx.code != 0:  # 0: the client's own connect()
            self.codes.put_nowait(ctx.code)


async def test_aclose_drains_healthz_503_then_3001_then_the_sink_queue(hook: SlowHook) -> None:
    options = Options()
    options.sinks = SinkRegistry([WebhookSink("slow", url=f"http://127.0.0.1:{hook.port}/hook")])
    async with serve_for_tests(options) as served:
        parsec = served.parsec
        events = Disconnects()
        client = centrifuge.Client(
            served.ws_url, events=events, token=served.connection_token("ana"), proxy=None
        )
        async with httpx.AsyncClient(trust_env=False, timeout=WAIT) as balancer:
            await client.connect()
            await asyncio.wait_for(events.connected.wait(), WAIT)
            assert (await balancer.get(f"{served.url}/healthz")).status_code == 200
            await parsec.publish_or_sink(
                "public:tests.drain.nobody", {"n": 1}, "slow", None, Message("s"), wait=False
            )
            await asyncio.wait_for(hook.arrived.get(), WAIT)

            closing = asyncio.create_task(parsec.aclose())
            assert await asyncio.wait_for(events.codes.get(), WAIT) == 3001
            assert parsec.draining
            health = await balancer.get(f"{served.url}/healthz")
            assert (health.status_code, health.text) == (503, "draining")
            assert not closing.done()  # the sink holds the drain open

            hook.release.set()
            await asyncio.wait_for(closing, WAIT)
            assert await parsec.delivery.dlq.count() == 0  # delivered, not dead-lettered
        await client.disconnect()


def test_the_minute_ring_counts_the_last_hour_only() -> None:
    now = [1_000_000.0]
    ring = MinuteRing(lambda: now[0])
    ring.add()
    ring.add(2)
    now[0] += 59 * 60
    ring.add()
    assert ring.last_hour() == 4
    now[0] += 60  # the first minute is now more than an hour old
    assert ring.last_hour() == 1
    now[0] += 3600 * 5  # a slot reused hours later starts from zero
    ring.add()
    assert ring.last_hour() == 1


def test_active_tokens_are_the_unexpired_ones() -> None:
    now = [1_000_000.0]
    counters = TokenCounters(lambda: now[0])
    counters.issued(int(now[0]) + 120)
    counters.issued(int(now[0]) + 7200)
    counters.issued(None)  # no exp: issued, not counted as active
    counters.revoked()
    assert counters.snapshot() == {"issued_last_hour": 3, "revoked_last_hour": 1, "active_count": 2}
    now[0] += 600
    assert counters.snapshot()["active_count"] == 1
