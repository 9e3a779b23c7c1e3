"""``parsec db``: the accounts database's schema.

``upgrade`` migrates the database to this Parsec's schema (what ``parsec serve`` will
do at start with ``[accounts]``); it is idempotent and safe to run while other
processes do the same. ``current`` says which revision the database is at.

The database is ``[database] url`` (``PARSEC_DATABASE_URL``, ``--url``), else
``parsec.db`` in the state directory (``.parsec`` unless configured, as for every
command). Exit codes: 0 done; 2 a bad configuration or URL; 1 a database that does not
answer, or whose schema a newer Parsec wrote. Errors are one ``parsec: error:`` line;
the URL is always shown with its password as ``***``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from parsec.cli._common import (
    JsonFlag,
    emit,
    fail,
    load_config,
    print_fields,
    run_async,
    state_dir_of,
)
from parsec.db.errors import DatabaseError, SchemaTooNew

if TYPE_CHECKING:
    from parsec.db.database import Database
    from parsec.db.migrate import SchemaState, Upgrade

__all__ = ["app"]

app = typer.Typer(
    name="db",
    help="The accounts database: migrate its schema, or show its revision.",
    no_args_is_help=True,
)

Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="FILE", help="TOML config file (env PARSEC_CONFIG)."),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="Database URL: sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB "
        "(env PARSEC_DATABASE_URL). Default: parsec.db in the state directory.",
        show_default=False,
    ),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="State directory of the default SQLite file (env PARSEC_STATE_DIR; default .parsec).",
        show_default=False,
    ),
]


@app.command("upgrade")
def upgrade(
    config: Config = None,
    url: Url = None,
    state_dir: StateDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Migrate the database to this Parsec's schema (idempotent)."""
    db = _database(config, url, state_dir)
    done, state = _run(_upgrade(db))
    payload = {**_describe(db, state), "previous_revision": done.before, "changed": done.changed}

    def text() -> None:
        if done.changed:
            typer.echo(f"migrated {db.url} from {done.before or 'empty'} to {done.after}")
        else:
            typer.echo(f"{db.url} is up to date (revision {done.after})")

    emit(as_json, "parsec.db.upgraded", payload, text)


@app.command("current")
def current(
    config: Config = None,
    url: Url = None,
    state_dir: StateDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the database's schema revision and this Parsec's newest."""
    db = _database(config, url, state_dir)
    state = _run(_status(db))
    if not state.known:
        assert state.revision is not None
        _fail(SchemaTooNew(state.revision, state.head))
    payload = _describe(db, state)

    def text() -> None:
        print_fields(
            [
                ("database", db.url),
                ("revision", state.revision or "none (empty database)"),
                ("head", state.head),
                ("status", "up to date" if state.up_to_date else "behind: run `parsec db upgrade`"),
            ]
        )

    emit(as_json, "parsec.db.current", payload, text)


def _database(config: Path | None, url: str | None, state_dir: Path | None) -> Database:
    from parsec.db.database import Database
    from parsec.db.open import database_url

    options = load_config(config, {"database.url": url, "auth.state_dir": state_dir})
    options.auth.state_dir = state_dir_of(options)
    try:
        return Database(database_url(options))
    except DatabaseError as exc:
        _fail(exc)


_T = TypeVar("_T")


def _run(main: Coroutine[Any, Any, _T]) -> _T:
    """``run_async(main)``; a DatabaseError is the command's one-line error and exit."""
    try:
        return run_async(main)
    except DatabaseError as exc:
        _fail(exc)


async def _upgrade(db: Database) -> tuple[Upgrade, SchemaState]:
    from parsec.db import migrate

    async with db:
        done = await migrate.upgrade(db)
        return done, await migrate.status(db)


async def _status(db: Database) -> SchemaState:
    from parsec.db import migrate

    async with db:
        return await migrate.status(db)


def _describe(db: Database, state: SchemaState) -> dict[str, object]:
    return {
        "url": db.url,
        "backend": db.backend,
        "revision": state.revision,
        "head": state.head,
        "up_to_date": state.up_to_date,
    }


def _fail(exc: DatabaseError) -> NoReturn:
    fail(f"{exc.code}: {exc.message}", exc.exit_code)
