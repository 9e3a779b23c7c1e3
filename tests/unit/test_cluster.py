"""The engine's Cluster on in-process transports: the node registry, reports, commands
and surveys, with no server (the conformance suite runs it on Redis and NATS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from parsec.backends.memory import MemoryControlHub
from parsec.engine.cluster import Cluster
from parsec.engine.controller import ControlCommand, DisconnectCommand, NodeInfo
from parsec.engine.wire import Answer, Envelope, Report, encode

Make = Callable[..., Cluster]


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A ControlEventHandler keeping the commands and questions it gets; it answers a
    survey with its name, or (``hang``) only once ``release`` is set."""

    def __init__(self, name: str, *, hang: bool = False) -> None:
        self.name = name
        self.hang = hang
        self.release = asyncio.Event()
        self.commands: list[ControlCommand] = []
        self.surveys: list[tuple[str, bytes]] = []

    async def handle_control(self, command: ControlCommand) -> None:
        self.commands.append(command)

    def node_info(self) -> NodeInfo:
        return NodeInfo(f"{self.name}-uid", self.name, "test", 0, 0, 0, 0)

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        self.surveys.append((op, data))
        if self.hang:
            await self.release.wait()
        return self.name.encode()


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """Clusters on one hub (one node each), closed after the test."""
    hub = MemoryControlHub()
    made: list[Cluster] = []

    def cluster(name: str, **kwargs: Any) -> Cluster:
        instance = Cluster(hub.transport(), name, **kwargs)
        made.append(instance)
        return instance

    yield cluster
    for instance in made:
        await instance.aclose()


def _names(infos: list[NodeInfo]) -> list[str]:
    return [info.name for info in infos]


async def test_a_starting_node_is_listed_at_once_and_hears_of_the_others(make: Make) -> None:
    """A node announces itself when it starts; the others answer with their reports."""
    a, b = make("a"), make("b")
    await a.start(Recorder("a"))
    await b.start(Recorder("b"))

    assert _names(await a.nodes()) == ["b"]
    await b.sync()  # a's answer to b's announcement came after it
    assert _names(await b.nodes()) == ["a"]


async def test_a_silent_node_drops_out_after_node_ttl_and_a_closed_one_at_once(
    make: Make,
) -> None:
    """Reports age on the clock: a node not heard from for ``node_ttl`` is no longer
    listed; a node that closes says goodbye."""
    clock = Clock()
    watcher = make("watcher", node_ttl=10.0, clock=clock)
    quiet, leaving = make("quiet", report_interval=3600.0), make("leaving")
    for cluster in (watcher, quiet, leaving):
        await cluster.start(Recorder(cluster.node_id))
    assert _names(await watcher.nodes()) == ["leaving", "quiet"]

    await leaving.aclose()
    assert _names(await watcher.nodes()) == ["quiet"]
    clock.now += 10.5
    assert await watcher.nodes() == []


async def test_commands_reach_the_others_in_order_and_failures_stop_nothing(
    make: Make,
) -> None:
    """Every other node applies the commands in the order sent; a handler that raises
    is logged and the next command still arrives."""

    class Failing(Recorder):
        async def handle_control(self, command: ControlCommand) -> None:
            await super().handle_control(command)
            raise RuntimeError("boom")

    a, b = make("a"), make("b")
    sender, failing = Recorder("a"), Failing("b")
    await a.start(sender)
    await b.start(failing)
    sent = [DisconnectCommand(user=f"u{n}", code=4000 + n, reason="bye") for n in range(5)]

    for command in sent:
        await a.broadcast(command)

    await b.sync()  # b's marker comes back after a's commands
    assert failing.commands == sent
    await a.sync()
    assert sender.commands == []


async def test_garbage_and_strangers_answers_are_dropped(make: Make) -> None:
    """An undecodable message, or an answer to no survey under way, changes nothing."""
    a, b = make("a"), make("b")
    await a.start(Recorder("a"))
    await b.start(Recorder("b"))
    transport = b._transport

    await transport.send(b"not json")
    await transport.send(encode(Envelope("b", report=Report(ask=False))))
    await transport.send(encode(Envelope("b", answer=Answer("no-such-survey", b"x"))))
    await a.sync()

    assert _names(await a.nodes()) == ["b"]
    assert await a.survey("echo", b"1", timeout=5.0) != []


async def test_start_once_and_survey_only_when_started(make: Make) -> None:
    """Starting twice and surveying before the start are programming errors."""
    a = make("a")
    with pytest.raises(RuntimeError):
        await a.survey("echo", b"")
    await a.start(Recorder("a"))
    with pytest.raises(RuntimeError):
        await a.start(Recorder("a"))
    await a.aclose()
    await a.aclose()
    await a.sync()  # closed: nothing to wait for


async def test_close_ends_a_survey_under_way_with_what_it_has(make: Make) -> None:
    """A survey waiting for a slow node returns, without raising, when this node
    closes."""
    a, slow = make("a"), make("slow")
    await a.start(Recorder("a"))
    hanging = Recorder("slow", hang=True)
    await slow.start(hanging)
    await a.sync()

    survey = asyncio.create_task(a.survey("echo", b"1", timeout=60.0))
    async with asyncio.timeout(5):
        while not hanging.surveys:  # noqa: ASYNC110 - the recorder has no event for it
            await asyncio.sleep(0.01)
    await a.aclose()

    assert await survey == []
    hanging.release.set()
