"""Fixtures: a fresh in-process Parsec server per test, with options the test chooses.

Every test of this package runs in one session-wide event loop, so that a server a test
is done with can finish stopping (uvicorn takes a few tenths of a second to stop
listening) while the next tests run; the session waits for all of them at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from parsec.engine.broker import Broker

from .harness import WAIT, Server, make_options, start_server

ServerFactory = Callable[..., Awaitable[Server]]

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this package's async tests in the session event loop."""
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if pytest_asyncio.is_async_test(item) and _HERE in item.path.parents:
            item.add_marker(session_loop, append=False)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def stopping_servers() -> AsyncIterator[list[asyncio.Task[None]]]:
    """uvicorn run tasks of closed servers; all must have ended by the session's end."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*tasks)


@pytest.fixture(params=["native", "asgi"])
def websocket_transport(request: pytest.FixtureRequest) -> str:
    """Every protocol test runs on both WebSocket transports: the native one that
    ``parsec serve`` uses and the ASGI endpoint a mounted app uses."""
    transport: str = request.param
    return transport


@pytest_asyncio.fixture(loop_scope="session")
async def make_server(
    tmp_path: Path, stopping_servers: list[asyncio.Task[None]], websocket_transport: str
) -> AsyncIterator[ServerFactory]:
    """Start servers with ``make_options(**kwargs)`` (and a ``broker`` of the test's
    choosing); all are closed after the test."""
    counter = itertools.count()
    native = websocket_transport == "native"
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, broker: Broker | None = None, **kwargs: Any) -> Server:
            kwargs.setdefault("native_websocket", native)
            options = make_options(tmp_path / f"state-{next(counter)}", **kwargs)
            started = start_server(options, broker=broker, stopping=stopping_servers)
            return await stack.enter_async_context(started)

        yield factory


@pytest_asyncio.fixture(loop_scope="session")
async def server(make_server: ServerFactory) -> Server:
    """A server with the default test options (see ``harness.default_namespaces``)."""
    return await make_server()


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever the test sends, the server logs no error and no traceback (a module asks
    for it with ``pytestmark = pytest.mark.usefixtures("no_errors_logged")``)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
