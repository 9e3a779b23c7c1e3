"""Fixtures: a running Parsec and an HTTP client for its management API, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from parsec import AuthOptions, Options, Parsec

from .twirp import Api


@pytest_asyncio.fixture
async def parsec(tmp_path: Path) -> AsyncIterator[Parsec]:
    """A started Parsec whose keyring lives in a temporary state directory."""
    options = Options(auth=AuthOptions(state_dir=tmp_path / "state"))
    async with Parsec(options) as instance:
        yield instance


@pytest_asyncio.fixture
async def http(parsec: Parsec) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client wired straight to ``parsec``'s ASGI application."""
    transport = httpx.ASGITransport(app=parsec.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as client:
        yield client


@pytest.fixture
def operator_token(parsec: Parsec) -> str:
    """A full operator management token."""
    return parsec.issue_mgmt("operator").token


@pytest.fixture
def api(http: httpx.AsyncClient, operator_token: str) -> Api:
    """The management API, called with the operator token unless a test says otherwise."""
    return Api(http, operator_token)
