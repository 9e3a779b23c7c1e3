"""``POST /api/v1/auth/exchange`` with per-org NATS accounts (``[nats]``, a private
operator-mode nats-server): a member gets a user of its org's own account, a native
nats-py client joins with it, and two orgs on the same subject never hear each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from accounts_fixtures import Tenancy, accounts_options
from db_targets import database_url
from fake_github import FakeGitHub
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats_helpers import WAIT_SECONDS
from operator_mode import operator_servers, options_for

from parsec import Parsec
from parsec.backends.nats.connection import barrier
from parsec.backends.nats.operator import bootstrap


@contextlib.asynccontextmanager
async def _tenancy(tmp_path: Path, github: FakeGitHub) -> AsyncIterator[Tenancy]:
    setup = bootstrap("parsec-exchange-test")
    async with (
        operator_servers(tmp_path) as start,
        database_url("sqlite", tmp_path) as url,
    ):
        server = await start(setup)
        options = accounts_options(url, tmp_path, github, nats=options_for(setup, server.url))
        async with Parsec(options) as parsec, contextlib.AsyncExitStack() as stack:
            yield Tenancy(parsec, github, stack)


async def _native(nats: dict[str, Any], where: Path, clients: list[Client]) -> Client:
    path = where / f"{nats['account']}-{len(clients)}.creds"
    path.write_text(nats["creds"])
    client = Client()
    clients.append(client)
    await client.connect(nats["url"], user_credentials=str(path), allow_reconnect=False)
    return client


async def _exchange(browser: httpx.AsyncClient) -> dict[str, Any]:
    reply = await browser.post("/api/v1/auth/exchange")
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def test_the_exchange_gives_a_user_of_the_orgs_own_nats_account(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    clients: list[Client] = []
    async with _tenancy(tmp_path, fake_github) as tenancy:
        try:
            alice = await tenancy.browser("alice")
            bob = await tenancy.browser("bob")
            mine, theirs = await _exchange(alice), await _exchange(bob)
            assert mine["nats"]["account"] != theirs["nats"]["account"]
            assert mine["nats"]["creds"].startswith("-----BEGIN NATS USER JWT-----")

            listener = await _native(mine["nats"], tmp_path, clients)
            stranger = await _native(theirs["nats"], tmp_path, clients)
            heard: asyncio.Queue[Msg] = asyncio.Queue()
            overheard: asyncio.Queue[Msg] = asyncio.Queue()

            async def hear(msg: Msg) -> None:
                heard.put_nowait(msg)

            async def overhear(msg: Msg) -> None:
                overheard.put_nowait(msg)

            await listener.subscribe("chat.room", cb=hear)
            await stranger.subscribe("chat.room", cb=overhear)
            await barrier(listener, 5)
            await barrier(stranger, 5)

            speaker = await _native(mine["nats"], tmp_path, clients)
            await speaker.publish("chat.room", b"hi from alice's org")
            await barrier(speaker, 5)
            async with asyncio.timeout(WAIT_SECONDS):
                assert (await heard.get()).data == b"hi from alice's org"
            # the other org's account shares no subject with this one
            await stranger.publish("chat.room", b"bob's")
            await barrier(stranger, 5)
            async with asyncio.timeout(WAIT_SECONDS):
                assert (await overheard.get()).data == b"bob's"
            assert heard.empty()
        finally:  # while the server runs: nats-py 2.9 leaves a socket open otherwise
            for client in clients:
                await client.close()
