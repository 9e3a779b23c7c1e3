"""What travels on NATS subjects, as msgspec JSON.

On a channel's subject each message is a JSON array whose first element names its
kind, as on the Redis broker's pub/sub channels (without history there is no offset
or epoch to carry):

* ``["p", {publication}]``: a publication;
* ``["j", {client info}]`` and ``["l", {client info}]``: a join and a leave.

Between controllers: :class:`Command` on the control subject, :class:`Report` on the
nodes subject, :class:`Question` on the survey subject and :class:`Answer` to a
survey's reply inbox. JSON, not msgpack: a publication's ``data`` and a client's
``conn_info`` / ``chan_info`` are raw JSON (``msgspec.Raw``) and are embedded as
they are.
"""

from __future__ import annotations

import msgspec

from parsec.engine.controller import ControlCommand, NodeInfo
from parsec.engine.types import ClientInfo, Publication

__all__ = [
    "Answer",
    "ChannelMessage",
    "Command",
    "Join",
    "Leave",
    "Published",
    "Question",
    "Report",
    "decode_channel_message",
    "encode",
]


class Published(msgspec.Struct, array_like=True, tag="p", gc=False):
    pub: Publication


class Join(msgspec.Struct, array_like=True, tag="j", gc=False):
    info: ClientInfo


class Leave(msgspec.Struct, array_like=True, tag="l", gc=False):
    info: ClientInfo


ChannelMessage = Published | Join | Leave


class Command(msgspec.Struct, omit_defaults=True):
    """A command one node broadcast; a ``marker`` without a command only marks a
    point in the stream (``NatsController.sync``)."""

    node: str
    command: ControlCommand | None = None
    marker: str = ""


class Report(msgspec.Struct, omit_defaults=True):
    """A node's heartbeat. ``ask`` asks every other node to report at once (a node
    that just started); ``leaving`` says the node is stopping."""

    node: str
    info: NodeInfo | None = None
    ask: bool = False
    leaving: bool = False


class Question(msgspec.Struct):
    node: str
    op: str
    data: bytes


class Answer(msgspec.Struct):
    node: str
    data: bytes


_encoder = msgspec.json.Encoder()
_channel_decoder: msgspec.json.Decoder[ChannelMessage] = msgspec.json.Decoder(ChannelMessage)


def encode(message: ChannelMessage | Command | Report | Question | Answer) -> bytes:
    return _encoder.encode(message)


def decode_channel_message(data: bytes) -> ChannelMessage:
    """One message of a channel's subject. Raises msgspec.DecodeError for anything else."""
    return _channel_decoder.decode(data)
