"""Controller conformance: the guarantees stated in ``parsec.engine.controller``."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from parsec.engine.controller import (
    ControlCommand,
    Controller,
    DisconnectCommand,
    RefreshCommand,
    SubscribeCommand,
    SurveyReply,
    UnsubscribeCommand,
)

from .conftest import BACKENDS
from .factories import BackendFactory, MemoryBackend
from .recorders import WAIT_SECONDS, ControlRecorder

COMMANDS: list[ControlCommand] = [
    DisconnectCommand(user="alice", code=3011, reason="force reconnect", whitelist=["c9"]),
    UnsubscribeCommand(user="alice", channel="chat:room", client="c1"),
    SubscribeCommand(user="alice", channel="chat:room", data=msgspec.Raw(b'{"a":1}'), recover=True),
    RefreshCommand(user="alice", expired=True),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
async def test_broadcast_never_reaches_the_sender(
    backend: BackendFactory,
    controller: Controller,
    control_recorder: ControlRecorder,
    command: ControlCommand,
) -> None:
    """A node never receives the commands it broadcast itself."""
    await controller.broadcast(command)
    await backend.settle()

    assert control_recorder.commands == []


async def test_lone_node_sees_no_other_nodes(controller: Controller) -> None:
    """nodes() of the only node of a cluster is empty: it never lists itself."""
    assert await controller.nodes() == []


async def test_aclose_is_idempotent(backend: BackendFactory) -> None:
    """Closing a started controller twice raises nothing."""
    controller = backend.controller()
    await controller.start(ControlRecorder())

    await controller.aclose()
    await controller.aclose()


# --- survey ---------------------------------------------------------------------

SHORT = 0.5
"""The timeout of surveys some node is expected to miss."""

LONG = 60.0
"""The timeout of surveys every node answers: they must return before it runs out."""

CLUSTERED = [param for param in BACKENDS if param.values[0] is not MemoryBackend]
"""The backends whose controllers, made by one factory, are nodes of one cluster
(memory controllers live in one process each: every one is a cluster of its own)."""

clustered = pytest.mark.parametrize("backend", CLUSTERED, indirect=True)


async def _cluster(backend: BackendFactory, *handlers: ControlRecorder) -> list[Controller]:
    """One started controller per handler, returned once every one lists the others."""
    controllers = []
    for handler in handlers:
        controller = backend.controller()
        await controller.start(handler)
        controllers.append(controller)
    async with asyncio.timeout(WAIT_SECONDS):  # nodes() is polled: there is no event
        while True:
            if all([len(await c.nodes()) == len(controllers) - 1 for c in controllers]):
                return controllers
            await asyncio.sleep(0.05)


async def _survey(controller: Controller, op: str, data: bytes) -> list[SurveyReply]:
    """A survey every node answers: it returns as soon as they all did, long before
    its own timeout."""
    async with asyncio.timeout(WAIT_SECONDS):
        return await controller.survey(op, data, timeout=LONG)


def _answers(replies: list[SurveyReply]) -> list[bytes]:
    """The answers' data, sorted; the replies must come from distinct nodes."""
    assert len({reply.node for reply in replies}) == len(replies), replies
    return sorted(reply.data for reply in replies)


async def test_lone_node_survey_is_empty(
    controller: Controller, control_recorder: ControlRecorder
) -> None:
    """The only node of a cluster surveys nobody: no answer, not even its own."""
    assert await controller.survey("echo", b"hello", timeout=SHORT) == []
    assert control_recorder.surveys == []


@clustered
async def test_survey_reaches_every_other_node_never_the_sender(backend: BackendFactory) -> None:
    """Each node's survey is answered once by every other node, never by itself."""
    nodes = [ControlRecorder(name) for name in ("a", "b", "c")]
    controllers = await _cluster(backend, *nodes)

    for asker, controller in zip(nodes, controllers, strict=True):
        replies = await _survey(controller, "echo", asker.name.encode())
        others = [node for node in nodes if node is not asker]
        assert _answers(replies) == sorted(n.answer("echo", asker.name.encode()) for n in others)

    for node in nodes:
        assert sorted(node.surveys) == sorted(
            ("echo", other.name.encode()) for other in nodes if other is not node
        )


@clustered
async def test_concurrent_surveys_each_get_their_own_answers(backend: BackendFactory) -> None:
    """Surveys under way at once, from one node or several, never mix their answers."""
    a, b, c = (ControlRecorder(name) for name in ("a", "b", "c"))
    ca, cb, _ = await _cluster(backend, a, b, c)

    first, second, third = await asyncio.gather(
        _survey(ca, "echo", b"1"), _survey(ca, "echo", b"2"), _survey(cb, "other", b"3")
    )

    assert _answers(first) == [b.answer("echo", b"1"), c.answer("echo", b"1")]
    assert _answers(second) == [b.answer("echo", b"2"), c.answer("echo", b"2")]
    assert _answers(third) == [a.answer("other", b"3"), c.answer("other", b"3")]


@clustered
async def test_a_node_that_does_not_answer_in_time_is_left_out(backend: BackendFactory) -> None:
    """A survey returns, without raising, the answers that came within its timeout; the
    slow node's late answer never counts for a later survey."""
    a, b = ControlRecorder("a"), ControlRecorder("b")
    slow = ControlRecorder("slow", survey="hang")
    ca, _, _ = await _cluster(backend, a, b, slow)

    replies = await ca.survey("echo", b"1", timeout=SHORT)
    slow.release.set()

    assert _answers(replies) == [b.answer("echo", b"1")]
    assert ("echo", b"1") in slow.surveys
    replies = await _survey(ca, "echo", b"2")
    assert _answers(replies) == [b.answer("echo", b"2"), slow.answer("echo", b"2")]


@clustered
async def test_a_node_whose_handler_fails_is_left_out(backend: BackendFactory) -> None:
    """A node whose handler raises sends no answer, and still receives commands."""
    a, b = ControlRecorder("a"), ControlRecorder("b")
    failing = ControlRecorder("failing", survey="fail")
    ca, _, _ = await _cluster(backend, a, b, failing)

    replies = await ca.survey("echo", b"1", timeout=SHORT)

    assert _answers(replies) == [b.answer("echo", b"1")]
    assert failing.surveys == [("echo", b"1")]
    await ca.broadcast(COMMANDS[0])
    assert await failing.received(1) == [COMMANDS[0]]


@clustered
async def test_a_closed_node_is_not_surveyed(backend: BackendFactory) -> None:
    """After a node closed, surveys go on without it and without raising."""
    a, b = ControlRecorder("a"), ControlRecorder("b")
    ca, cb = await _cluster(backend, a, b)

    await cb.aclose()

    assert await ca.survey("echo", b"1", timeout=SHORT) == []
    assert b.surveys == []
