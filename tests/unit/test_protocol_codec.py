"""The client protocol JSON codec: decode_frame, compact_json and the encoders."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.engine import protocol
from parsec.engine.protocol import (
    Command,
    MalformedCommand,
    compact_json,
    decode_frame,
    encode_error,
    encode_push,
    encode_reply,
)
from parsec.engine.types import ClientInfo, Publication

# --- strategies ----------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
channels = st.text(max_size=30)
command_ids = st.integers(min_value=0, max_value=2**32 - 1)
blank_lines = st.sampled_from([b"", b" ", b"\t", b"\r", b"  \r"])


@st.composite
def pretty_json(draw: st.DrawFn) -> tuple[object, bytes]:
    """A JSON value and a rendering of it with raw newlines (LF or CRLF) between
    tokens."""
    value = draw(json_values)
    indent = draw(st.integers(min_value=0, max_value=4))
    text = json.dumps(value, indent=indent, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return value, text.encode()


def one_line_json(encoded: bytes) -> Any:
    """Parse ``encoded``, asserting it is one line of valid JSON."""
    assert b"\n" not in encoded
    assert b"\r" not in encoded
    return json.loads(encoded)


def raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(value).encode())


# request bodies by method; each maps to the fields decode_frame must give back
requests = st.one_of(
    st.builds(lambda ch: ("subscribe", {"channel": ch}), channels),
    st.builds(lambda ch: ("unsubscribe", {"channel": ch}), channels),
    st.builds(lambda ch, v: ("publish", {"channel": ch, "data": v}), channels, json_values),
    st.builds(lambda ch: ("presence", {"channel": ch}), channels),
    st.builds(lambda ch: ("presence_stats", {"channel": ch}), channels),
    st.builds(
        lambda ch, n, r: ("history", {"channel": ch, "limit": n, "reverse": r}),
        channels,
        st.integers(min_value=-(2**31), max_value=2**31),
        st.booleans(),
    ),
    st.just(("ping", {})),
    st.builds(lambda v: ("send", {"data": v}), json_values),
    st.builds(lambda m, v: ("rpc", {"method": m, "data": v}), st.text(), json_values),
    st.builds(lambda t: ("refresh", {"token": t}), st.text()),
    st.builds(lambda ch, t: ("sub_refresh", {"channel": ch, "token": t}), channels, st.text()),
    st.builds(lambda t, n: ("connect", {"token": t, "name": n}), st.text(), st.text()),
)


def request_fields(command: Command) -> dict[str, object]:
    """The request of a decoded command as plain JSON values, raw payloads parsed."""
    request = getattr(command, command.method)
    if isinstance(request, dict):
        return request
    fields: dict[str, object] = json.loads(msgspec.json.encode(request))
    return fields


# --- decode_frame --------------------------------------------------------------------


@given(frame=st.binary())
def test_decode_frame_on_any_bytes_yields_commands_or_raises_malformed(frame: bytes) -> None:
    """Arbitrary bytes decode to Commands or raise MalformedCommand, nothing else."""
    try:
        commands = list(decode_frame(frame))
    except MalformedCommand:
        return
    assert all(isinstance(c, Command) for c in commands)


@given(frame=st.text())
def test_decode_frame_on_any_text_yields_commands_or_raises_malformed(frame: str) -> None:
    """Arbitrary text decodes to Commands or raises MalformedCommand, nothing else."""
    try:
        commands = list(decode_frame(frame))
    except MalformedCommand:
        return
    assert all(isinstance(c, Command) for c in commands)


@given(
    commands=st.lists(st.tuples(command_ids, requests), max_size=8),
    blanks=st.lists(st.tuples(st.integers(min_value=0, max_value=16), blank_lines), max_size=8),
    ascii_only=st.booleans(),
)
def test_joined_commands_decode_in_order(
    commands: list[tuple[int, tuple[str, dict[str, object]]]],
    blanks: list[tuple[int, bytes]],
    ascii_only: bool,
) -> None:
    """Newline-joined commands, blank lines anywhere, decode in order with their fields."""
    lines = [
        json.dumps({"id": cid, method: body}, ensure_ascii=ascii_only).encode()
        for cid, (method, body) in commands
    ]
    for where, blank in blanks:
        lines.insert(where % (len(lines) + 1), blank)

    decoded = list(decode_frame(b"\n".join(lines)))

    assert [(c.id, c.method) for c in decoded] == [(cid, m) for cid, (m, _) in commands]
    for command, (_, (_, body)) in zip(decoded, commands, strict=True):
        fields = request_fields(command)
        assert {k: fields.get(k, omitted_value(k, v)) for k, v in body.items()} == body


_NEVER_OMITTED = object()


def omitted_value(key: str, sent: object) -> object:
    """What a field left out of a re-encoded request stood for: the zero of a scalar's
    type. A raw ``data`` payload that was sent is never left out."""
    return _NEVER_OMITTED if key == "data" else type(sent)()


@pytest.mark.parametrize(
    "frame",
    [b"", b"\n", b"\n\n\n", b"  \n\t\n\r\n", "", "\n \n"],
    ids=["empty", "newline", "newlines", "whitespace", "empty-str", "whitespace-str"],
)
def test_blank_frames_decode_to_no_commands(frame: bytes | str) -> None:
    """A frame with only blank lines holds no command."""
    assert list(decode_frame(frame)) == []


def test_text_and_bytes_frames_decode_alike() -> None:
    """A str frame decodes exactly like its UTF-8 bytes."""
    frame = '{"id":1,"publish":{"channel":"ché","data":{"t":"ü\\n"}}}\n{"id":2,"ping":{}}'

    assert list(decode_frame(frame)) == list(decode_frame(frame.encode()))


def test_empty_command_is_a_pong() -> None:
    """``{}`` decodes to a command with id 0 and no method (a pong)."""
    [command] = decode_frame(b"{}")

    assert (command.id, command.method) == (0, "")


def test_unknown_fields_are_ignored() -> None:
    """Fields this server does not know are skipped, at any level."""
    frame = b'{"id":3,"future":[1],"subscribe":{"channel":"a","new_flag":true}}'

    [command] = decode_frame(frame)

    assert command.subscribe is not None
    assert (command.id, command.method, command.subscribe.channel) == (3, "subscribe", "a")


def test_raw_payloads_are_kept_as_sent() -> None:
    """``data`` of publish is the client's JSON, byte for byte."""
    [command] = decode_frame(b'{"id":1,"publish":{"channel":"a","data":{"x": [1, 2]}}}')

    assert command.publish is not None
    assert bytes(command.publish.data) == b'{"x": [1, 2]}'


