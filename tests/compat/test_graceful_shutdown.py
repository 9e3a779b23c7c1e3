"""``parsec serve`` stops without dropping anybody: on SIGTERM or SIGINT ``/healthz``
turns 503, new connections are refused, connected clients get 3001 (reconnect), the sink
queue drains within ``shutdown_timeout`` and the process exits 0.

The drain is held open by a webhook sink of the test's own that answers only when the
test lets it, so what the server does while draining can be observed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cent
import centrifuge
import httpx
import pytest
from aiohttp import web
from redis_keys import REDIS_URL, scratch_prefix

from .parsec_process import ParsecServer, ServerFactory, free_port
from .sdk_events import EventLog, sdk_client

EXIT_WAIT = 30.0
SHUTDOWN = 3001


@dataclass
class SlowSink:
    """A webhook receiver that records each delivery, then answers once ``release`` is
    set."""

    port: int
    arrived: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def toml(self) -> str:
        return (
            '[sinks.slow]\nkind = "webhook"\n'
            f'url = "http://127.0.0.1:{self.port}/hook"\ntimeout = "60s"\n'
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived.put_nowait(await request.json())
        await self.release.wait()
        return web.Response(text="ok")


@pytest.fixture
async def slow_sink() -> AsyncIterator[SlowSink]:
    sink = SlowSink(free_port())
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sink.port).start()
    try:
        yield sink
    finally:
        sink.release.set()
        await runner.cleanup()


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[ServerFactory]:
    made = ServerFactory(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _sink_in_background(server: ParsecServer, text: str) -> None:
    """PublishOrSink to a channel that does not exist (nobody listens), queued (``wait`` false)."""
    reply = server.manage(
        "PublishOrSink",
        {
            "name": f"public:tests.drain.{uuid.uuid4().hex[:8]}",
            "data": base64.b64encode(json.dumps({"text": text}).encode()).decode(),
            "sink": "slow",
            "recipient": None,
            "message": {"subject": text},
            "wait": False,
        },
    )
    assert reply.get("sinked") is True, reply


async def _exit_code(process: subprocess.Popen[bytes]) -> int:
    return await asyncio.to_thread(process.wait, EXIT_WAIT)


async def _told_to_reconnect(events: EventLog) -> Any:
    return await events.until("connecting", lambda ctx: ctx.code == SHUTDOWN)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_drains_then_exits_0(
    factory: ServerFactory, slow_sink: SlowSink, sig: signal.Signals
) -> None:
    """While a sink delivery holds the drain open: a load balancer's open connection
    sees /healthz 503, a new connection is refused, the client got 3001; once the sink
    answers, the process exits 0 and the message was delivered, not dead-lettered."""
    server = factory.start(slow_sink.toml)
    process = factory.process(server)
    async with (
        sdk_client(server) as (client, events),
        httpx.AsyncClient(trust_env=False, timeout=10) as balancer,
    ):
        await client.connect()
        await events.next("connected")
        assert (await balancer.get(f"{server.http_url}/healthz")).status_code == 200
        _sink_in_background(server, "report ready")
        assert (await slow_sink.arrived.get())["subject"] == "report ready"

        process.send_signal(sig)
        await _told_to_reconnect(events)
        health = await balancer.get(f"{server.http_url}/healthz")
        assert (health.status_code, health.text) == (503, "draining")
        with pytest.raises(httpx.ConnectError):
            await httpx.AsyncClient(trust_env=False).get(f"{server.http_url}/healthz")
        assert process.poll() is None  # the sink still holds the drain open

        slow_sink.release.set()
        assert await _exit_code(process) == 0
    log = server.log_tail()
    assert "Traceback" not in log
    assert "dead-lettered" not in log


async def test_an_api_call_under_way_finishes_during_the_drain(
    factory: ServerFactory, slow_sink: SlowSink
) -> None:
    """A PublishOrSink that waits for its delivery is under way when SIGTERM comes: it
    is answered (delivered) before the process exits 0."""
    server = factory.start(slow_sink.toml)
    process = factory.process(server)
    bearer = server.manage("IssueMgmt", {"subject": "ops"})["mgmt_token"]
    body = {
        "name": f"public:tests.drain.{uuid.uuid4().hex[:8]}",
        "data": base64.b64encode(b'{"n": 1}').decode(),
        "sink": "slow",
        "recipient": None,
        "message": {"subject": "waited"},
        "wait": True,
    }
    async with (
        httpx.AsyncClient(trust_env=False, timeout=EXIT_WAIT) as http,
        httpx.AsyncClient(trust_env=False, timeout=EXIT_WAIT) as balancer,
    ):
        assert (await balancer.get(f"{server.http_url}/healthz")).status_code == 200
        call = asyncio.create_task(
            http.post(
                f"{server.http_url}/twirp/parsec.ParsecService/PublishOrSink",
                json=body,
                headers={"Authorization": f"Bearer {bearer}"},
            )
        )
        await slow_sink.arrived.get()
        process.send_signal(signal.SIGTERM)
        await _draining(balancer, server)  # on the connection it opened before
        assert not call.done()
        slow_sink.release.set()
        reply = await call
    assert reply.status_code == 200, reply.text
    assert reply.json()["delivered"] is True, reply.json()
    assert await _exit_code(process) == 0


async def test_past_shutdown_timeout_what_is_left_is_cut_and_it_exits_0(
    factory: ServerFactory, slow_sink: SlowSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARSEC_SHUTDOWN_TIMEOUT", "1s")
    server = factory.start(slow_sink.toml)
    process = factory.process(server)
    _sink_in_background(server, "never answered")
    await slow_sink.arrived.get()

    process.send_signal(signal.SIGTERM)
    assert await _exit_code(process) == 0
    log = server.log_tail()
    assert "WARNING" in log
    assert "1 sink delivery(ies) dead-lettered" in log
    assert "Traceback" not in log


async def test_a_second_signal_during_the_drain_exits_at_once(
    factory: ServerFactory, slow_sink: SlowSink
) -> None:
    server = factory.start(slow_sink.toml)
    process = factory.process(server)
    async with sdk_client(server) as (client, events):
        await client.connect()
        await events.next("connected")
        _sink_in_background(server, "held")
        await slow_sink.arrived.get()
        process.send_signal(signal.SIGTERM)
        await _told_to_reconnect(events)  # draining, held open by the sink

        process.send_signal(signal.SIGINT)
        assert await _exit_code(process) == 1
    log = server.log_tail()
    assert "SIGINT while draining: exiting now" in log
    assert "Traceback" not in log


async def test_with_workers_every_worker_drains_and_the_supervisor_exits_0(
    factory: ServerFactory,
) -> None:
    with scratch_prefix() as prefix:
        broker = f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        server = factory.start(broker, args=["--workers", "2"])
        process = factory.process(server)
        await _logged(server, "worker 0 serving", "worker 1 serving")
        process.send_signal(signal.SIGTERM)
        assert await _exit_code(process) == 0
    log = server.log_tail()
    assert log.count("SIGTERM: draining") == 2, log
    assert log.count("draining: ") == 2, log
    assert "Traceback" not in log


async def _draining(http: httpx.AsyncClient, server: ParsecServer) -> None:
    """Wait until ``/healthz`` answers 503 on ``http``'s open connection (the signal is
    handled on the server's next turn of its event loop)."""
    async with asyncio.timeout(EXIT_WAIT):
        while True:
            if (await http.get(f"{server.http_url}/healthz")).status_code == 503:
                return


