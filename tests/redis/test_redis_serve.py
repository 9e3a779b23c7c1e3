"""``parsec serve --broker redis://…``: an unreachable Redis at start is one error line
and exit 2 (as for NATS); Redis lost after the start degrades the server until it is
back."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cli_runs import Proc
from redis_helpers import RedisServer
from serve_broker import assert_degrades_and_recovers, assert_unreachable_at_start

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")


@pytest.mark.parametrize("args", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_serve_with_redis_unreachable_exits_2(
    spawn: Callable[..., Proc], tmp_path: Path, args: list[str]
) -> None:
    """Nothing listening at the Redis URL: one line naming the URL without its
    password, what failed and what to check; exit 2."""
    port = free_port()
    url = f"redis://parsec:s3cret@127.0.0.1:{port}/0"
    shown = f"redis://parsec:***@127.0.0.1:{port}/0"
    assert_unreachable_at_start(spawn, tmp_path, url, shown, "Redis", *args)


async def test_serve_keeps_running_without_redis_after_the_start(
    spawn: Callable[..., Proc],
    tmp_path: Path,
    redis_server: Callable[[bool], Awaitable[RedisServer]],
) -> None:
    """Stopping Redis under a running server turns /healthz to 503; it is 200 again
    once Redis is back, with the same process."""
    server = await redis_server(False)
    prefix = f"parsec-test-{uuid.uuid4().hex[:12]}"
    await assert_degrades_and_recovers(spawn, tmp_path, server, server.url, prefix)
