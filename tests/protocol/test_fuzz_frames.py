"""The frame fuzzer: random and mutated frames thrown at a real server over WebSocket.

Hypothesis generates connection scripts — connect first or not, then a few frames:
random bytes, random text, broken JSON, commands with wrong types, huge numbers, deep
nesting, oversized frames, random commands alone or several to a frame — and each
script runs on a fresh connection, ending with a probe command. Whatever was sent:

- the connection either answers the probe or is closed with a valid protocol code
  (1002, 1007 or 1009 for the WebSocket layer, 3000-4999 for the protocol), never
  dropped (1006), never 1011, never left hanging;
- every message the server sends is JSON;
- nothing is logged at ERROR, and client-problem lines stay within their budget;
- afterwards a well-behaved client still connects, subscribes and gets a publication.

The number of examples is bounded (a few seconds per transport). Hypothesis runs in a
worker thread and drives each connection on the session's event loop, where the server
runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from parsec.engine import faults, protocol

from .harness import WAIT, RawClient, Server

MAX_EXAMPLES = 400
PROBE_ID = 4_000_000_001
"""The id of the command every script ends with (random ids stay far from it)."""
VALID_CLOSE_CODES = frozenset({1002, 1007, 1009}) | frozenset(range(3000, 5000))

METHODS = [*protocol.METHODS, "frobnicate", ""]
"""Every command of the protocol, one it does not know, and none at all."""
FIELDS = [
    "channel",
    "token",
    "data",
    "recover",
    "epoch",
    "offset",
    "limit",
    "since",
    "reverse",
    "method",
    "positioned",
    "recoverable",
    "join_leave",
    "flag",
    "subs",
    "name",
    "version",
    "headers",
    "delta",
]
CHANNELS = [
    "chat:room",
    "plain:x",
    "locked:x",
    "opt:x",
    "anon:x",
    "public:app.lobby",
    "private:app.room.r1",
    "$chat:x",
    "nope:x",
    "",
    "chat:\x00",
    "chat:" + "x" * 300,
]
DEEP = 30_000
SPECIAL_FRAMES = [
    "[" * 100_000,
    '{"id":1,"publish":{"channel":"chat:room","data":' + "[" * DEEP + "]" * DEEP + "}}",
    '{"id":1,"rpc":{"method":"m","data":' + "{" * 1000 + "}" * 1000 + "}}",
    '{"id":1e999,"ping":{}}',
    '{"id":99999999999999999999999999,"ping":{}}',
    '{"id":-1,"ping":{}}',
    '{"id":1,"history":{"channel":"chat:room","limit":-1}}',
    '{"id":1,"history":{"channel":"chat:room","limit":1e999}}',
    '{"id":1,"history":{"channel":"chat:room","since":{"offset":-1,"epoch":""}}}',
    '{"id":1,"subscribe":{"channel":"chat:room","recover":true,'
    '"offset":18446744073709551615,"epoch":"x"}}',
    '{"id":1,"subscribe":{"channel":"chat:room","recover":true,'
    '"offset":18446744073709551616,"epoch":"x"}}',
    '{"id":1,"publish":{"channel":"chat:room","data":"\\ud800"}}',
    '{"id":1,"publish":{"channel":"chat:room","data":' + '"' + "y" * 60_000 + '"}}',
    '{"id":1,"connect":{"token":"' + "a" * 60_000 + '"}}',
    '{"id":1,"connect":{"subs":{"chat:room":{"recover":true,"offset":1,"epoch":"e"}}}}',
    "x" * 70_000,
    "\n" * 100,
    "{}\n" * 100,
    '{"id":1,"publish":{"channel":"chat:room","data":{}}}\n' * 200,
    "\ufeff{}",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
command_ids = (
    st.integers(min_value=0, max_value=20)
    | st.sampled_from([2**32 - 1, 2**32, -1, 2**63, 2**64])
    | json_values
)


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A command: a known or unknown method, fields of right or wrong types."""
    body: Any = draw(
        st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4) | json_values
    )
    if isinstance(body, dict) and draw(st.booleans()):
        body["channel"] = draw(st.sampled_from(CHANNELS) | st.text(max_size=20))
    if isinstance(body, dict) and draw(st.booleans()):
        body["data"] = draw(json_values)
    command: dict[str, Any] = {draw(st.sampled_from(METHODS)): body}
    if draw(st.integers(0, 9)):
        command["id"] = draw(command_ids)
    return command