def test_commands_before_a_malformed_one_are_yielded_first() -> None:
    """decode_frame yields the valid commands before it raises at the bad line."""
    frames = decode_frame(b'{"id":1,"ping":{}}\nnot json\n{"id":3,"ping":{}}')

    assert next(frames).id == 1
    with pytest.raises(MalformedCommand):
        next(frames)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b'{"id":1',
        b"[]",
        b'"ping"',
        b"null",
        b"42",
        b'{"id":"1"}',
        b'{"id":1.5}',
        b'{"id":null}',
        b'{"id":true}',
        b'{"id":1,"subscribe":{"channel":5}}',
        b'{"id":1,"subscribe":[]}',
        b'{"id":1,"subscribe":{"channel":"a","recover":"yes"}}',
        b'{"id":1,"subscribe":{"channel":"a","offset":"10"}}',
        b'{"id":1,"history":{"channel":"a","limit":"10"}}',
        b'{"id":1,"history":{"channel":"a","since":{"offset":1,"epoch":7}}}',
        b'{"id":1,"connect":{"subs":{"ch":5}}}',
        b'{"id":1,"connect":{"headers":{"a":1}}}',
        b'{"id":1,"ping":[]}',
        b'{"id":1,"rpc":{"method":1}}',
        b'{"id":1,"publish":{"channel":"a","data":}}',
        b'{"id":1,"ping":{}} trailing',
        b'{"id":1,"publish":{"channel":"\\ud800"}}',
    ],
)
def test_malformed_lines_raise_malformed_command(line: bytes) -> None:
    """Bad JSON, a non-object or a wrongly typed field raises MalformedCommand."""
    with pytest.raises(MalformedCommand) as caught:
        list(decode_frame(line))

    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":1,"publish":{"channel":"\xff"}}',
        b'{"id":1,"ping":{"\xff":1}}',
        b'{"id":1,"subscribe":{"channel":"\xed\xa0\x80"}}',
    ],
    ids=["typed-field", "object-key", "encoded-surrogate"],
)
def test_invalid_utf8_in_a_string_is_malformed(line: bytes) -> None:
    """Invalid UTF-8 inside a decoded string is MalformedCommand, not a crash."""
    with pytest.raises(MalformedCommand):
        list(decode_frame(line))


