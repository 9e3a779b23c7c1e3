"""Migrations: bring a database's schema to this Parsec's head, or say where it stands.

The Alembic scripts live in ``parsec/db/migrations`` and ship in the wheel; Alembic is
configured here in code (no ``alembic.ini``). :func:`upgrade` is idempotent and safe
when several processes start at once: it runs in one transaction under a lock —
PostgreSQL's transaction-scoped advisory lock, SQLite's write lock (``BEGIN IMMEDIATE``,
the others wait up to the busy timeout) — and reads the revision only once it holds the
lock, so the first process migrates and the others find the schema at head.

A database whose revision this Parsec does not know was migrated by a newer Parsec:
:func:`upgrade` refuses it with :class:`SchemaTooNew` before changing anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from parsec.db.database import SQLITE_BEGIN, Database
from parsec.db.errors import DatabaseUnavailable, SchemaTooNew

__all__ = ["LOCK_KEY", "SchemaState", "Upgrade", "current", "head", "status", "upgrade"]

log = logging.getLogger("parsec.db")

LOCK_KEY: Final = 0x7061727365630001
"""The PostgreSQL advisory lock migrations hold (``"parsec"`` and 1, as a bigint)."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this Parsec's migrations."""

    revision: str | None
    """The database's revision; None for a database never migrated."""
    head: str
    """This Parsec's newest revision."""
    known: bool
    """Whether this Parsec knows ``revision`` (None counts as known)."""

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade` did: from ``before`` (None: an empty database) to ``after``."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("parsec.db") / "migrations"))
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """This Parsec's newest schema revision."""
    revision = _scripts().get_current_head()
    assert revision is not None, "parsec/db/migrations has no revision"
    return revision


def _known(revision: str | None) -> bool:
    if revision is None:
        return True
    return revision in {script.revision for script in _scripts().walk_revisions()}


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _state(revision: str | None) -> SchemaState:
    return SchemaState(revision=revision, head=head(), known=_known(revision))


async def current(db: Database) -> str | None:
    """The database's schema revision; None when it was never migrated."""
    return (await status(db)).revision


async def status(db: Database) -> SchemaState:
    """The database's revision, this Parsec's head, and whether it knows the revision."""
    try:
        async with db.engine.connect() as conn:
            revision = await conn.run_sync(_revision_of)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(
            f"cannot read the schema revision of {db.url}: {db.reason(exc)}"
        ) from None
    return _state(revision)


def _migrate(connection: Connection) -> Upgrade:
    before = _revision_of(connection)
    if not _known(before):
        assert before is not None
        raise SchemaTooNew(before, head())
    if before != head():
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return Upgrade(before=before, after=head())


async def _upgrade_locked(db: Database) -> Upgrade:
    async with db.engine.connect() as conn:
        if db.backend == "sqlite":
            await conn.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        async with conn.begin():
            if db.backend == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            return await conn.run_sync(_migrate)


async def upgrade(db: Database) -> Upgrade:
    """Migrate ``db`` to :func:`head`, in one transaction under the migration lock.

    Raises:
        SchemaTooNew: the database's revision is unknown here (nothing is changed).
        DatabaseUnavailable: the database failed under the migration.
    """
    try:
        done = await db.retry_locked(lambda: _upgrade_locked(db))
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"cannot migrate {db.url}: {db.reason(exc)}") from None
    if done.changed:
        log.info("database %s migrated from %s to %s", db.url, done.before or "empty", done.after)
    return done
