"""What the tenancy tests share: a Parsec with accounts served on a real port
(``org_server``), logged-in browsers over ASGI, and centrifuge-python clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from accounts_fixtures import Tenancy, accounts_options
from db_targets import BACKENDS, database_url
from fake_github import FakeGitHub
from served_orgs import Events, Served

from parsec import Namespace, Options
from parsec.testing import serve_for_tests

__all__ = ["CHAT", "Events", "Served", "org_options", "served_accounts"]


CHAT = Namespace(
    name="chat",
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_history_for_subscriber=True,
    history_size=10,
    history_ttl=300,
)


def org_options(url: str, tmp_path: Path, github: FakeGitHub, **accounts: Any) -> Options:
    """:func:`accounts_options` with a ``chat`` namespace; ``accounts``: more
    ``[accounts]`` keys (quotas)."""
    return accounts_options(url, tmp_path, github, namespaces=[CHAT], accounts=accounts)


@contextlib.asynccontextmanager
async def served_accounts(
    backend: str, tmp_path: Path, github: FakeGitHub, **accounts: Any
) -> AsyncIterator[Served]:
    async with (
        database_url(backend, tmp_path) as url,
        serve_for_tests(org_options(url, tmp_path, github, **accounts)) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        yield Served(server, Tenancy(server.parsec, github, stack))


@pytest.fixture(params=BACKENDS)
async def org_server(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub
) -> AsyncIterator[Served]:
    """A served Parsec with accounts, on each database backend."""
    async with served_accounts(request.param, tmp_path, fake_github) as it:
        yield it
