"""``open_database(options)``: the database a Parsec with accounts runs on, opened and
migrated — what ``Parsec`` start will call (``parsec serve`` runs the migrations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsec.db import url as urls
from parsec.db.database import Database
from parsec.db.errors import DatabaseConfigError
from parsec.db.migrate import upgrade

if TYPE_CHECKING:
    from parsec.options import Options

__all__ = ["database_url", "open_database"]


def database_url(options: Options) -> str:
    """``[database] url``, else SQLite in the state directory (``<state_dir>/parsec.db``).

    Raises:
        DatabaseConfigError: no URL and no state directory: the accounts must outlive
            the process, so there is no in-memory fallback.
    """
    if options.database.url is not None:
        return options.database.url
    if options.auth.state_dir is None:
        raise DatabaseConfigError(
            "no database: set [database] url (PARSEC_DATABASE_URL) or a state directory "
            "([auth] state_dir, PARSEC_STATE_DIR) for the default SQLite file"
        )
    return urls.default_url(options.auth.state_dir)


async def open_database(options: Options) -> Database:
    """The database of ``options``, open and migrated to head. The caller owns it:
    ``await stack.enter_async_context(await open_database(options))``, or ``aclose()``.

    Raises:
        DatabaseConfigError: a bad URL, or no URL and no state directory.
        DatabaseUnavailable: the database does not answer.
        SchemaTooNew: a newer Parsec migrated it.
    """
    db = Database(database_url(options))
    await db.__aenter__()
    try:
        await upgrade(db)
    except BaseException:
        await db.aclose()
        raise
    return db
