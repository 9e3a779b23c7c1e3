"""Alembic's environment for Parsec's schema; configured in code by
:mod:`parsec.db.migrate`, never by an ``alembic.ini``.

:mod:`parsec.db.migrate` runs Alembic on a connection it already holds (in a
transaction, under the migration lock) and passes it as ``config.attributes["connection"]``.
Without one (Alembic's own command line, pointed here by a ``script_location`` of
``parsec.db:migrations`` and a ``sqlalchemy.url``), this opens an async engine for the
URL and runs the migrations on it. There is no offline (SQL script) mode.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from parsec.db.schema import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("Parsec's migrations run online only: give Alembic a database")
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
    else:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no connection and no sqlalchemy.url to migrate")
        asyncio.run(_run_on_url(url))


main()
