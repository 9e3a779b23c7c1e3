"""The request and result messages of the Centrifugo server API, as msgspec Structs.

Shaped as Centrifugo v5/v6 shapes them (centrifuge-protocol.md §5): every request field
is optional with Centrifugo's default, unknown fields are ignored, and ``data`` / ``info``
stay raw JSON (:class:`msgspec.Raw`) so a payload is never decoded on the way through.
The results the engine's client protocol shares (presence, history) are its Structs
(:mod:`parsec.engine.protocol`).
"""

from __future__ import annotations

import msgspec

from parsec.engine.types import EMPTY_RAW

__all__ = [
    "BatchReq",
    "BatchRes",
    "BroadcastReq",
    "ChannelInfo",
    "ChannelReq",
    "ChannelsReq",
    "DisconnectBody",
    "DisconnectReq",
    "HistoryReq",
    "InfoReq",
    "InvalidateUserTokensReq",
    "LegacyCommand",
    "Position",
    "PublicationReq",
    "PublishReq",
    "PublishRes",
    "RefreshReq",
    "Req",
    "RevokeTokenReq",
    "SubscribeReq",
    "UnsubscribeReq",
]


class Req(msgspec.Struct, forbid_unknown_fields=False):
    """A request: unknown fields are ignored."""


class Position(Req):
    offset: int = 0
    epoch: str = ""


class PublicationReq(Req):
    """What publish and broadcast share: the payload and how it is kept."""

    data: msgspec.Raw = EMPTY_RAW
    b64data: str = ""
    skip_history: bool = False
    tags: dict[str, str] | None = None
    idempotency_key: str = ""


class PublishReq(PublicationReq):
    channel: str = ""


class BroadcastReq(PublicationReq):
    channels: list[str] = []


class SubscribeReq(Req):
    user: str = ""
    channel: str = ""
    info: msgspec.Raw = EMPTY_RAW
    b64info: str = ""
    client: str = ""
    session: str = ""
    data: msgspec.Raw = EMPTY_RAW
    b64data: str = ""
    recover_since: Position | None = None
    expire_at: int = 0


class UnsubscribeReq(Req):
    user: str = ""
    channel: str = ""
    client: str = ""
    session: str = ""


class DisconnectBody(Req):
    code: int = 3503
    reason: str = "force disconnect"


class DisconnectReq(Req):
    user: str = ""
    client: str = ""
    session: str = ""
    whitelist: list[str] = []
    disconnect: DisconnectBody | None = None


class ChannelReq(Req):
    channel: str = ""


class HistoryReq(Req):
    channel: str = ""
    limit: int = 0
    since: Position | None = None
    reverse: bool = False


class ChannelsReq(Req):
    pattern: str = ""


class InfoReq(Req):
    pass


class RefreshReq(Req):
    user: str = ""
    client: str = ""
    session: str = ""
    expired: bool = False
    expire_at: int = 0
    info: msgspec.Raw = EMPTY_RAW


class RevokeTokenReq(Req):
    uid: str = ""
    expire_at: int = 0


class InvalidateUserTokensReq(Req):
    user: str = ""
    issued_before: int = 0
    expire_at: int = 0
    channel: str = ""


class BatchReq(Req):
    commands: list[dict[str, msgspec.Raw]] = []
    parallel: bool = False


class PublishRes(msgspec.Struct, omit_defaults=True):
    offset: int = 0
    epoch: str = ""


class ChannelInfo(msgspec.Struct):
    num_clients: int


class BatchRes(msgspec.Struct):
    replies: list[msgspec.Raw]


class LegacyCommand(msgspec.Struct):
    method: str
    params: msgspec.Raw = EMPTY_RAW
