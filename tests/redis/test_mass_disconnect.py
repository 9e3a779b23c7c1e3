"""A thousand clients of one node leaving at once, seen from a second node on the same
Redis: presence ends exact (only who is still there), every leave event arrives once,
and nothing is logged as failed — whether the clients vanish together or their node
shuts down under them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from crowd import Member, crowd
from redis_helpers import REDIS_URL
from serving import serving as serving_until_closed
from waiting import until

from parsec import Namespace, Options, Parsec
from parsec.options import ApiOptions, AuthOptions, BrokerOptions, ServerOptions
from parsec.testing import free_port

CHANNEL = "room:lobby"
CLIENTS = 1000
API_KEY = "test-api-key"
WAIT = 20.0
"""A bound for a thousand clients on a shared 2-core machine, not a performance claim."""


def options(key_prefix: str, state: Path, *, native: bool = True, pool_size: int = 50) -> Options:
    """A node on the shared Redis whose ``room`` channels keep presence and push joins
    and leaves to the subscribers that ask for them (the crowd does not: a thousand
    clients each told of the other 999 would test the test's own client)."""
    return Options(
        server=ServerOptions(addr=f"127.0.0.1:{free_port()}", native_websocket=native),
        auth=AuthOptions(state_dir=state, allow_anonymous=True),
        api=ApiOptions(key=API_KEY),
        broker=BrokerOptions(url=REDIS_URL, key_prefix=key_prefix, pool_size=pool_size),
        namespaces=[
            Namespace(
                name="room",
                presence=True,
                join_leave=True,
                allow_subscribe_for_client=True,
                allow_subscribe_for_anonymous=True,
                allow_presence_for_subscriber=True,
                allow_presence_for_anonymous=True,
            )
        ],
    )


@contextlib.asynccontextmanager
async def serving(
    key_prefix: str, state: Path, *, native: bool = True, pool_size: int = 50
) -> AsyncIterator[Parsec]:
    """A node serving on a free port until the block ends (or the test closes it); its
    WebSocket transport is the native one unless ``native`` is False (then ASGI)."""
    async with (
        Parsec(options(key_prefix, state, native=native, pool_size=pool_size)) as parsec,
        serving_until_closed(parsec, wait=WAIT),
    ):
        yield parsec


async def api(parsec: Parsec, method: str, body: dict[str, Any]) -> Any:
    """The result of a server API call to ``parsec``."""
    async with httpx.AsyncClient(base_url=f"http://{parsec.options.server.addr}") as http:
        response = await http.post(
            f"/api/{method}", json=body, headers={"X-API-Key": API_KEY}, timeout=WAIT
        )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "result" in payload, payload
    return payload["result"]


async def present(parsec: Parsec) -> set[str]:
    """The client ids in CHANNEL's presence, as ``parsec`` reports them."""
    result = await api(parsec, "presence", {"channel": CHANNEL})
    return set(result.get("presence", {}))


async def settled(observer: Member, publisher: Parsec) -> None:
    """Return once ``observer`` received everything sent on CHANNEL before this call: a
    publication made now arrives after all of it."""
    await api(publisher, "publish", {"channel": CHANNEL, "data": {"marker": True}})
    await until(lambda: bool(observer.pushes_of("pub")), timeout=WAIT)


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every WARNING or worse Parsec logs during the test (kept live)."""
    caplog.set_level(logging.WARNING, logger="parsec")
    return caplog.records


def failures(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or "cleanup" in r.getMessage()
    ]


@pytest.mark.parametrize("pool_size", [50, 2])
async def test_a_thousand_clients_vanishing_at_once_leave_exact_presence(
    key_prefix: str, tmp_path: Path, errors: list[logging.LogRecord], pool_size: int
) -> None:
    """A thousand clients of node A drop their connections in the same instant: node B
    then reports only its own subscriber present, and that subscriber got exactly one
    leave per client, with no error logged — also when node A's Redis pool is far
    smaller than the crowd (its commands wait their turn)."""
    async with (
        serving(key_prefix, tmp_path / "a", pool_size=pool_size) as node_a,
        serving(key_prefix, tmp_path / "b") as node_b,
    ):
        addr_b = node_b.options.server
        observer = await Member.join(addr_b.host, addr_b.port, CHANNEL, join_leave=True)
        addr_a = node_a.options.server
        members = await crowd(addr_a.host, addr_a.port, CHANNEL, CLIENTS)
        try:
            gone = {member.client_id for member in members}
            assert await present(node_b) == gone | {observer.client_id}

            for member in members:  # all in one go, as one event loop step
                member.hang_up()

            await until(lambda: len(observer.pushes_of("leave")) >= CLIENTS, timeout=WAIT)
            await settled(observer, node_a)
            leaves = [leave["info"]["client"] for leave in observer.pushes_of("leave")]
            assert sorted(leaves) == sorted(gone)
            assert await present(node_b) == {observer.client_id}
            assert failures(errors) == []
        finally:
            for member in members:
                await member.aclose()
            await observer.aclose()


@pytest.mark.parametrize("transport", ["native", "asgi"])
async def test_a_node_shutting_down_under_a_thousand_clients_leaves_exact_presence(
    key_prefix: str, tmp_path: Path, errors: list[logging.LogRecord], transport: str
) -> None:
    """Node A shuts down with a thousand clients subscribed: once its ``aclose``
    returns, node B reports only its own subscriber present, and that subscriber gets
    exactly one leave per client of A, with no error logged — on either WebSocket
    transport (the ASGI one is also closed by uvicorn as it stops)."""
    async with serving(key_prefix, tmp_path / "b") as node_b:
        addr_b = node_b.options.server
        observer = await Member.join(addr_b.host, addr_b.port, CHANNEL, join_leave=True)
        members: list[Member] = []
        try:
            native = transport == "native"
            async with serving(key_prefix, tmp_path / "a", native=native) as node_a:
                addr_a = node_a.options.server
                members = await crowd(addr_a.host, addr_a.port, CHANNEL, CLIENTS)
                gone = {member.client_id for member in members}
                assert await present(node_b) == gone | {observer.client_id}

                await node_a.aclose()

                assert await present(node_b) == {observer.client_id}
            await settled(observer, node_b)
            leaves = [leave["info"]["client"] for leave in observer.pushes_of("leave")]
            assert sorted(leaves) == sorted(gone)
            await until(lambda: all(member.closed.is_set() for member in members))
            assert failures(errors) == []
        finally:
            for member in members:
                await member.aclose()
            await observer.aclose()
