"""The NATS controller between real nodes: commands in order to every other node,
node lists that follow nodes coming and going, and a survey across a NATS restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats_helpers import (
    NATS_URL,
    WAIT_SECONDS,
    Nodes,
    StartServer,
    nats_nodes,
    private_servers,
    unique_prefix,
)

from parsec.backends.nats import NatsConnection, NatsController
from parsec.engine.controller import ControlCommand, DisconnectCommand, NodeInfo


@pytest.fixture
def subject_prefix() -> str:
    """A subject prefix no other test uses."""
    return unique_prefix()


@pytest.fixture
async def nodes(subject_prefix: str) -> AsyncIterator[Nodes]:
    """Brokers and controllers on the shared NATS under the test's prefix."""
    async with nats_nodes(subject_prefix) as made:
        yield made


@pytest.fixture
async def nats_server() -> AsyncIterator[StartServer]:
    """Private nats-servers, killed after the test."""
    async with private_servers() as start:
        yield start


class Node:
    """A ControlEventHandler recording the commands it gets; it answers surveys with
    its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[ControlCommand] = []

    async def handle_control(self, command: ControlCommand) -> None:
        self.commands.append(command)

    def node_info(self) -> NodeInfo:
        return NodeInfo(f"{self.name}-uid", self.name, "test", 1, 1, 1, 1)

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        return self.name.encode()


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (node lists change with no event to await) until it holds."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


async def _names(controller: NatsController) -> list[str]:
    return [info.name for info in await controller.nodes()]


async def test_commands_reach_every_other_node_in_order(nodes: Nodes) -> None:
    """Commands one node broadcasts reach each other node once, in the order sent."""
    _, make = nodes
    a, b, c = Node("a"), Node("b"), Node("c")
    ca, cb, cc = make("a"), make("b"), make("c")
    for controller, node in ((ca, a), (cb, b), (cc, c)):
        await controller.start(node)
    sent = [DisconnectCommand(user=f"u{n}", code=4000 + n, reason="bye") for n in range(20)]

    for command in sent:
        await ca.broadcast(command)
    await cb.sync()
    await cc.sync()
    await ca.sync()

    assert b.commands == c.commands == sent
    assert a.commands == []


async def test_a_node_that_stops_reporting_drops_out(nodes: Nodes, subject_prefix: str) -> None:
    """A node cut off without a goodbye is listed until ``node_ttl`` passes without a
    report, then no longer; a node that closes says goodbye and drops out at once."""
    _, make = nodes
    watcher = make("watcher", report_interval=0.1, node_ttl=0.6)
    await watcher.start(Node("watcher"))
    crashing_link = NatsConnection(NATS_URL)
    crashing = NatsController(crashing_link, "crashing", prefix=subject_prefix)
    try:
        await crashing.start(Node("crashing"))
        leaving = make("leaving", report_interval=0.1)
        await leaving.start(Node("leaving"))
        await _until(lambda: _has(watcher, ["crashing", "leaving"]))

        await leaving.aclose()
        assert await _names(watcher) == ["crashing"]

        await crashing_link.aclose()  # the process died: no goodbye, no more reports
        await _until(lambda: _has(watcher, []))
    finally:
        await crashing.aclose()
        await crashing_link.aclose()


async def test_a_survey_works_again_after_nats_restarts(
    nodes: Nodes, nats_server: StartServer
) -> None:
    """Across a NATS restart the controllers reconnect and re-subscribe by themselves:
    the nodes find each other again and a survey gets its answer."""
    server = await nats_server()
    _, make = nodes
    ca = make("a", url=server.url, report_interval=0.2, node_ttl=1.0)
    cb = make("b", url=server.url, report_interval=0.2, node_ttl=1.0)
    await ca.start(Node("a"))
    await cb.start(Node("b"))
    await _until(lambda: _has(ca, ["b"]))

    await server.stop()
    await _until(lambda: _has(ca, []))  # b's reports stopped arriving
    await server.start()

    await _until(lambda: _has(ca, ["b"]))
    replies = await ca.survey("who", b"", timeout=WAIT_SECONDS)
    assert [(r.node, r.data) for r in replies] == [("b", b"b")]


async def _has(controller: NatsController, names: list[str]) -> bool:
    return await _names(controller) == names
