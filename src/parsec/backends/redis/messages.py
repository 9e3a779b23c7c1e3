"""What travels on a channel's Redis pub/sub channel, as msgspec JSON.

Each message is a JSON array whose first element names its kind:

* ``["p", offset, "epoch", {publication}]``: a publication (offset 0 and epoch ""
  without history). ``publish.lua`` writes it around the publication's JSON.
* ``["j", {client info}]`` and ``["l", {client info}]``: a join and a leave.

History entries hold the publication's JSON without its offset (the entry id is the
offset). JSON, not msgpack: a publication's ``data`` and a client's ``conn_info`` /
``chan_info`` are raw JSON (``msgspec.Raw``) and are embedded as they are.
"""

from __future__ import annotations

import msgspec

from parsec.engine.types import ClientInfo, Publication

__all__ = ["Join", "Leave", "Message", "Published", "decode", "encode_event", "encode_publication"]


class Published(msgspec.Struct, array_like=True, tag="p", gc=False):
    offset: int
    epoch: str
    pub: Publication


class Join(msgspec.Struct, array_like=True, tag="j", gc=False):
    info: ClientInfo


class Leave(msgspec.Struct, array_like=True, tag="l", gc=False):
    info: ClientInfo


Message = Published | Join | Leave

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)


def encode_publication(pub: Publication) -> bytes:
    """The publication's JSON as history and ``publish.lua`` take it: without offset."""
    if pub.offset:
        pub = msgspec.structs.replace(pub, offset=0)
    return _encoder.encode(pub)


def encode_event(event: Join | Leave) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> Message:
    """One pub/sub message. Raises msgspec.DecodeError for anything else."""
    return _decoder.decode(data)
