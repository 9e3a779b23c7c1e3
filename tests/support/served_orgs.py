"""A served Parsec with accounts (``Served``): its logged-in browsers, the exchange,
and centrifuge-python clients whose events are queued by kind (``Events``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import centrifuge
import httpx
from accounts_fixtures import Tenancy

from parsec.testing import TestServer

__all__ = ["WAIT", "Events", "Served"]

WAIT = 10.0


class Events:
    """centrifuge-python handlers (``on_<kind>``), each event queued by kind."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)

    async def next(self, kind: str) -> Any:
        async with asyncio.timeout(WAIT):
            return await self._queues[kind].get()

    def pending(self, kind: str) -> int:
        return self._queues[kind].qsize()

    def __getattr__(self, name: str) -> Callable[[Any], Awaitable[None]]:
        if not name.startswith("on_"):
            raise AttributeError(name)
        queue = self._queues[name.removeprefix("on_")]

        async def record(ctx: Any) -> None:
            queue.put_nowait(ctx)

        return record


class Served:
    """A served Parsec with accounts, its logged-in browsers and SDK clients."""

    def __init__(self, server: TestServer, tenancy: Tenancy) -> None:
        self.server = server
        self.tenancy = tenancy

    def ws(self, path: str) -> str:
        return self.server.url.replace("http://", "ws://") + path

    async def exchange(self, browser: httpx.AsyncClient, **params: str) -> dict[str, Any]:
        reply = await browser.post("/api/v1/auth/exchange", params=params)
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer

    @contextlib.asynccontextmanager
    async def client(self, url: str, token: str) -> AsyncIterator[tuple[Any, Events]]:
        events = Events()
        client = centrifuge.Client(url, events=events, token=token, proxy=None)
        try:
            await client.connect()
            yield client, events
        finally:
            await client.disconnect()
