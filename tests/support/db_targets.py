"""Databases for tests (a pytest plugin, loaded by tests/conftest.py): ``target`` runs a
test on SQLite (a file of its own) and on PostgreSQL (127.0.0.1:5432, database ``test``,
user ``postgres``, trust auth) in a schema of its own, made before the test and dropped
(CASCADE) after it; ``db`` is an open empty database there, ``migrated`` one at this
Parsec's head. PostgreSQL is required: when it does not answer, the PostgreSQL half of
each test errors, it is never skipped."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parsec.db import Database, upgrade

POSTGRES_URL: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Target:
    """One empty database to test against; ``database()`` makes a new (unopened)
    ``Database`` on it, as many as a test needs."""

    backend: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None

    def database(self) -> Database:
        return Database(self.url, connect_args=self.connect_args)


async def postgres_execute(statement: str) -> None:
    """Run ``statement`` on the test PostgreSQL outside a transaction (CREATE DATABASE)."""
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


BACKENDS: Final = ("sqlite", "postgresql")


@contextlib.asynccontextmanager
async def empty_target(backend: str, tmp_path: Path) -> AsyncIterator[Target]:
    """An empty database on ``backend``: a SQLite file under ``tmp_path``, or a fresh
    PostgreSQL schema dropped (CASCADE) when the block ends."""
    if backend == "sqlite":
        yield Target("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'state' / 'parsec.db'}")
        return
    schema = f"parsec_test_{uuid.uuid4().hex[:12]}"
    await postgres_execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Target(
            "postgresql",
            POSTGRES_URL,
            {"server_settings": {"search_path": schema}},
            schema,
        )
    finally:
        await postgres_execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.asynccontextmanager
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database on ``backend``, for code that takes only a URL
    (``[database] url``): a SQLite file under ``tmp_path``, or a PostgreSQL database of
    its own, dropped when the block ends."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'parsec.db'}"
        return
    name = f"parsec_test_{uuid.uuid4().hex[:12]}"
    await postgres_execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await postgres_execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    async with empty_target(request.param, tmp_path) as made:
        yield made


@pytest.fixture
async def db(target: Target) -> AsyncIterator[Database]:
    """An open, empty database."""
    async with target.database() as database:
        yield database


@pytest.fixture
async def migrated(db: Database) -> Database:
    """An open database at this Parsec's head."""
    await upgrade(db)
    return db
