"""Migrations on SQLite and PostgreSQL: from empty to head, idempotent, safe when several
Databases or processes upgrade at once, in agreement with the models, and refusing a
schema a newer Parsec wrote."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Final

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from db_targets import POSTGRES_URL, Target, postgres_execute
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from parsec.db import Database, SchemaTooNew, current, head, open_database, status, upgrade
from parsec.db.database import DatabaseState
from parsec.db.schema import Base
from parsec.options import Options

TABLES: Final = {
    "users",
    "identities",
    "orgs",
    "members",
    "invites",
    "api_keys",
    "audit_events",
    "oauth_states",
    "device_codes",
}


async def tables_of(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names)


async def test_an_empty_database_is_upgraded_to_head(db: Database) -> None:
    """Before: no revision, not up to date. After: every table, at head."""
    before = await status(db)
    assert before.revision is None
    assert not before.up_to_date
    assert before.known

    done = await upgrade(db)

    assert (done.before, done.after, done.changed) == (None, head(), True)
    assert await tables_of(db) == TABLES | {"alembic_version"}
    assert await current(db) == head()
    assert (await status(db)).up_to_date


async def test_upgrading_again_changes_nothing(migrated: Database) -> None:
    done = await upgrade(migrated)
    assert (done.before, done.after, done.changed) == (head(), head(), False)
    assert await tables_of(migrated) == TABLES | {"alembic_version"}


async def test_two_databases_upgrading_at_once_both_succeed(target: Target) -> None:
    """The lock lets one migrate; the other then finds the schema at head."""
    async with target.database() as one, target.database() as two:
        results = await asyncio.gather(upgrade(one), upgrade(two))
        assert sorted(r.changed for r in results) == [False, True]
        assert {r.after for r in results} == {head()}
        assert await current(one) == head()


UPGRADE_SCRIPT: Final = """
import asyncio, json, sys
from parsec.db import Database, upgrade

async def main() -> None:
    url, connect_args = sys.argv[1], json.loads(sys.argv[2])
    async with Database(url, connect_args=connect_args) as db:
        done = await upgrade(db)
    print(json.dumps({"changed": done.changed, "after": done.after}))

asyncio.run(main())
"""


async def test_processes_upgrading_at_once_all_succeed(target: Target) -> None:
    """Two processes start on one empty database at the same time: exactly one
    migrates, both exit 0 at head."""
    args = [sys.executable, "-c", UPGRADE_SCRIPT, target.url, json.dumps(target.connect_args)]
    procs = [
        await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    results: list[dict[str, Any]] = [json.loads(out) for out, _ in outputs]
    assert sorted(r["changed"] for r in results) == [False, True]
    assert {r["after"] for r in results} == {head()}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_models_and_the_migrations_agree(migrated: Database) -> None:
    """Alembic's autogenerate finds nothing to add, drop or alter: a model change
    without its migration fails here."""
    async with migrated.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def _stamp(db: Database, revision: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


async def test_a_schema_from_a_newer_parsec_is_refused(migrated: Database) -> None:
    """The message names the database's revision and this Parsec's head, and says what
    to do; nothing is changed."""
    await _stamp(migrated, "0099_from_the_future")

    with pytest.raises(SchemaTooNew) as caught:
        await upgrade(migrated)

    message = str(caught.value)
    assert "'0099_from_the_future'" in message
    assert repr(head()) in message
    assert "upgrade Parsec" in message
    assert caught.value.code == "PARSEC_DATABASE_SCHEMA_TOO_NEW"
    state = await status(migrated)
    assert (state.revision, state.known, state.up_to_date) == ("0099_from_the_future", False, False)
    assert await tables_of(migrated) == TABLES | {"alembic_version"}


async def test_open_database_opens_and_migrates_the_configured_database(tmp_path: Path) -> None:
    """What ``parsec serve`` will call: the default SQLite file, at head, owned by the
    caller."""
    options = Options()
    options.auth.state_dir = tmp_path / "state"
    async with await open_database(options) as db:
        assert await current(db) == head()
        assert db.url.endswith("/state/parsec.db")
    assert db.state is DatabaseState.CLOSED


async def test_open_database_refuses_a_newer_schema_and_closes(tmp_path: Path) -> None:
    options = Options()
    options.auth.state_dir = tmp_path
    async with await open_database(options) as db:
        await _stamp(db, "0099_from_the_future")
    with pytest.raises(SchemaTooNew, match="upgrade Parsec"):
        await open_database(options)


async def test_no_password_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Opening and migrating PostgreSQL with a password in the URL (trust auth ignores
    it) logs the URL with *** only."""
    schema = f"parsec_test_{uuid.uuid4().hex[:12]}"
    await postgres_execute(f'CREATE SCHEMA "{schema}"')
    url = POSTGRES_URL.replace("postgres@", "postgres:hunter2@")
    try:
        with caplog.at_level(logging.DEBUG):
            db = Database(url, connect_args={"server_settings": {"search_path": schema}})
            async with db:
                await upgrade(db)
        assert "postgres:***@127.0.0.1" in caplog.text
        assert "hunter2" not in caplog.text
        assert "hunter2" not in db.url
    finally:
        await postgres_execute(f'DROP SCHEMA "{schema}" CASCADE')
