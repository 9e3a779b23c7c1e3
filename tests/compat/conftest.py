"""Fixtures of the SDK compatibility suite.

``server_factory`` starts real ``parsec serve`` processes (see ``parsec_process``) and
stops them at the end of the session; ``server`` is the shared default one. Tests
isolate themselves with fresh channel and user names (``channel``, ``user``) rather
than fresh servers; only a test that needs another config starts its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import cent
import pytest
import requests

from .parsec_process import ParsecServer, ServerFactory


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Starts ``parsec serve`` processes on demand; all are stopped after the session."""
    factory = ServerFactory(tmp_path_factory.mktemp("parsec"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def server(server_factory: ServerFactory) -> ParsecServer:
    """The suite's ``parsec serve`` with the default config (namespaces chat, plain)."""
    return server_factory.start()


@pytest.fixture
def channel() -> str:
    """A channel name in the ``chat`` namespace that no other test uses."""
    return f"chat:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def user() -> str:
    """A user ID that no other test uses."""
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(server: ParsecServer) -> Iterator[cent.Client]:
    """A synchronous ``cent`` client for the server API, with the right key."""
    session = requests.Session()
    session.trust_env = False
    with cent.Client(api_url=server.api_url, api_key=server.api_key, session=session) as client:
        yield client


@pytest.fixture
async def async_api(server: ParsecServer) -> AsyncIterator[cent.AsyncClient]:
    """An asyncio ``cent`` client, for tests that also drive SDK clients in the loop."""
    session = aiohttp.ClientSession()
    async with cent.AsyncClient(
        api_url=server.api_url, api_key=server.api_key, session=session
    ) as client:
        yield client
