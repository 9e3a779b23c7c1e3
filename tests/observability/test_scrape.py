"""``GET /metrics`` of a real server: counters move by exactly what a test did, gauges
follow connections, the bearer guards it, ``metrics_addr`` moves it, ``metrics = false``
removes it, and no label names a channel, user, client or path."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from typing import Any

import centrifuge
import httpx
from metrics_scrape import CHAT, parse, scrape, total
from waiting import until

from parsec import Options
from parsec.options import ObservabilityOptions
from parsec.testing import free_port, serve_for_tests

PUBLISHES = "parsec_publishes_total"
CONNECTIONS = "parsec_connections"
FORBIDDEN = {"channel", "user", "client", "client_id", "path", "subject", "user_id"}


def options(**observability: Any) -> Options:
    return Options(namespaces=[CHAT], observability=ObservabilityOptions(**observability))


def ok() -> dict[str, str]:
    return {"result": "ok"}


async def test_publishes_through_every_api_count_exactly() -> None:
    """Two through the server API, two through ``parsec.publish``, one through
    ParsecService, one from a client: ``parsec_publishes_total{result="ok"}`` + 6."""
    async with serve_for_tests(options()) as server, httpx.AsyncClient(base_url=server.url) as http:
        await server.parsec.open_public("public:metrics.room")
        before = total(await scrape(http), PUBLISHES, ok())
        for n in range(2):
            reply = await http.post(
                "/api/publish",
                json={"channel": "chat:room", "data": {"n": n}},
                headers={"X-API-Key": server.api_key},
            )
            assert reply.status_code == 200, reply.text
            await server.parsec.publish("chat:room", {"n": n})
        token = server.parsec.issue_mgmt("operator").token
        data = base64.b64encode(json.dumps({"n": 1}).encode()).decode()
        twirp = await http.post(
            "/twirp/parsec.ParsecService/Publish",
            json={"name": "public:metrics.room", "data": data},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert twirp.status_code == 200, twirp.text
        client = centrifuge.Client(server.ws_url, token=server.connection_token("alice"))
        try:
            await client.connect()
            await client.publish("chat:room", {"from": "client"})
        finally:
            await client.disconnect()
        after = await scrape(http)

    assert total(after, PUBLISHES, ok()) - before == 6
    assert total(after, "parsec_client_commands_total", {"method": "publish", "result": "ok"}) == 1
    assert total(after, "parsec_rpc_requests_total", {"method": "Publish", "status": "200"}) == 1


async def test_a_refused_publication_counts_as_an_error_not_ok() -> None:
    async with serve_for_tests(options()) as server, httpx.AsyncClient(base_url=server.url) as http:
        before = await scrape(http)
        reply = await http.post(
            "/api/publish",
            json={"channel": "nowhere:room", "data": {}},
            headers={"X-API-Key": server.api_key},
        )
        assert "error" in reply.json()
        after = await scrape(http)

    assert total(after, PUBLISHES, ok()) == total(before, PUBLISHES, ok())
    errors = {"result": "error"}
    assert total(after, PUBLISHES, errors) - total(before, PUBLISHES, errors) == 1


async def _connections(http: httpx.AsyncClient) -> float:
    return total(await scrape(http), CONNECTIONS, {"transport": "websocket"})


async def test_the_connections_gauge_follows_connects_and_disconnects() -> None:
    async with serve_for_tests(options()) as server, httpx.AsyncClient(base_url=server.url) as http:
        assert await _connections(http) == 0
        clients = [
            centrifuge.Client(server.ws_url, token=server.connection_token(f"u{i}"))
            for i in range(3)
        ]
        for client in clients:
            await client.connect()
        connected = await _connections(http)
        await clients[0].disconnect()
        count = 2.0
        await until(lambda: server.parsec.node.hub.num_clients == 2)
        one_left = await scrape(http)
        for client in clients[1:]:
            await client.disconnect()
        await until(lambda: server.parsec.node.hub.num_clients == 0)
        after = await scrape(http)

    assert connected == 3
    assert total(one_left, CONNECTIONS, {"transport": "websocket"}) == count
    assert total(after, CONNECTIONS, {"transport": "websocket"}) == 0
    assert total(after, "parsec_connects_total", {"transport": "websocket", "result": "ok"}) == 3
    assert total(after, "parsec_disconnects_total") == 3


async def test_subscriptions_and_deliveries() -> None:
    """Two subscribers of one channel, three publications: six deliveries."""
    async with serve_for_tests(options()) as server, httpx.AsyncClient(base_url=server.url) as http:
        clients = [
            centrifuge.Client(server.ws_url, token=server.connection_token(f"s{i}"))
            for i in range(2)
        ]
        try:
            for client in clients:
                await client.connect()
                await client.new_subscription("chat:news").subscribe()
            subscribed = await scrape(http)
            for n in range(3):
                await server.parsec.publish("chat:news", {"n": n})
            after = await scrape(http)
        finally:
            for client in clients:
                await client.disconnect()
        await until(lambda: server.parsec.node.hub.num_subs == 0)
        gone = await scrape(http)

    assert total(subscribed, "parsec_subscriptions", {"namespace": "chat"}) == 2
    assert total(subscribed, "parsec_subscribers_active") == 2
    assert total(subscribed, "parsec_channels_active", {"visibility": "public"}) == 1
    for name in ("parsec_subscriptions", "parsec_subscribers_active", "parsec_channels_active"):
        assert total(gone, name) == 0, name
    assert total(after, "parsec_deliveries_total") == 6


async def test_the_bearer_guards_metrics() -> None:
    secret = "scrape-" + "x" * 20
    async with (
        serve_for_tests(options(metrics_bearer_token=secret)) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert secret not in missing.text + wrong.text
    assert right.status_code == 200
    assert total(parse(right.text), CONNECTIONS) == 0
    assert "parsec_connections" in right.text


async def test_metrics_addr_serves_metrics_apart() -> None:
    port = free_port()
    secret = "apart-" + "y" * 20
    opts = options(metrics_addr=f"127.0.0.1:{port}", metrics_bearer_token=secret)
    async with serve_for_tests(opts) as server, httpx.AsyncClient() as http:
        main = await http.get(f"{server.url}/metrics")
        await server.parsec.publish("chat:room", {})
        apart = f"http://127.0.0.1:{port}/metrics"
        refused = await http.get(apart)
        samples = await scrape(http, apart, Authorization=f"Bearer {secret}")
    async with httpx.AsyncClient() as http:
        closed = None
        try:
            await http.get(apart)
        except httpx.ConnectError as exc:
            closed = exc

    assert main.status_code == 404
    assert refused.status_code == 401
    assert total(samples, PUBLISHES, ok()) == 1
    assert closed is not None  # closed with its Parsec


async def test_metrics_off_means_no_route_and_no_observer() -> None:
    async with (
        serve_for_tests(options(metrics=False)) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        reply = await http.get("/metrics")

    assert reply.status_code == 404
    assert server.parsec.metrics is None
    assert server.parsec.node.observer is None


async def test_region_and_node_label_the_info_metric() -> None:
    opts = dataclasses.replace(options(), region="eu-west")
    async with serve_for_tests(opts) as server, httpx.AsyncClient(base_url=server.url) as http:
        samples = await scrape(http)
        node = server.parsec.node.id

    info = [labels for name, labels, _ in samples if name == "parsec_node_info"]
    assert info == [{"node": node, "region": "eu-west", "version": server.parsec.node.version}]


async def test_no_label_names_a_channel_user_client_or_path() -> None:
    """After traffic on several channels by several users, no label name is one of the
    forbidden ones, and no label value is a channel, a user or a raw path."""
    async with serve_for_tests(options()) as server, httpx.AsyncClient(base_url=server.url) as http:
        client = centrifuge.Client(server.ws_url, token=server.connection_token("carol-9"))
        try:
            await client.connect()
            await client.new_subscription("chat:secret-room").subscribe()
            await client.publish("chat:secret-room", {})
        finally:
            await client.disconnect()
        await http.get("/no/such/path-42")
        await http.post(
            "/api/publish",
            json={"channel": "chat:other-7", "data": {}},
            headers={"X-API-Key": server.api_key},
        )
        samples = await scrape(http)

    names = {key for _, labels, _ in samples for key in labels}
    values = {value for _, labels, _ in samples for value in labels.values()}
    assert not names & FORBIDDEN, names & FORBIDDEN
    for leaked in ("chat:secret-room", "chat:other-7", "carol-9", "/no/such/path-42"):
        assert leaked not in values
    assert any(
        name == "parsec_http_requests_total" and labels.get("route") == "unmatched"
        for name, labels, _ in samples
    )


OFF_PROGRAM = """
import asyncio, sys
from parsec import Options, Parsec
from parsec.options import ObservabilityOptions

async def main():
    async with Parsec(Options(observability=ObservabilityOptions(metrics=False))) as parsec:
        parsec.asgi_app()
        await parsec.publish("x", {})
    print("prometheus_client" in sys.modules)

asyncio.run(main())
"""


def test_metrics_off_never_loads_prometheus_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", OFF_PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
