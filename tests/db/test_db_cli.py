"""``parsec db upgrade|current`` as a user runs them: exit 0 with what happened, 2 for
a URL or configuration Parsec cannot use, 1 for a database that does not answer or that
a newer Parsec migrated — one ``parsec: error:`` line, never a traceback or a password."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runs import assert_clean_error, assert_one_line_error, invoke
from db_targets import postgres_execute
from typer.testing import Result

from parsec.db import head

pytestmark = pytest.mark.usefixtures("hermetic")


def payload_of(result: Result, kind: str) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["kind"] == kind
    payload: dict[str, Any] = document["payload"]
    return payload


def test_upgrade_then_current_on_the_default_sqlite_file(tmp_path: Path) -> None:
    """With nothing configured the database is .parsec/parsec.db in the current directory."""
    before = invoke("db", "current")
    assert before.exit_code == 0, before.output
    assert "none (empty database)" in before.stdout
    assert "parsec db upgrade" in before.stdout

    first = invoke("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"from empty to {head()}" in first.stdout
    assert (tmp_path / ".parsec" / "parsec.db").is_file()

    again = invoke("db", "upgrade")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout

    now = invoke("db", "current")
    assert "up to date" in now.stdout


def test_json_envelopes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    upgraded = payload_of(invoke("db", "upgrade", "--url", url, "--json"), "parsec.db.upgraded")
    assert upgraded == {
        "url": url,
        "backend": "sqlite",
        "revision": head(),
        "head": head(),
        "up_to_date": True,
        "previous_revision": None,
        "changed": True,
    }
    shown = payload_of(invoke("db", "current", "--url", url, "--json"), "parsec.db.current")
    assert shown["revision"] == head()
    assert shown["up_to_date"] is True


def test_the_url_comes_from_the_config_file_or_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "parsec.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "file.db"}"\n')
    assert invoke("db", "upgrade", "--config", str(config)).exit_code == 0
    assert (tmp_path / "file.db").is_file()
    env = {"PARSEC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    assert (tmp_path / "env.db").is_file()


@pytest.mark.parametrize(
    "url",
    ["mysql://root:hunter2@db/parsec", "postgresql://root:hunter2@db/parsec", "sqlite:///x.db"],
)
def test_a_url_parsec_cannot_use_exits_2(url: str) -> None:
    result = invoke("db", "upgrade", "--url", url)
    assert_clean_error(result, 2, "database.url", "postgresql+asyncpg://")
    assert "hunter2" not in result.output


def test_a_bad_configuration_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "parsec.toml"
    config.write_text("[database]\nuri = 'x'\n")
    assert_clean_error(invoke("db", "current", "--config", str(config)), 2, "database.uri")


def test_an_unreachable_postgres_exits_1_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/test"
    for command in ("upgrade", "current"):
        result = invoke("db", command, "--url", url)
        assert_clean_error(
            result, 1, "PARSEC_DATABASE_UNAVAILABLE", "postgres:***@", "Connection refused"
        )
        assert "hunter2" not in result.output
        assert len(result.stderr.splitlines()) == 1


def test_a_schema_from_a_newer_parsec_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///{path}"
    assert invoke("db", "upgrade", "--url", url).exit_code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_future'")
    conn.close()
    for command in ("upgrade", "current"):
        result = invoke("db", command, "--url", url)
        assert_clean_error(
            result, 1, "PARSEC_DATABASE_SCHEMA_TOO_NEW", "'0099_future'", "upgrade Parsec"
        )


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own (the CLI takes a URL, not a search path)."""
    name = f"parsec_cli_{uuid.uuid4().hex[:12]}"

    asyncio.run(postgres_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(postgres_execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_upgrade_and_current_on_postgres(postgres_database: str) -> None:
    upgraded = payload_of(
        invoke("db", "upgrade", "--url", postgres_database, "--json"), "parsec.db.upgraded"
    )
    assert (upgraded["backend"], upgraded["changed"]) == ("postgresql", True)
    result = invoke("db", "current", "--url", postgres_database)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_postgres_without_its_driver_says_what_to_install(tmp_path: Path) -> None:
    """Installed without the ``postgres`` extra, a PostgreSQL URL exits 2 naming it."""
    script = (
        "import sys; sys.modules['asyncpg'] = None; from parsec.cli import main; "
        "sys.argv = ['parsec', 'db', 'current', '--url', "
        "'postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/test']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 2, done.stderr
    line = assert_one_line_error(done.stderr, "PARSEC_DATABASE_CONFIG_INVALID", "[postgres]")
    assert "hunter2" not in line
