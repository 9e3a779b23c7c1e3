"""Parsec's database: accounts and tenancy (users, organisations, members, invites, API
keys, the audit log, OAuth states and device codes), on SQLite or PostgreSQL.

::

    url.py         which URLs are accepted, the default one, and redaction (stdlib only)
    errors.py      DatabaseError and its codes (stdlib only)
    database.py    Database: an engine, sessions and transactions (SQLAlchemy, async)
    schema.py      the tables, as typed declarative models
    migrate.py     upgrade / current / status over the Alembic scripts in migrations/
    open.py        open_database(options): what ``parsec serve`` calls

Importing ``parsec.db`` (this package) loads neither SQLAlchemy nor Alembic: the names
below are imported when first used, so ``import parsec`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from parsec.db.database import Database
    from parsec.db.errors import (
        DatabaseConfigError,
        DatabaseError,
        DatabaseUnavailable,
        SchemaTooNew,
    )
    from parsec.db.migrate import SchemaState, current, head, status, upgrade
    from parsec.db.open import database_url, open_database

__all__ = [
    "Database",
    "DatabaseConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "SchemaState",
    "SchemaTooNew",
    "current",
    "database_url",
    "head",
    "open_database",
    "status",
    "upgrade",
]

_WHERE: Final = {
    "Database": "parsec.db.database",
    "DatabaseConfigError": "parsec.db.errors",
    "DatabaseError": "parsec.db.errors",
    "DatabaseUnavailable": "parsec.db.errors",
    "SchemaTooNew": "parsec.db.errors",
    "SchemaState": "parsec.db.migrate",
    "current": "parsec.db.migrate",
    "head": "parsec.db.migrate",
    "status": "parsec.db.migrate",
    "upgrade": "parsec.db.migrate",
    "database_url": "parsec.db.open",
    "open_database": "parsec.db.open",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'parsec.db' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