async def _logged(server: ParsecServer, *lines: str) -> None:
    """Wait until the server's log holds every one of ``lines`` (it is a file: looked
    at every 50 ms, for at most EXIT_WAIT seconds)."""
    async with asyncio.timeout(EXIT_WAIT):
        while True:
            if all(line in server.log_tail() for line in lines):
                return
            await asyncio.sleep(0.05)


# -- shutdown under load ----------------------------------------------------------------


class FailoverProxy:
    """A TCP proxy on a port of its own: each new connection goes to the first of
    ``backends`` that accepts it. Clients given its address move to the second node
    once the first stops accepting, as behind a load balancer."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FailoverProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.backends:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            for source, sink in ((reader, up_writer), (up_reader, writer)):
                pipe = asyncio.create_task(_pipe(source, sink))
                self._pipes.add(pipe)
                pipe.add_done_callback(self._pipes.discard)
            return
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


HISTORY_TOML = """
[[namespaces]]
name = "feed"
history_size = 10000
history_ttl = "600s"
force_recovery = true
allow_subscribe_for_client = true
"""
SUBSCRIBERS = 3
AFTER_MOVE = 20
"""Publications every subscriber receives from the second node before the end."""


async def test_shutdown_under_load_subscribers_move_to_another_node_without_a_gap(
    factory: ServerFactory,
) -> None:
    """Subscribers on node A (through a TCP proxy that sends new connections to A, else
    to B) while publications go in through node B's /api without a pause; SIGTERM to A:
    each subscriber gets 3001, reconnects through the proxy to B and recovers, and the
    offsets it received are contiguous from its first to the last publication."""
    channel = f"feed:{uuid.uuid4().hex[:8]}"
    with scratch_prefix() as prefix:
        broker = f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        node_a = factory.start(broker + HISTORY_TOML)
        node_b = factory.start(broker + HISTORY_TOML, hmac_secret=node_a.hmac_secret)
        async with FailoverProxy([node_a.port, node_b.port]) as proxy:
            proxied = ParsecServer(proxy.port, node_a.api_key, node_a.hmac_secret, node_a.workdir)
            await _move_under_load(factory, proxied, node_a, node_b, channel)


async def _move_under_load(
    factory: ServerFactory,
    proxied: ParsecServer,
    node_a: ParsecServer,
    node_b: ParsecServer,
    channel: str,
) -> None:
    async with (
        sdk_client(proxied, "u0") as c0,
        sdk_client(proxied, "u1") as c1,
        sdk_client(proxied, "u2") as c2,
        cent.AsyncClient(node_b.api_url, node_b.api_key) as api,
    ):
        logs = [await _subscribe(client, events, channel) for client, events in (c0, c1, c2)]
        sent: list[int] = []
        stop = asyncio.Event()

        async def publish() -> None:
            while not stop.is_set():
                result = await api.publish(cent.PublishRequest(channel=channel, data={"n": 1}))
                sent.append(result.offset)

        publisher = asyncio.create_task(publish())
        try:
            for log in logs:  # publications flow before the drain
                await log.next("publication")
            factory.process(node_a).send_signal(signal.SIGTERM)
            for (_, events), log in zip((c0, c1, c2), logs, strict=True):
                await _told_to_reconnect(events)
                again = await log.next("subscribed")
                assert (again.was_recovering, again.recovered) == (True, True)
            moved = len(sent)
            for log in logs:
                await log.until("publication", lambda ctx: ctx.pub.offset >= moved + AFTER_MOVE)
        finally:
            stop.set()
            await publisher
        assert await _exit_code(factory.process(node_a)) == 0
        last = sent[-1]
        for log in logs:
            await log.until("publication", lambda ctx: ctx.pub.offset == last)
            offsets = [ctx.pub.offset for ctx in log.of("publication")]
            assert offsets == list(range(offsets[0], last + 1))


async def _subscribe(client: centrifuge.Client, events: EventLog, channel: str) -> EventLog:
    await client.connect()
    await events.next("connected")
    log = EventLog()
    sub = client.new_subscription(channel, events=log)
    await sub.subscribe()
    await log.next("subscribed")
    return log
