"""``parsec serve --broker nats://…``: an unreachable NATS at start is one error line
and exit 2 (as for Redis); NATS lost after the start degrades the server until it is
back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cli_runs import Proc
from nats_helpers import StartServer, private_servers, unique_prefix
from serve_broker import assert_degrades_and_recovers, assert_unreachable_at_start

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")


@pytest.fixture
async def nats_server() -> AsyncIterator[StartServer]:
    """Private nats-servers, killed after the test."""
    async with private_servers() as start:
        yield start


@pytest.mark.parametrize("args", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_serve_with_nats_unreachable_exits_2(
    spawn: Callable[..., Proc], tmp_path: Path, args: list[str]
) -> None:
    """Nothing listening at the NATS URL: one line naming the URL without its
    password, what failed and what to check; exit 2."""
    port = free_port()
    url, shown = f"nats://parsec:s3cret@127.0.0.1:{port}", f"nats://***@127.0.0.1:{port}"
    assert_unreachable_at_start(spawn, tmp_path, url, shown, "NATS", *args)


async def test_serve_keeps_running_without_nats_after_the_start(
    spawn: Callable[..., Proc], tmp_path: Path, nats_server: StartServer
) -> None:
    """Killing NATS under a running server turns /healthz to 503; it is 200 again once
    NATS is back, with the same process."""
    server = await nats_server()
    await assert_degrades_and_recovers(spawn, tmp_path, server, server.url, unique_prefix())
