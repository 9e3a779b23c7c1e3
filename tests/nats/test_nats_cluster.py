"""Two Parsec servers sharing one NATS act as one: a centrifuge-python client on node A
gets what node B's server API publishes, and a disconnect sent through node B reaches
the user on node A. ``/healthz`` follows the NATS connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import centrifuge
import httpx
import pytest
from nats_helpers import NATS_URL, WAIT_SECONDS, StartServer, private_servers, unique_prefix
from served_orgs import Events

from parsec import BrokerOptions, Namespace, Options, ParsecError
from parsec.testing import TestServer, serve_for_tests


@pytest.fixture
def subject_prefix() -> str:
    """A subject prefix no other test uses."""
    return unique_prefix()


@pytest.fixture
async def nats_server() -> AsyncIterator[StartServer]:
    """Private nats-servers, killed after the test."""
    async with private_servers() as start:
        yield start


def _options(url: str, prefix: str) -> Options:
    """A node on the NATS at ``url``: ``chat:`` channels, no history anywhere."""
    return Options(
        broker=BrokerOptions(url=url, key_prefix=prefix),
        namespaces=[
            Namespace(name="chat", join_leave=True, allow_subscribe_for_client=True),
            Namespace(name="public", allow_subscribe_for_client=True),
            Namespace(name="private", require_subscription_token=True),
        ],
    )


async def _api(server: TestServer, method: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{server.api_url}/{method}", json=body, headers={"X-API-Key": server.api_key}
        )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    assert "error" not in reply, reply
    return reply


@contextlib.asynccontextmanager
async def _client(server: TestServer, user: str) -> AsyncIterator[tuple[Any, Events]]:
    """A connected centrifuge-python client of ``user`` on ``server``."""
    events = Events()
    client = centrifuge.Client(
        server.ws_url, events=events, token=server.connection_token(user), proxy=None
    )
    await client.connect()
    await events.next("connected")
    try:
        yield client, events
    finally:
        before = asyncio.all_tasks()
        await client.disconnect()
        closing = asyncio.all_tasks() - before
        if closing:
            await asyncio.wait(closing, timeout=5)


async def test_two_nodes_on_one_nats_act_as_one_server(subject_prefix: str) -> None:
    """A client on node A receives a publication sent through node B's server API, and
    a disconnect sent through node B's server API closes its connection on node A."""
    async with (
        serve_for_tests(_options(NATS_URL, subject_prefix)) as node_a,
        serve_for_tests(_options(NATS_URL, subject_prefix)) as node_b,
        _client(node_a, "alice") as (client, events),
    ):
        subscription = client.new_subscription("chat:room.1", events=events)
        await subscription.subscribe()
        await events.next("subscribed")

        await _api(node_b, "publish", {"channel": "chat:room.1", "data": {"text": "hi"}})
        publication = await events.next("publication")
        assert publication.pub.data == {"text": "hi"}

        await _api(
            node_b, "disconnect", {"user": "alice", "disconnect": {"code": 4501, "reason": "bye"}}
        )
        disconnected = await events.next("disconnected")
        assert (disconnected.code, disconnected.reason) == (4501, "bye")


@contextlib.asynccontextmanager
async def _step(name: str) -> AsyncIterator[None]:
    """A step of a test that must end within WAIT_SECONDS, named when it does not (a
    hang once failed the whole test at pytest's timeout, with no hint of where)."""
    try:
        async with asyncio.timeout(WAIT_SECONDS + 1):
            yield
    except TimeoutError:
        pytest.fail(f"step {name!r} did not end within {WAIT_SECONDS + 1} s")


async def _until_health(url: str, status: int) -> None:
    """Poll /healthz (an HTTP endpoint: there is no event to await) until ``status``."""
    async with httpx.AsyncClient(trust_env=False) as http, asyncio.timeout(WAIT_SECONDS):
        while True:
            if (await http.get(f"{url}/healthz")).status_code == status:
                return
            await asyncio.sleep(0.05)


async def test_healthz_follows_the_nats_connection(
    nats_server: StartServer, subject_prefix: str
) -> None:
    """Killing NATS turns /healthz to 503 and makes a publish fail at once with
    PARSEC_BROKER_NOT_READY; once NATS is back /healthz is 200 and publishing works,
    with no restart of Parsec."""
    nats = await nats_server()
    async with serve_for_tests(_options(nats.url, subject_prefix)) as server:
        async with _step("first health"):
            await _until_health(server.url, 200)
        async with _step("publish while up"):
            await server.parsec.publish("chat:health", {"n": 1})

        async with _step("kill nats"):
            await nats.stop()
        async with _step("health while down"):
            await _until_health(server.url, 503)
        async with asyncio.timeout(1.0):  # at once, not after a wait for NATS
            with pytest.raises(ParsecError) as failure:
                await server.parsec.publish("chat:health", {"n": 2})
        assert failure.value.code == "PARSEC_BROKER_NOT_READY"

        async with _step("restart nats"):
            await nats.start()
        async with _step("health once back"):
            await _until_health(server.url, 200)
        async with _step("publish once back"):
            await server.parsec.publish("chat:health", {"n": 3})
