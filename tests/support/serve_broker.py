"""What ``parsec serve`` does with its broker, checked the same way for Redis
(tests/redis/test_redis_serve.py) and NATS (tests/nats/test_nats_serve.py): an
unreachable broker at start is one error line and exit 2; a broker lost after the
start leaves the server running, degraded (``/healthz`` 503), until it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from cli_runs import Proc, assert_one_line_error
from server_processes import ServerProcess

from parsec.testing import free_port

__all__ = ["HEALTH_WAIT", "assert_degrades_and_recovers", "assert_unreachable_at_start"]

HEALTH_WAIT = 30.0
"""Seconds a test waits for /healthz to change."""
START_BOUND = 20.0
"""Seconds an unreachable broker may take to end ``parsec serve``: the check's own
bound (5 s) and the interpreter's start, with room for a loaded machine."""


def assert_unreachable_at_start(
    spawn: Callable[..., Proc], cwd: Path, url: str, shown: str, kind: str, *args: str
) -> None:
    """``parsec serve --broker url ARGS`` exits 2 within START_BOUND seconds with one
    line naming the URL as ``shown`` (no password), what failed and what to check."""
    proc = spawn("serve", "--broker", url, "--addr", f"127.0.0.1:{free_port()}", *args, cwd=cwd)
    code, stderr = proc.finish(timeout=START_BOUND)
    assert code == 2, stderr
    line = assert_one_line_error(
        stderr,
        f"cannot reach the broker at {shown}: connection refused",
        f"check that {kind} is running there",
        "--broker, PARSEC_BROKER_URL or [broker] url",
    )
    assert "s3cret" not in line


async def assert_degrades_and_recovers(
    spawn: Callable[..., Proc], cwd: Path, backend: ServerProcess, url: str, prefix: str
) -> None:
    """A ``parsec serve`` on ``backend`` (running, at ``url``) keeps running when the
    backend stops: /healthz answers 503, then 200 again once it is back."""
    addr = f"127.0.0.1:{free_port()}"
    env = {"PARSEC_BROKER_KEY_PREFIX": prefix}
    proc = spawn("serve", "--broker", url, "--addr", addr, cwd=cwd, env=env)
    await asyncio.to_thread(proc.wait_for, "err", "parsec listening on")
    health = f"http://{addr}/healthz"
    await _until_health(health, 200)
    await backend.stop()
    await _until_health(health, 503)
    await backend.start()
    await _until_health(health, 200)
    assert proc.popen.poll() is None


async def _until_health(url: str, status: int) -> None:
    """Poll /healthz (an HTTP endpoint: there is no event to await) until ``status``."""
    async with httpx.AsyncClient() as http, asyncio.timeout(HEALTH_WAIT):
        while True:
            if (await http.get(url)).status_code == status:
                return
            await asyncio.sleep(0.1)
