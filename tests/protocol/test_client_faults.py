"""Problems clients cause are counted by reason and logged within a budget, never as
errors: a client cannot flood the log (parsec.engine.faults)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from parsec.engine import auth_log, faults

from .harness import Server

CLIENTS_LOGGER = "parsec.clients"


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The INFO lines of the client-problem logger."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == CLIENTS_LOGGER and r.levelno == logging.INFO
    ]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every WARNING-or-worse line, whatever the logger, but the ``auth_failure`` lines
    (:mod:`parsec.engine.auth_log`: WARNING, within their own budget)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.getMessage() != "auth_failure"
    ]


def auth_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The WARNING ``auth_failure`` lines."""
    return [
        r
        for r in caplog.records
        if r.getMessage() == "auth_failure" and r.levelno >= logging.WARNING
    ]


def counts(server: Server) -> dict[str, int]:
    return dict(server.parsec.node.client_faults.counts)


def only(reason: str, n: int) -> dict[str, int]:
    """Counts with ``n`` for ``reason`` and 0 for every other reason."""
    return {r: (n if r == reason else 0) for r in faults.REASONS}


async def test_a_thousand_malformed_frames_stay_within_the_node_budget(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 malformed frames (each closes its connection with 3501, so they come over
    1,000 connections): at most the node's budget of INFO lines, no warning or error,
    and the counter says 1,000."""
    caplog.set_level(logging.INFO)
    started = time.monotonic()

    async def one(i: int) -> None:
        client = await server.open()
        await client.ws.send(f'{{"id": {i}, "connect": ')
        assert (await client.closed())[0] == 3501
        await client.aclose()

    for batch in range(0, 1000, 50):
        await asyncio.gather(*(one(i) for i in range(batch, batch + 50)))
    elapsed = time.monotonic() - started

    assert counts(server) == only(faults.MALFORMED_COMMAND, 1000)
    lines = info_lines(caplog)
    assert 1 <= len(lines) <= faults.NODE_BURST + 1 + elapsed * faults.NODE_LINES_PER_SECOND
    assert all(line.startswith("malformed command from client") for line in lines)
    assert error_lines(caplog) == []


async def test_a_thousand_problems_on_one_connection_log_its_budget(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 subscribes with invalid tokens on one connection (each refused with 103,
    the connection stays): at most the connection's budget of INFO lines, the rest at
    DEBUG, and the counter says 1,000."""
    caplog.set_level(logging.DEBUG, logger=CLIENTS_LOGGER)
    client = await server.client()
    for batch in range(10):
        commands = [
            {"id": 100 * batch + i + 2, "subscribe": {"channel": "locked:x", "token": "bad"}}
            for i in range(100)
        ]
        await client.send(*commands)
        for command in commands:
            reply = await client.reply(command["id"])  # type: ignore[arg-type]
            assert reply["error"]["code"] == 103

    assert counts(server) == only(faults.INVALID_TOKEN, 1000)
    assert len(info_lines(caplog)) == faults.LINES_PER_CONNECTION
    debug = [r for r in caplog.records if r.name == CLIENTS_LOGGER and r.levelno == logging.DEBUG]
    assert len(debug) == 1000 - faults.LINES_PER_CONNECTION
    assert error_lines(caplog) == []
    assert 1 <= len(auth_failures(caplog)) <= auth_log.BURST + 1  # + 1: the bucket refills
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:still-open"})


async def test_one_connection_sending_a_thousand_malformed_frames_is_read_once(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The first malformed frame closes the connection (3501); the 999 behind it are
    never read, so they are neither counted nor logged."""
    caplog.set_level(logging.INFO)
    client = await server.open()
    for _ in range(1000):
        await client.ws.send("{not json")
    assert (await client.closed())[0] == 3501

    assert counts(server) == only(faults.MALFORMED_COMMAND, 1)
    assert len(info_lines(caplog)) == 1
    assert error_lines(caplog) == []


@pytest.mark.parametrize(
    ("commands", "why"),
    [
        ([{"id": 1, "subscribe": {"channel": "chat:x"}}], "subscribe before connect"),
        ([{"id": 1, "connect": {}}], "connect without a token"),
        ([{"id": 1, "frobnicate": {}}], "empty or unknown command"),
        ([{"id": 2**32, "connect": {}}], "out of range"),
        ([{"id": 0, "connect": {}}], "connect command without an id"),
        ([{}], "pong without a ping"),
    ],
)
async def test_protocol_violations_are_counted_and_say_why(
    server: Server,
    caplog: pytest.LogCaptureFixture,
    commands: list[dict[str, object]],
    why: str,
) -> None:
    """Well-formed commands the protocol does not allow close with 3501; the INFO line
    says what was wrong, the counter counts it."""
    caplog.set_level(logging.INFO)
    client = await server.open()
    await client.send(*commands)
    assert (await client.closed())[0] == 3501

    assert counts(server) == only(faults.PROTOCOL_VIOLATION, 1)
    [line] = info_lines(caplog)
    assert why in line
    assert error_lines(caplog) == []


async def test_a_second_connect_is_a_violation(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """connect on a connected session closes with 3501 and is counted."""
    caplog.set_level(logging.INFO)
    client = await server.client()
    await client.send({"id": 9, "connect": {"token": server.token()}})
    assert (await client.closed())[0] == 3501
    assert counts(server) == only(faults.PROTOCOL_VIOLATION, 1)
    assert "second connect" in info_lines(caplog)[0]


async def test_an_oversized_frame_is_counted_once_and_is_no_error(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A message over max_frame_size closes with 1009, counted once as frame_too_big,
    logged at INFO (it used to be an ERROR line on the native transport)."""
    caplog.set_level(logging.INFO)
    limit = server.parsec.options.server.max_frame_size
    for _ in range(3):
        client = await server.open()
        await client.ws.send(json.dumps({"id": 1, "connect": {"token": "x" * limit}}))
        assert (await client.closed())[0] == 1009

    assert counts(server) == only(faults.FRAME_TOO_BIG, 3)
    assert len(info_lines(caplog)) == 3
    assert error_lines(caplog) == []


async def test_invalid_connection_tokens_are_counted(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A connect with a token that does not verify closes with 3500 and is counted."""
    caplog.set_level(logging.INFO)
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": "not-a-jwt"}})
    assert (await client.closed())[0] == 3500
    assert counts(server) == only(faults.INVALID_TOKEN, 1)
    assert error_lines(caplog) == []
    assert [r.__dict__["reason"] for r in auth_failures(caplog)] == ["malformed"]