@st.composite
def broken_json(draw: st.DrawFn) -> str:
    """A serialised command with one mutation: cut short, a character removed,
    replaced or inserted."""
    text = json.dumps(draw(commands()))
    at = draw(st.integers(min_value=0, max_value=len(text)))
    junk = draw(st.characters())
    mutate: Callable[[str], str] = draw(
        st.sampled_from(
            [
                lambda t: t[:at],
                lambda t: t[:at] + t[at + 1 :],
                lambda t: t[:at] + junk + t[at + 1 :],
                lambda t: t[:at] + junk + t[at:],
            ]
        )
    )
    return mutate(text)


frames: st.SearchStrategy[str | bytes] = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    commands().map(json.dumps),
    st.lists(commands(), min_size=2, max_size=6).map(lambda cs: "\n".join(map(json.dumps, cs))),
    broken_json(),
    st.sampled_from(SPECIAL_FRAMES),
)


@dataclass
class Script:
    connect_first: bool
    frames: list[str | bytes]


scripts = st.builds(
    Script,
    st.booleans() | st.just(True),  # mostly connected: most commands need a session
    st.lists(frames, min_size=1, max_size=5),
)


async def play(server: Server, script: Script) -> None:
    """Run ``script`` on a fresh connection and check what the server did."""
    client = await server.open()
    try:
        if script.connect_first:
            assert "connect" in await client.connect(server.token("fuzz"))
        try:
            for frame in script.frames:
                await client.ws.send(frame)
            await client.send({"id": PROBE_ID, "ping": {}})
            reply = await client.next(lambda m: m.get("id") == PROBE_ID)
        except ConnectionClosed:
            code = client.ws.close_code
            assert code in VALID_CLOSE_CODES, (code, client.ws.close_reason)
        else:
            assert "ping" in reply or "error" in reply, reply
        assert all(isinstance(message, dict) for message in client.inbox)
    finally:
        await close_quickly(client)


async def close_quickly(client: RawClient) -> None:
    """Close from our side without waiting long for a peer that already left."""
    try:
        async with asyncio.timeout(WAIT):
            await client.ws.close()
    except (TimeoutError, ConnectionClosed):
        pass


@pytest.mark.timeout(120)
async def test_random_frames_never_hurt_the_server(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The server survives every script with a reply or a valid close, logs no ERROR,
    and keeps serving well-behaved clients."""
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(scripts)
    def fuzz(script: Script) -> None:
        asyncio.run_coroutine_threadsafe(play(server, script), loop).result(timeout=4 * WAIT)

    await asyncio.to_thread(fuzz)
    elapsed = time.monotonic() - started

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    client_lines = [
        r for r in caplog.records if r.name == "parsec.clients" and r.levelno == logging.INFO
    ]
    assert len(client_lines) <= faults.NODE_BURST + 1 + elapsed * faults.NODE_LINES_PER_SECOND
    assert sum(server.parsec.node.client_faults.counts.values()) > 0

    alice = await server.client("alice")
    bob = await server.client("bob")
    assert "subscribe" in await alice.call("subscribe", {"channel": "plain:after-fuzz"})
    reply = await bob.call("publish", {"channel": "plain:after-fuzz", "data": {"ok": True}})
    assert reply == {"id": 2, "publish": {}}
    assert (await alice.push("plain:after-fuzz", "pub"))["data"] == {"ok": True}
