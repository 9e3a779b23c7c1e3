"""The Controller contract: commands between nodes of one cluster.

Server API calls that act on users (disconnect, unsubscribe, subscribe, refresh) may
reach any node, while the user's sessions live on others. The receiving node applies
the command to its own sessions and hands it to the Controller, which delivers it to
every *other* live node exactly as sent; each node applies it to its own sessions.
Revocations travel the same way (:class:`RevokeCommand`): the node that revokes tells
every other node, which re-checks its own connections at once.

Guarantees:

* ``broadcast`` never delivers a command back to the node that sent it.
* Delivery is at-most-once: a node that is down when a command is sent never gets it.
* ``nodes`` lists every live node other than this one, with its last reported info;
  a node that stops reporting drops out within a few seconds. A node that has
  started is listed by the others at once, and lists them a moment later (once they
  answered its announcement).
* ``survey`` asks every other live node one question and returns the answers that
  arrive within the timeout, at most one per node, never this node's own. A node that
  does not answer in time is left out (the caller decides whether that is an error);
  a survey never raises because some node is slow or gone.

:class:`parsec.engine.cluster.Cluster` keeps these guarantees once, for every backend,
on top of a :class:`ControlTransport`: all a backend provides is a way to send bytes to
every node or to one node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import msgspec

from parsec.engine.types import EMPTY_RAW

__all__ = [
    "ControlCommand",
    "ControlEventHandler",
    "ControlTransport",
    "Controller",
    "DisconnectCommand",
    "NodeInfo",
    "Receiver",
    "RefreshCommand",
    "RevokeCommand",
    "SubscribeCommand",
    "SurveyReply",
    "UnsubscribeCommand",
]


class NodeInfo(msgspec.Struct, omit_defaults=True):
    """One node's statistics, as the server API ``info`` method reports them."""

    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int = 0


class DisconnectCommand(msgspec.Struct, tag="disconnect"):
    user: str
    code: int
    reason: str
    client: str = ""
    session: str = ""
    whitelist: list[str] = []


class UnsubscribeCommand(msgspec.Struct, tag="unsubscribe"):
    user: str
    channel: str
    client: str = ""
    session: str = ""


class SubscribeCommand(msgspec.Struct, tag="subscribe"):
    user: str
    channel: str
    client: str = ""
    session: str = ""
    info: msgspec.Raw = EMPTY_RAW
    data: msgspec.Raw = EMPTY_RAW
    expire_at: int = 0
    recover_offset: int = 0
    recover_epoch: str = ""
    recover: bool = False


class RefreshCommand(msgspec.Struct, tag="refresh"):
    user: str
    client: str = ""
    session: str = ""
    expired: bool = False
    expire_at: int = 0
    info: msgspec.Raw = EMPTY_RAW


class RevokeCommand(msgspec.Struct, tag="revoke"):
    """Revocations one node made, for the others: entry key → ``(level, until)`` in the
    form of ``parsec.auth.revocation`` (the engine does not read them)."""

    entries: dict[str, tuple[int, int]]


ControlCommand = (
    DisconnectCommand | UnsubscribeCommand | SubscribeCommand | RefreshCommand | RevokeCommand
)


class SurveyReply(msgspec.Struct):
    """One node's answer to a survey: its uid and the answer's bytes."""

    node: str
    data: bytes


class ControlEventHandler(Protocol):
    """What a Node implements to receive commands from other nodes."""

    async def handle_control(self, command: ControlCommand) -> None:
        """Apply a command sent by another node to this node's sessions."""

    def node_info(self) -> NodeInfo:
        """This node's statistics, for the controller to report to other nodes."""

    async def handle_survey(self, op: str, data: bytes) -> bytes:
        """Answer a survey another node sent (``op`` names the question). Raising
        leaves this node out of the answers."""


@runtime_checkable
class Controller(Protocol):
    async def start(self, handler: ControlEventHandler) -> None:
        """Begin receiving commands and reporting this node. Called once."""

    async def broadcast(self, command: ControlCommand) -> None:
        """Deliver a command to every other live node."""

    async def nodes(self) -> list[NodeInfo]:
        """Every other live node, with its last reported info."""

    async def survey(
        self,
        op: str,
        data: bytes,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109 - bounds the wait for other nodes
    ) -> list[SurveyReply]:
        """Ask every other live node ``op`` with ``data``; the answers that arrive
        within ``timeout`` seconds, one per node at most."""

    async def aclose(self) -> None:
        """Stop. Idempotent."""


Receiver = Callable[[bytes], Awaitable[None]]
"""What a ControlTransport hands each message it receives to."""


class ControlTransport(Protocol):
    """How the nodes of one cluster reach each other: what a backend provides so that
    :class:`parsec.engine.cluster.Cluster` can be its Controller.

    Guarantees:

    * At-most-once: a node that is not listening when a message is sent never gets it
      (the transport may reconnect and listen again by itself).
    * Messages to every node are handed to ``receive`` one at a time, each awaited
      before the next, in the order the transport's server took them: two messages
      sent one after the other (each ``send`` awaited) reach every node in that order,
      whoever sent them. The same holds for the messages to one node, but not between
      the two kinds.
    * ``send`` returns once the server took the message: anything sent after that, by
      any node, reaches each node after it.
    """

    @property
    def listening(self) -> bool:
        """Whether this node receives the messages sent now."""

    async def start(self, node: str, receive: Receiver) -> None:
        """Hand every message for all nodes, and every message for ``node``, to
        ``receive``. Returns once listening, or once the transport's ready timeout has
        passed (then it listens as soon as it can). Called once."""

    async def wait_listening(self) -> None:
        """Return once listening (at once when it is); may wait as long as the
        transport's server is unreachable."""

    async def send(self, data: bytes, *, to: str | None = None) -> None:
        """Send ``data`` to every node, this one included, or to node ``to`` only.
        Raises ParsecClientError ``PARSEC_BROKER_NOT_READY`` when the server cannot be
        reached, ``PARSEC_BROKER_INTERNAL`` when it refuses the message."""

    async def aclose(self) -> None:
        """Stop listening and release what the transport holds. Idempotent."""
