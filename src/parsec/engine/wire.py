"""What Parsec nodes send each other, on every backend: one wire format, msgspec JSON.

**On a channel's pub/sub channel or subject** (the Broker's fan-out), each message is a
JSON array whose first element names its kind:

* ``["p", offset, "epoch", {publication}]``: a publication (offset 0 and epoch ""
  when the broker keeps no history). The Redis broker's ``publish.lua`` writes it
  around the publication's JSON (:func:`publication_json`);
* ``["j", {client info}]`` and ``["l", {client info}]``: a join and a leave.

**On the control channels** (the :class:`~parsec.engine.cluster.Cluster`), each
message is one :class:`Envelope` from one node: a command, a node report, a survey
question or answer, or a marker.

JSON, not msgpack: a publication's ``data`` and a client's ``conn_info`` /
``chan_info`` are raw JSON (``msgspec.Raw``) and are embedded as they are. Nodes of
one Parsec version understand each other; nothing here is promised across versions.
"""

from __future__ import annotations

import msgspec

from parsec.engine.controller import ControlCommand, NodeInfo
from parsec.engine.types import ClientInfo, Publication

__all__ = [
    "Answer",
    "ChannelMessage",
    "Envelope",
    "Join",
    "Leave",
    "Published",
    "Question",
    "Report",
    "decode_channel_message",
    "decode_envelope",
    "encode",
    "publication_json",
]


# --- channel messages (the broker's fan-out) --------------------------------------


class Published(msgspec.Struct, array_like=True, tag="p", gc=False):
    """A publication; ``offset`` and ``epoch`` are its stream position (0 and "" when
    the broker keeps no history)."""

    offset: int
    epoch: str
    pub: Publication


class Join(msgspec.Struct, array_like=True, tag="j", gc=False):
    info: ClientInfo


class Leave(msgspec.Struct, array_like=True, tag="l", gc=False):
    info: ClientInfo


ChannelMessage = Published | Join | Leave


# --- control messages (the cluster) -----------------------------------------------


class Report(msgspec.Struct, omit_defaults=True):
    """A node's heartbeat with its statistics. ``ask`` asks every other node to report
    at once (a node that has just started); ``leaving`` says the node is stopping."""

    info: NodeInfo | None = None
    ask: bool = False
    leaving: bool = False


class Question(msgspec.Struct):
    """A survey: ``op`` names the question; answerers give up after ``timeout`` s."""

    id: str
    op: str
    data: bytes
    timeout: float


class Answer(msgspec.Struct):
    """One node's answer to the survey ``id``, sent to the asking node only."""

    id: str
    data: bytes


class Envelope(msgspec.Struct, omit_defaults=True):
    """What travels between controllers: from ``node``, one of a command, a report, a
    question or an answer; or only a ``marker``, a point in the stream the sender
    waits to see come back (``Cluster.sync``)."""

    node: str
    command: ControlCommand | None = None
    report: Report | None = None
    question: Question | None = None
    answer: Answer | None = None
    marker: str = ""


_encoder = msgspec.json.Encoder()
_channel_decoder: msgspec.json.Decoder[ChannelMessage] = msgspec.json.Decoder(ChannelMessage)
_envelope_decoder = msgspec.json.Decoder(Envelope)


def encode(message: ChannelMessage | Envelope) -> bytes:
    return _encoder.encode(message)


def publication_json(pub: Publication) -> bytes:
    """The publication's JSON without its offset, as history entries hold it."""
    if pub.offset:
        pub = msgspec.structs.replace(pub, offset=0)
    return _encoder.encode(pub)


def decode_channel_message(data: bytes) -> ChannelMessage:
    """One message of a channel. Raises msgspec.DecodeError for anything else."""
    return _channel_decoder.decode(data)


def decode_envelope(data: bytes) -> Envelope:
    """One control message. Raises msgspec.DecodeError for anything else."""
    return _envelope_decoder.decode(data)
