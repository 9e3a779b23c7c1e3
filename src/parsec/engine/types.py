"""The engine's data types: Publication, ClientInfo, StreamPosition.

They are msgspec Structs so that the codec writes them to the wire as they are: field
names are the protocol's snake_case names, empty optional fields are omitted, and
``data`` / ``conn_info`` / ``chan_info`` are embedded raw JSON, never base64.
"""

from __future__ import annotations

import msgspec

__all__ = ["EMPTY_RAW", "ClientInfo", "Publication", "StreamPosition"]

EMPTY_RAW = msgspec.Raw()
"""The one empty Raw: msgspec omits a Raw field only when it *is* its default object,
so every absent raw payload must be this instance (never a fresh ``msgspec.Raw()``)."""


class ClientInfo(msgspec.Struct, omit_defaults=True, gc=False):
    """Who a client is, as presence, join/leave and client publications report it.

    ``user`` and ``client`` are always on the wire (SDKs require them); ``conn_info``
    comes from the connection token's ``info`` claim and ``chan_info`` from the
    subscription token's ``info`` claim.
    """

    user: str
    client: str
    conn_info: msgspec.Raw = EMPTY_RAW
    chan_info: msgspec.Raw = EMPTY_RAW


class Publication(msgspec.Struct, omit_defaults=True, gc=False):
    """One message published into a channel.

    ``offset`` is set when the channel keeps history: offsets of one channel's stream
    are assigned by the broker, start at 1 and grow by exactly 1 per publication.
    """

    data: msgspec.Raw
    offset: int = 0
    info: ClientInfo | None = None
    tags: dict[str, str] | None = None
    time: int = 0


class StreamPosition(msgspec.Struct, frozen=True, gc=False):
    """A position in a channel's stream: the top ``offset`` and the stream's ``epoch``.

    The epoch names one generation of the stream; when a stream's state is lost (memory
    broker restart, expired meta), the broker starts a new epoch and positions taken in
    the old one can no longer be recovered.
    """

    offset: int = 0
    epoch: str = ""
