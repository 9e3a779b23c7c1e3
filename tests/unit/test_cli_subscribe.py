"""`parsec subscribe` against real `parsec serve` processes that restart, disconnect it
and let its token expire: what the user sees on stdout, on stderr and as exit code.

The protocol-level cases (which codes reconnect, what the resubscribe carries) are in
test_client_follow.py; first-connect failures and flags in test_cli.py.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from parsec_cli import CliProcess, ParsecServe
from redis_keys import REDIS_URL, scratch_prefix

from parsec.auth.keyring import KeyRing
from parsec.auth.tokens import TokenIssuer

CHANNEL = "feed:news"
FEED = """
[client]
expired_close_delay = "1s"

[[namespaces]]
name = "feed"
history_size = 100
history_ttl = "300s"
force_recovery = true
allow_subscribe_for_client = true
"""


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    with scratch_prefix() as prefix:
        yield prefix


@pytest.fixture
async def servers() -> AsyncIterator[list[ParsecServe]]:
    """Servers the test appends here are stopped after it."""
    running: list[ParsecServe] = []
    yield running
    for server in running:
        await server.stop()


@pytest.fixture
async def clis() -> AsyncIterator[list[CliProcess]]:
    """CLI processes the test appends here are killed after it, if still running."""
    started: list[CliProcess] = []
    yield started
    for process in started:
        await process.kill()


async def serve(servers: list[ParsecServe], workdir: Path, config: str = FEED) -> ParsecServe:
    server = ParsecServe(workdir, config)
    servers.append(server)
    await server.start()
    return server


async def subscribe(
    clis: list[CliProcess], server: ParsecServe, *args: str, sub: str = "alice"
) -> CliProcess:
    """`parsec subscribe CHANNEL` against ``server``, subscribed once it returns; by
    default with a token minted for ``sub`` from the server's state directory."""
    credentials = args or ("--state-dir", str(server.state_dir), "--sub", sub)
    process = await CliProcess.start(
        "subscribe", CHANNEL, "--server", server.url, *credentials, cwd=server.workdir
    )
    clis.append(process)
    await process.wait_err(f"subscribed to {CHANNEL}")
    return process


async def publish(server: ParsecServe, *numbers: int) -> None:
    for n in numbers:
        await server.api("publish", {"channel": CHANNEL, "data": {"n": n}})


def printed(process: CliProcess) -> list[dict[str, Any]]:
    """stdout as the NDJSON it must be."""
    return [json.loads(line) for line in process.out]


def numbers(process: CliProcess) -> list[int]:
    return [line["data"]["n"] for line in printed(process)]


def redis_broker(prefix: str) -> str:
    return f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'


