"""Pytest plugin: an in-process Parsec with ``[accounts]`` (GitHub login through the
fake GitHub) on SQLite and PostgreSQL, and browsers logged in as a given GitHub user.

::

    async def test_x(tenancy: Tenancy) -> None:
        alice = await tenancy.browser("alice")      # logged in; cookie in its jar
        bob = await tenancy.browser("bob")
        carol = await tenancy.browser("carol")      # any login: the fake makes the user
        anonymous = tenancy.anonymous()
        (await alice.get("/api/v1/orgs")).json()

Clients speak to Parsec over ASGI (``base_url`` :data:`BASE_URL`); the login's GitHub
leg goes over real HTTP to the fake. Every client is closed after the test.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest
from db_targets import BACKENDS, database_url
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub, FakeGitHubUser

from parsec import AuthOptions, Options, Parsec
from parsec.options import AccountsOptions, DatabaseOptions, GitHubLoginOptions

BASE_URL: Final = "http://parsec.test"
SESSION_KEY: Final = "s" * 40
_ids = itertools.count(5001)


def accounts_options(url: str, tmp_path: Path, github: FakeGitHub, **changes: Any) -> Options:
    """Options of a Parsec with ``[accounts]`` on the database at ``url``, logging in
    through ``github`` (the fake); ``changes`` replace whole top-level options
    (``namespaces=…``, ``nats=…``, ``token_broker=…``) or, as ``accounts=dict``, add
    ``[accounts]`` keys."""
    extra_accounts: dict[str, Any] = changes.pop("accounts", {})
    return Options(
        auth=AuthOptions(state_dir=tmp_path / "state"),
        database=DatabaseOptions(url=url),
        accounts=AccountsOptions(
            session_key=SESSION_KEY,
            base_url=BASE_URL,
            github=GitHubLoginOptions(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                authorize_url=github.authorize_url,
                token_url=github.token_url,
                user_url=github.user_url,
            ),
            **extra_accounts,
        ),
        **changes,
    )


class Tenancy:
    """A Parsec with accounts, and its browsers."""

    def __init__(self, parsec: Parsec, github: FakeGitHub, stack: contextlib.AsyncExitStack):
        self.parsec = parsec
        self.github = github
        self._stack = stack

    def anonymous(self) -> httpx.AsyncClient:
        """A client with no cookie and no bearer."""
        transport = httpx.ASGITransport(app=self.parsec.asgi_app())
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        self._stack.push_async_callback(client.aclose)
        return client

    async def browser(self, login: str) -> httpx.AsyncClient:
        """A client logged in as GitHub user ``login`` (made up at the fake when it is
        not alice or bob), holding the session cookie."""
        if login not in self.github.users:
            self.github.users[login] = FakeGitHubUser(
                id=next(_ids), login=login, name=None, email=f"{login}@example.com"
            )
        client = self.anonymous()
        self.github.login_as = login
        start = await client.get("/auth/github/start", params={"next": "/"})
        assert start.status_code == 302, start.text
        async with httpx.AsyncClient(trust_env=False) as github:
            approved = await github.get(start.headers["location"])
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        done = await client.get(f"{back.path}?{back.query}")
        assert done.status_code == 303, done.text
        return client


@pytest.fixture(params=BACKENDS)
async def tenancy(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub
) -> AsyncIterator[Tenancy]:
    """A Parsec with ``[accounts]`` on each database backend."""
    async with database_url(request.param, tmp_path) as url:
        options = accounts_options(url, tmp_path, fake_github)
        async with Parsec(options) as instance, contextlib.AsyncExitStack() as stack:
            yield Tenancy(instance, fake_github, stack)
