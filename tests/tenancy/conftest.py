"""What the tenancy tests share: a Parsec with accounts served on a real port
(``org_server``), logged-in browsers over ASGI, and centrifuge-python clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import centrifuge
import httpx
import pytest
from accounts_fixtures import Tenancy, accounts_options
from db_targets import BACKENDS, database_url
from fake_github import FakeGitHub

from parsec import Namespace, Options
from parsec.testing import TestServer, serve_for_tests

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


CHAT = Namespace(
    name="chat",
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_history_for_subscriber=True,
    history_size=10,
    history_ttl=300,
)


def org_options(url: str, tmp_path: Path, github: FakeGitHub, **accounts: Any) -> Options:
    """:func:`accounts_options` with a ``chat`` namespace; ``accounts``: more
    ``[accounts]`` keys (quotas)."""
    return accounts_options(url, tmp_path, github, namespaces=[CHAT], accounts=accounts)


@contextlib.asynccontextmanager
async def served_accounts(
    backend: str, tmp_path: Path, github: FakeGitHub, **accounts: Any
) -> AsyncIterator[Served]:
    async with (
        database_url(backend, tmp_path) as url,
        serve_for_tests(org_options(url, tmp_path, github, **accounts)) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        yield Served(server, Tenancy(server.parsec, github, stack))


@pytest.fixture(params=BACKENDS)
async def org_server(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub
) -> AsyncIterator[Served]:
    """A served Parsec with accounts, on each database backend."""
    async with served_accounts(request.param, tmp_path, fake_github) as it:
        yield it