async def test_a_restart_on_redis_loses_nothing(
    tmp_path: Path, redis_prefix: str, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """The server restarts (SIGTERM, same port, state and Redis prefix); what was
    published meanwhile (through another node) is printed once, in order, after the
    reconnect, and stderr says what happened."""
    config = FEED + redis_broker(redis_prefix)
    node = await serve(servers, tmp_path / "node", config)
    other = await serve(servers, tmp_path / "other", config)
    sub = await subscribe(clis, node)
    await publish(node, 1, 2, 3)
    await sub.wait_out(3)

    await node.stop()
    await sub.wait_err("reconnecting in")
    await publish(other, 4, 5)  # the subscriber is away: its server is down
    await node.start()
    await sub.wait_err("recovered 2 publications made while disconnected")
    await publish(node, 6)
    await sub.wait_out(6)
    assert await sub.stop() == 0

    lines = printed(sub)
    assert numbers(sub) == [1, 2, 3, 4, 5, 6]
    assert [line["offset"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert len({line["epoch"] for line in lines}) == 1
    assert any("disconnected: 3001 shutdown" in line for line in sub.err)
    assert any(line.startswith(f"resubscribed to {CHANNEL}") for line in sub.err)
    assert not any("warning" in line for line in sub.err)


async def test_a_restart_on_the_memory_broker_says_it_could_not_recover(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """After a restart the memory broker's history is gone (a new epoch): the
    subscriber says it could not recover, then prints the new publications."""
    node = await serve(servers, tmp_path / "node")
    sub = await subscribe(clis, node)
    await publish(node, 1, 2, 3)
    await sub.wait_out(3)

    await node.stop()
    await sub.wait_err("reconnecting in")
    await node.start()
    await sub.wait_err("could not recover")
    await publish(node, 4, 5)
    await sub.wait_out(5)
    assert await sub.stop() == 0

    lines = printed(sub)
    assert numbers(sub) == [1, 2, 3, 4, 5]
    assert [line["offset"] for line in lines] == [1, 2, 3, 1, 2]
    old, new = lines[0]["epoch"], lines[3]["epoch"]
    assert old != new
    assert {line["epoch"] for line in lines} == {old, new}
    warning = next(line for line in sub.err if "could not recover" in line)
    assert f"the stream was reset (epoch {old}, now {new})" in warning


async def test_a_reconnect_code_from_the_server_api_reconnects(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """A server API disconnect with a code in 4000-4499 makes the subscriber come
    back; publications go on without a gap."""
    node = await serve(servers, tmp_path / "node")
    sub = await subscribe(clis, node)
    await publish(node, 1)
    await sub.wait_out(1)
    disconnect = {"code": 4001, "reason": "maintenance"}
    await node.api("disconnect", {"user": "alice", "disconnect": disconnect})
    await sub.wait_err("recovered 0 publications")
    await publish(node, 2)
    await sub.wait_out(2)
    assert await sub.stop() == 0
    assert numbers(sub) == [1, 2]
    assert any("reconnecting in" in line and "4001 maintenance" in line for line in sub.err)


async def test_a_terminal_disconnect_exits_1_with_one_line(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """The server API's default disconnect (3503, terminal) ends the command with exit
    code 1 and a one-line message; it does not reconnect."""
    node = await serve(servers, tmp_path / "node")
    sub = await subscribe(clis, node)
    await publish(node, 1)
    await sub.wait_out(1)
    await node.api("disconnect", {"user": "alice"})
    assert await sub.exit_code() == 1
    assert sub.err[-1] == "parsec: error: disconnected: 3503 force disconnect"
    assert not any("reconnecting" in line or "Traceback" in line for line in sub.err)
    assert numbers(sub) == [1]


async def test_a_server_unsubscribe_exits_1(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """The server API's unsubscribe (2000) ends the command with exit code 1."""
    node = await serve(servers, tmp_path / "node")
    sub = await subscribe(clis, node)
    await node.api("unsubscribe", {"user": "alice", "channel": CHANNEL})
    assert await sub.exit_code() == 1
    assert sub.err[-1] == f"parsec: error: unsubscribed from {CHANNEL}: 2000 server unsubscribe"


async def test_an_expired_token_exits_instead_of_reconnecting_forever(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """A --token that expires: the server closes the connection (3005), the reconnect
    is refused with 109, and the command exits 1 saying to pass a fresh token."""
    node = await serve(servers, tmp_path / "node")
    token = TokenIssuer(KeyRing.open(node.state_dir)).connection_token("alice", ttl=8)
    sub = await subscribe(clis, node, "--token", token)
    assert await sub.exit_code() == 1
    assert sub.err[-1] == (
        "parsec: error: the connection token has expired (109: token expired); "
        "pass a fresh one with --token"
    )
    reconnects = [line for line in sub.err if line.startswith("reconnecting in")]
    assert len(reconnects) == 1
    assert "3005 connection expired" in reconnects[0]


async def test_ctrl_c_while_waiting_to_reconnect_exits_0(
    tmp_path: Path, servers: list[ParsecServe], clis: list[CliProcess]
) -> None:
    """With the server gone, Ctrl-C between reconnect attempts exits 0 at once."""
    node = await serve(servers, tmp_path / "node")
    sub = await subscribe(clis, node)
    await node.stop()
    await sub.wait_for(lambda: sum("reconnecting in" in line for line in sub.err) >= 2)
    assert await sub.stop(signal.SIGINT) == 0
    assert not any("Traceback" in line or "parsec: error" in line for line in sub.err)
    assert any("cannot connect to" in line for line in sub.err)
