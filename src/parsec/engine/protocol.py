"""The client protocol v2 JSON codec.

A WebSocket frame carries one or more messages joined by ``\\n``. Inbound messages are
commands, outbound ones are replies and pushes. Decoding is strict about shape (a
command with a wrongly typed field is malformed) and lenient about unknown fields
(newer SDKs send fields this server ignores).

Encoding never puts a raw newline inside one message: JSON strings escape newlines,
and raw payloads (``data``, ``info``) are compacted before they are stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Final

import msgspec

from parsec.engine.types import EMPTY_RAW, ClientInfo, Publication

__all__ = [
    "METHODS",
    "Command",
    "ConnectResult",
    "MalformedCommand",
    "SubscribeResult",
    "compact_json",
    "decode_frame",
    "encode",
    "encode_error",
    "encode_push",
    "encode_reply",
]


Offset = Annotated[int, msgspec.Meta(ge=0)]
"""A uint64 stream offset: negative values make the command malformed."""


class MalformedCommand(ValueError):
    """A message that is not a valid command (bad JSON or a wrongly typed field)."""


class _Req(msgspec.Struct, omit_defaults=True):
    pass


class StreamPositionRequest(_Req):
    offset: Offset = 0
    epoch: str = ""


class SubscribeRequest(_Req):
    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: Offset = 0
    data: msgspec.Raw = EMPTY_RAW
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    flag: int = 0


class ConnectRequest(_Req):
    token: str = ""
    data: msgspec.Raw = EMPTY_RAW
    subs: dict[str, SubscribeRequest] | None = None
    name: str = ""
    version: str = ""
    headers: dict[str, str] | None = None


class ChannelRequest(_Req):
    channel: str = ""


class PublishRequest(_Req):
    channel: str = ""
    data: msgspec.Raw = EMPTY_RAW


class HistoryRequest(_Req):
    channel: str = ""
    limit: int = 0
    since: StreamPositionRequest | None = None
    reverse: bool = False


class SendRequest(_Req):
    data: msgspec.Raw = EMPTY_RAW


class RPCRequest(_Req):
    method: str = ""
    data: msgspec.Raw = EMPTY_RAW


class RefreshRequest(_Req):
    token: str = ""


class SubRefreshRequest(_Req):
    channel: str = ""
    token: str = ""


class Command(msgspec.Struct):
    """One client command. Exactly one request field is set; ``method`` names it."""

    id: int = 0
    connect: ConnectRequest | None = None
    subscribe: SubscribeRequest | None = None
    unsubscribe: ChannelRequest | None = None
    publish: PublishRequest | None = None
    presence: ChannelRequest | None = None
    presence_stats: ChannelRequest | None = None
    history: HistoryRequest | None = None
    ping: dict[str, object] | None = None
    send: SendRequest | None = None
    rpc: RPCRequest | None = None
    refresh: RefreshRequest | None = None
    sub_refresh: SubRefreshRequest | None = None

    @property
    def method(self) -> str:
        """The request field set on this command, or ``""`` for an empty command
        (a pong when ``id`` is 0)."""
        for name in METHODS:
            if getattr(self, name) is not None:
                return name
        return ""


METHODS: Final = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "ping",
    "send",
    "rpc",
    "refresh",
    "sub_refresh",
)
"""The commands of protocol v2, in the order ``Command.method`` looks for them."""

_command_decoder = msgspec.json.Decoder(Command)
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)


def decode_frame(frame: bytes | str) -> Iterator[Command]:
    """Yield the commands of one frame in order. Blank lines are skipped.

    Raises MalformedCommand at the first message that is not a valid command; the
    commands before it have already been yielded.
    """
    if isinstance(frame, str):
        frame = frame.encode()
    for line in frame.split(b"\n"):
        if not line.strip():
            continue
        try:
            yield _command_decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise MalformedCommand(str(exc)) from None
        except RecursionError:
            raise MalformedCommand("JSON nested too deeply") from None


def compact_json(data: bytes) -> msgspec.Raw:
    """Validate ``data`` as JSON and return it as Raw without raw newlines.

    Raises MalformedCommand if ``data`` is not one JSON value in valid UTF-8 (it goes
    out in WebSocket text frames). A raw newline can only be insignificant whitespace
    in valid JSON, so removing it keeps the value intact.
    """
    try:
        data.decode("utf-8")
        _raw_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedCommand(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise MalformedCommand("invalid JSON: nested too deeply") from None
    if b"\n" in data or b"\r" in data:
        data = data.replace(b"\r", b"").replace(b"\n", b"")
    return msgspec.Raw(data)


# --- results ---------------------------------------------------------------------


class _Res(msgspec.Struct, omit_defaults=True):
    pass


class SubscribeResult(_Res):
    expires: bool = False
    ttl: int = 0
    recoverable: bool = False
    epoch: str = ""
    publications: list[Publication] = []
    recovered: bool = False
    offset: int = 0
    positioned: bool = False
    data: msgspec.Raw = EMPTY_RAW
    was_recovering: bool = False


class ConnectResult(_Res):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0
    data: msgspec.Raw = EMPTY_RAW
    subs: dict[str, SubscribeResult] | None = None
    ping: int = 0
    pong: bool = False
    session: str = ""
    node: str = ""


class RefreshResult(_Res):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0


class SubRefreshResult(_Res):
    expires: bool = False
    ttl: int = 0


class PresenceResult(msgspec.Struct):
    presence: dict[str, ClientInfo]


class PresenceStatsResult(msgspec.Struct):
    num_clients: int
    num_users: int


class HistoryResult(msgspec.Struct):
    publications: list[Publication]
    epoch: str
    offset: int


class RPCResult(_Res):
    data: msgspec.Raw = EMPTY_RAW


class Empty(_Res):
    pass


class JoinLeave(msgspec.Struct):
    info: ClientInfo


class UnsubscribePush(msgspec.Struct):
    code: int
    reason: str


class SubscribePush(_Res):
    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    positioned: bool = False
    data: msgspec.Raw = EMPTY_RAW
    expires: bool = False
    ttl: int = 0


class MessagePush(msgspec.Struct):
    data: msgspec.Raw


class DisconnectPush(msgspec.Struct):
    code: int
    reason: str


# --- encoding --------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
encode = _encoder.encode

PING = b"{}"


def encode_reply(command_id: int, method: str, result: msgspec.Struct) -> bytes:
    """``{"id":N,"<method>":{result}}`` — the result object is always present."""
    return b'{"id":%d,"%s":%s}' % (command_id, method.encode(), encode(result))


def encode_error(command_id: int, code: int, message: str, temporary: bool = False) -> bytes:
    body = {"code": code, "message": message}
    if temporary:
        body["temporary"] = True
    return b'{"id":%d,"error":%s}' % (command_id, encode(body))


def encode_push(channel: str, kind: str, body: msgspec.Struct) -> bytes:
    """``{"push":{"channel":"ch","<kind>":{body}}}``, encoded once per channel."""
    return b'{"push":{"channel":%s,"%s":%s}}' % (encode(channel), kind.encode(), encode(body))
