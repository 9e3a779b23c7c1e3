"""``parsec serve --workers 2``: one scrape shows the whole server, both workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from metrics_scrape import scrape, total

import redis
from compat.parsec_process import ParsecServer, ServerFactory

REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENTS = 8
PUBLISHES = "parsec_publishes_total"
SETTLE = 10.0
"""Seconds the workers get to hand over their counts: a deadline, not a claim."""


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[tuple[ServerFactory, str]]:
    prefix = f"parsec-metrics-{uuid.uuid4().hex[:10]}"
    made = ServerFactory(tmp_path)
    try:
        yield made, f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
    finally:
        made.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


async def _connect(server: ParsecServer, user: str) -> websockets.ClientConnection:
    ws = await websockets.connect(server.ws_url)
    token = server.connection_token(user)
    await ws.send(f'{{"id": 1, "connect": {{"token": "{token}"}}}}')
    reply = str(await ws.recv())
    assert '"id":1' in reply.replace(" ", ""), reply
    return ws


async def settled(http: httpx.AsyncClient) -> None:
    """Return once a scrape counts everything: each worker hands its counts to the
    shared directory at least once a second (``SAMPLE_INTERVAL``)."""
    async with asyncio.timeout(SETTLE):
        while True:
            samples = await scrape(http)
            connections = total(samples, "parsec_connections", {"transport": "websocket"})
            if connections == CLIENTS and total(samples, PUBLISHES, {"result": "ok"}) == 6:
                return
            await asyncio.sleep(0.1)  # no event crosses the processes: look again


async def test_one_scrape_sums_both_workers(factory: tuple[ServerFactory, str]) -> None:
    """Eight clients spread by SO_REUSEPORT over two workers and publications through
    the API (each landing on either worker): once the workers have handed over their
    counts (within a second), every scrape, whichever worker answers, counts them all
    and shows both workers' ``parsec_node_info``."""
    made, broker = factory
    server = made.start(broker, args=["--workers", "2"])
    sockets = [await _connect(server, f"w{i}") for i in range(CLIENTS)]
    try:
        async with httpx.AsyncClient(base_url=server.http_url, trust_env=False) as http:
            for n in range(6):
                reply = await http.post(
                    "/api/publish",
                    json={"channel": "chat:room", "data": {"n": n}},
                    headers={"X-API-Key": server.api_key},
                )
                assert reply.status_code == 200, reply.text
            await settled(http)
            scrapes = [await scrape(http) for _ in range(4)]
    finally:
        for ws in sockets:
            await ws.close()

    for samples in scrapes:  # whichever worker answered
        assert total(samples, "parsec_connections", {"transport": "websocket"}) == CLIENTS
        assert total(samples, PUBLISHES, {"result": "ok"}) == 6
        nodes = {labels["node"] for name, labels, _ in samples if name == "parsec_node_info"}
        assert len(nodes) == 2
