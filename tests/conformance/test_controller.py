"""Controller conformance: the guarantees stated in ``parsec.engine.controller``."""

from __future__ import annotations

import msgspec
import pytest

from parsec.engine.controller import (
    ControlCommand,
    Controller,
    DisconnectCommand,
    RefreshCommand,
    SubscribeCommand,
    UnsubscribeCommand,
)

from .factories import BackendFactory
from .recorders import ControlRecorder

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
