"""Metrics of the parts above the engine, scraped from a real server: token
verifications, key rotations and out-of-band delivery (attempts and the DLQ)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import centrifuge
import httpx
from metrics_scrape import CHAT, scrape, total

from parsec import Options
from parsec.sinks import Message, RetryPolicy, SinkRegistry
from parsec.sinks.webhook import WebhookSink
from parsec.testing import serve_for_tests

VERIFICATIONS = "parsec_token_verifications_total"


async def test_token_verifications_count_ok_and_invalid() -> None:
    async with (
        serve_for_tests(Options(namespaces=[CHAT])) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        good = centrifuge.Client(server.ws_url, token=server.connection_token("dana"))
        bad = centrifuge.Client(server.ws_url, token="not.a.token")
        try:
            await good.connect()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await bad.connect()
        finally:
            await bad.disconnect()
            await good.disconnect()
        samples = await scrape(http)

    ok = {"type": "connection", "result": "ok"}
    assert total(samples, VERIFICATIONS, ok) == 1
    assert total(samples, VERIFICATIONS, {"type": "connection", "result": "invalid"}) >= 1


async def test_key_rotations_count_each_action() -> None:
    async with serve_for_tests() as server, httpx.AsyncClient(base_url=server.url) as http:
        key = await server.parsec.generate_key()
        await server.parsec.promote_key(key.id)
        samples = await scrape(http)

    rotations = "parsec_key_rotations_total"
    assert total(samples, rotations, {"action": "generate"}) == 1
    assert total(samples, rotations, {"action": "promote"}) == 1
    assert total(samples, rotations, {"action": "retire"}) == 0


@contextlib.asynccontextmanager
async def failing_webhook() -> AsyncIterator[str]:
    """A real HTTP server that answers every request 500; yields its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def test_sink_attempts_and_the_dlq_size() -> None:
    """A webhook that always fails, two attempts: two ``transient`` attempts, one DLQ item."""
    async with failing_webhook() as url:
        options = Options(
            namespaces=[CHAT],
            sinks=SinkRegistry([WebhookSink("hook", url=url)]),
            sink_retry=RetryPolicy(max_attempts=2, base_backoff=0.0, max_backoff=0.0, jitter=0.0),
        )
        async with (
            serve_for_tests(options) as server,
            httpx.AsyncClient(base_url=server.url) as http,
        ):
            result = await server.parsec.publish_or_sink(
                "chat:nobody", {}, "hook", None, Message(subject="down")
            )
            samples = await scrape(http)

    assert result.sinked
    assert total(samples, "parsec_sink_attempts_total", {"sink": "hook"}) == 2
    assert total(samples, "parsec_sink_attempts_total", {"sink": "hook", "result": "ok"}) == 0
    assert total(samples, "parsec_dlq_size", {"sink": "hook"}) == 1
    assert total(samples, "parsec_sink_duration_seconds_count", {"sink": "hook"}) == 2