@given(
    template=st.sampled_from(
        [
            b'{"id":1,"publish":{"channel":"%s","data":{}}}',
            b'{"id":1,"ping":{"%s":1}}',
            b'{"id":1,"rpc":{"method":"%s"}}',
            b'{"id":1,"connect":{"headers":{"k":"%s"}}}',
        ]
    ),
    text=st.text(),
)
def test_any_text_spliced_into_a_command_decodes_or_is_malformed(
    template: bytes, text: str
) -> None:
    """Any text inside a command's strings gives Commands or MalformedCommand only."""
    try:
        commands = list(decode_frame(template % text.encode()))
    except MalformedCommand:
        return
    assert all(isinstance(c, Command) for c in commands)


def test_deeply_nested_payload_is_malformed() -> None:
    """JSON nested deeper than the decoder allows is MalformedCommand, not a crash."""
    depth = 10_000
    frame = b'{"id":1,"publish":{"channel":"a","data":' + b"[" * depth + b"]" * depth + b"}}"

    with pytest.raises(MalformedCommand):
        list(decode_frame(frame))


# --- compact_json --------------------------------------------------------------------


@given(case=pretty_json())
def test_compact_json_removes_raw_newlines_and_keeps_the_value(
    case: tuple[object, bytes],
) -> None:
    """JSON with raw LF or CRLF between tokens comes back on one line, equal in value."""
    value, data = case

    assert one_line_json(bytes(compact_json(data))) == value


@given(text=st.text())
def test_compact_json_on_any_text_is_equal_json_or_malformed(text: str) -> None:
    """Any UTF-8 input gives an equal one-line JSON value or MalformedCommand."""
    data = text.encode()
    try:
        compacted = bytes(compact_json(data))
    except MalformedCommand:
        return
    assert b"\n" not in compacted
    assert b"\r" not in compacted
    assert msgspec.json.decode(compacted) == msgspec.json.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"{",
        b"{'a': 1}",
        b"[1,]",
        b"1 2",
        b"NaN",
        b'"unterminated',
        b'"a\nb"',
        b'{"a":\n"b\nc"}',
        b"\xff",
    ],
    ids=[
        "empty",
        "blank",
        "open-brace",
        "single-quotes",
        "trailing-comma",
        "two-values",
        "nan",
        "unterminated",
        "newline-in-string",
        "newline-in-nested-string",
        "invalid-byte",
    ],
)
def test_compact_json_rejects_invalid_json(data: bytes) -> None:
    """Anything but exactly one JSON value is MalformedCommand."""
    with pytest.raises(MalformedCommand, match="invalid JSON"):
        compact_json(data)


def test_compact_json_keeps_escaped_newlines_in_strings() -> None:
    """Escaped newlines inside strings are part of the value and stay."""
    compacted = bytes(compact_json(b'{\n  "text": "line 1\\nline 2"\r\n}'))

    assert json.loads(compacted) == {"text": "line 1\nline 2"}


@pytest.mark.parametrize(
    "data", [b'"\xff"', b'{"\xff":1}', b'["\xed\xa0\x80"]'], ids=["string", "key", "surrogate"]
)
def test_compact_json_rejects_invalid_utf8(data: bytes) -> None:
    """JSON text must be UTF-8: invalid bytes inside strings are MalformedCommand."""
    with pytest.raises(MalformedCommand, match="invalid JSON"):
        compact_json(data)


def test_compact_json_rejects_too_deep_nesting() -> None:
    """JSON nested deeper than the decoder allows is MalformedCommand, not a crash."""
    with pytest.raises(MalformedCommand):
        compact_json(b"[" * 10_000 + b"]" * 10_000)


