"""Test helpers for embedders: boot a real Parsec on a free loopback port.

In a test suite::

    pytest_plugins = ["parsec.testing"]

    async def test_notify(parsec_server):
        token = parsec_server.connection_token("alice")
        ...  # connect an SDK to parsec_server.ws_url, publish through parsec_server.parsec

or, without pytest, ``async with serve_for_tests(options) as server: ...``.
The server is real (uvicorn, the WebSocket endpoint, the server API); only its keyring
lives in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from parsec.facade import Parsec
from parsec.options import Options

__all__ = ["TestServer", "free_port", "parsec_server", "serve_for_tests"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class TestServer:
    """A running Parsec and where to reach it."""

    __test__ = False  # not a pytest test class

    parsec: Parsec
    url: str
    api_key: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/connection/websocket"

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def connection_token(self, user: str, **claims: object) -> str:
        """A connection token signed by the server's active key (see TokenIssuer)."""
        return self.parsec.issuer.connection_token(user, **claims)  # type: ignore[arg-type]

    def subscription_token(self, user: str, channel: str, **claims: object) -> str:
        return self.parsec.issuer.subscription_token(user, channel, **claims)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serve_for_tests(options: Options | None = None) -> AsyncIterator[TestServer]:
    """Run Parsec on a free loopback port until the block exits.

    Unset parts of ``options`` get test-friendly values: a temporary state dir and a
    random API key. The address is always replaced by a free loopback port.
    """
    opts = dataclasses.replace(options) if options else Options()
    with tempfile.TemporaryDirectory(prefix="parsec-test-") as tmp:
        if opts.auth.state_dir is None:
            opts.auth = dataclasses.replace(opts.auth, state_dir=Path(tmp) / "state")
        if not opts.api.key and not opts.api.insecure:
            opts.api = dataclasses.replace(opts.api, key=secrets.token_urlsafe(16))
        port = free_port()
        opts.server = dataclasses.replace(opts.server, addr=f"127.0.0.1:{port}")
        async with Parsec(opts) as parsec:
            started = asyncio.Event()
            task = asyncio.create_task(parsec.run(started.set))
            waiter = asyncio.create_task(started.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                waiter.cancel()
                task.result()  # raises why the server could not start
                raise RuntimeError("parsec stopped before it accepted connections")
            try:
                yield TestServer(parsec, f"http://127.0.0.1:{port}", opts.api.key or "")
            finally:
                await parsec.aclose()
                await task


try:
    import pytest_asyncio
except ImportError:  # pytest-asyncio is optional: serve_for_tests works without it
    pass
else:

    @pytest_asyncio.fixture
    async def parsec_server() -> AsyncIterator[TestServer]:
        """A Parsec with default options on a free port, for one test."""
        async with serve_for_tests() as server:
            yield server