# --- encoders ------------------------------------------------------------------------


@given(
    channel=channels,
    case=pretty_json(),
    offset=st.integers(min_value=0, max_value=2**63),
    user=st.text(),
    client=st.text(),
)
def test_encode_push_of_a_publication_is_one_line_of_json(
    channel: str, case: tuple[object, bytes], offset: int, user: str, client: str
) -> None:
    """A pub push for any channel and payload is one JSON line holding both intact."""
    value, data = case
    pub = Publication(data=compact_json(data), offset=offset, info=ClientInfo(user, client))

    message = one_line_json(encode_push(channel, "pub", pub))

    expected_pub: dict[str, object] = {"data": value, "info": {"user": user, "client": client}}
    if offset:
        expected_pub["offset"] = offset
    assert message == {"push": {"channel": channel, "pub": expected_pub}}


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (
            "join",
            protocol.JoinLeave(ClientInfo("u", "c", conn_info=raw({"n": 1}))),
            {"info": {"user": "u", "client": "c", "conn_info": {"n": 1}}},
        ),
        ("leave", protocol.JoinLeave(ClientInfo("u", "c")), {"info": {"user": "u", "client": "c"}}),
        (
            "unsubscribe",
            protocol.UnsubscribePush(2500, "insufficient state"),
            {"code": 2500, "reason": "insufficient state"},
        ),
        ("message", protocol.MessagePush(raw("hi")), {"data": "hi"}),
        (
            "disconnect",
            protocol.DisconnectPush(3001, "shutdown"),
            {"code": 3001, "reason": "shutdown"},
        ),
        ("subscribe", protocol.SubscribePush(), {}),
    ],
)
def test_encode_push_kinds(kind: str, body: msgspec.Struct, expected: object) -> None:
    """Each push kind is ``{"push":{"channel":…,"<kind>":{…}}}`` with its body's fields."""
    message = one_line_json(encode_push("news", kind, body))

    assert message == {"push": {"channel": "news", kind: expected}}


@given(
    command_id=command_ids,
    method=st.sampled_from(["rpc", "publish", "history"]),
    case=pretty_json(),
    epoch=st.text(),
)
def test_encode_reply_is_one_line_of_json(
    command_id: int, method: str, case: tuple[object, bytes], epoch: str
) -> None:
    """A reply for any id and payload is one JSON line, result under the method name."""
    value, data = case
    payload = compact_json(data)
    result: msgspec.Struct
    if method == "history":
        result = protocol.HistoryResult([Publication(data=payload, offset=1)], epoch, 1)
        expected: object = {
            "publications": [{"data": value, "offset": 1}],
            "epoch": epoch,
            "offset": 1,
        }
    else:
        result, expected = protocol.RPCResult(data=payload), {"data": value}

    message = one_line_json(encode_reply(command_id, method, result))

    assert message == {"id": command_id, method: expected}


def test_encode_reply_always_has_a_result_object() -> None:
    """An empty result is still sent as ``{}`` under the method's name."""
    assert one_line_json(encode_reply(7, "ping", protocol.Empty())) == {"id": 7, "ping": {}}


@given(
    command_id=command_ids,
    code=st.integers(min_value=0, max_value=2**32 - 1),
    message=st.text(),
    temporary=st.booleans(),
)
def test_encode_error_is_one_line_of_json(
    command_id: int, code: int, message: str, temporary: bool
) -> None:
    """An error reply is one JSON line; temporary appears only when true."""
    decoded = one_line_json(encode_error(command_id, code, message, temporary))

    error: dict[str, object] = {"code": code, "message": message}
    if temporary:
        error["temporary"] = True
    assert decoded == {"id": command_id, "error": error}


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":1,"subscribe":{"channel":"c","recover":true,"offset":-1}}',
        b'{"id":1,"history":{"channel":"c","since":{"offset":-5,"epoch":"e"}}}',
    ],
)
def test_negative_offsets_are_malformed(line: bytes) -> None:
    """Offsets are unsigned on the wire: a negative one makes the command malformed."""
    with pytest.raises(MalformedCommand):
        list(decode_frame(line))
