"""``Database``: one engine over SQLite or PostgreSQL, its sessions and transactions.

::

    async with Database("sqlite+aiosqlite:///.parsec/parsec.db") as db:
        async with db.transaction() as session:      # commits, or rolls back on error
            session.add(User(username="ana"))
        async with db.session() as session:          # you commit (or not)
            users = (await session.scalars(select(User))).all()

Opening checks that the database answers (a :class:`DatabaseUnavailable` otherwise) and,
for SQLite, creates the file's directory (0700) and the file (0600) when missing. Every
SQLite connection has foreign keys on, WAL journaling and a 5 s busy timeout, and begins
its transactions itself (``BEGIN``, or ``BEGIN IMMEDIATE`` for the migrations), so DDL is
transactional on both backends. PostgreSQL connections come from a bounded pool that
checks a connection before handing it out.

Lifecycle: ``UNOPENED → OPEN → CLOSED``. Entering an open database again is a no-op (so
:func:`parsec.db.open_database`'s result can go on an ``AsyncExitStack``); ``aclose()``
is idempotent; a closed database cannot be reopened; one left open warns
(``ResourceWarning``) when it is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from parsec.db import url as urls
from parsec.db.errors import DatabaseConfigError, DatabaseUnavailable

__all__ = ["BUSY_TIMEOUT", "CONNECT_TIMEOUT", "LOCKED_RETRY_BUDGET", "Database", "DatabaseState"]

T = TypeVar("T")

log = logging.getLogger("parsec.db")

BUSY_TIMEOUT: Final = 5.0
"""SQLite: seconds a connection waits for another's lock before failing."""
CONNECT_TIMEOUT: Final = 5.0
"""Seconds opening a database (or a PostgreSQL connection) may take."""
LOCKED_RETRY_BUDGET: Final = 30.0
"""SQLite: seconds opening or migrating keeps retrying while another process holds the
lock (a busy timeout elapsed under a long migration, or a closing process's cleanup)."""
SQLITE_BEGIN: Final = "parsec_sqlite_begin"
"""Execution option naming the statement that begins a SQLite transaction."""


class DatabaseState(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Database:
    """An async SQLAlchemy engine for ``url`` (see :mod:`parsec.db.url`).

    ``connect_args`` go to the driver as they are (tests give asyncpg a
    ``server_settings`` search path). Raises :class:`DatabaseConfigError` for a URL
    Parsec does not accept.
    """

    def __init__(self, url: str, *, connect_args: Mapping[str, Any] | None = None) -> None:
        wrong = urls.problem(url)
        if wrong is not None:
            raise DatabaseConfigError(f"database url {urls.redact(url)}: {wrong}")
        try:
            self._url: URL = make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise DatabaseConfigError(f"database url {urls.redact(url)}: {exc}") from None
        self._connect_args = dict(connect_args or {})
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._state = DatabaseState.UNOPENED

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self._url.get_backend_name() == "sqlite" else "postgresql"

    @property
    def url(self) -> str:
        """The URL with its password replaced by ``***``: safe to print or log."""
        return self._url.render_as_string(hide_password=True)

    @property
    def state(self) -> DatabaseState:
        return self._state

    @property
    def engine(self) -> AsyncEngine:
        """The engine of an open database (``RuntimeError`` otherwise)."""
        if self._engine is None or self._state is not DatabaseState.OPEN:
            raise RuntimeError(f"database is {self._state.value}, not open")
        return self._engine

    async def __aenter__(self) -> Self:
        if self._state is DatabaseState.CLOSED:
            raise RuntimeError("a closed Database cannot be reopened; make a new one")
        if self._state is DatabaseState.UNOPENED:
            await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection; idempotent."""
        engine, self._engine, self._sessions = self._engine, None, None
        self._state = DatabaseState.CLOSED
        if engine is not None:
            await asyncio.shield(engine.dispose())

    def __del__(self) -> None:
        if getattr(self, "_state", None) is DatabaseState.OPEN:
            warnings.warn(
                f"unclosed Database {self.url}", ResourceWarning, stacklevel=2, source=self
            )

    def session(self) -> AsyncSession:
        """A new session (``async with db.session() as s:``); the caller commits."""
        if self._sessions is None or self._state is not DatabaseState.OPEN:
            raise RuntimeError(f"database is {self._state.value}, not open")
        return self._sessions()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back when
        it raises. On SQLite it begins ``IMMEDIATE`` (it takes the write lock first,
        waiting up to the busy timeout): a transaction that reads and then writes would
        otherwise fail at once ("database is locked") when another wrote meanwhile."""
        async with self.session() as session:
            if self.backend == "sqlite":
                await session.connection(execution_options={SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def _open(self) -> None:
        try:
            engine = self._create_engine()
        except ImportError as exc:
            self._state = DatabaseState.CLOSED
            raise DatabaseConfigError(
                f"the driver for {self.url} is not installed ({exc.name}): "
                "pip install 'parsec-realtime[postgres]'"
            ) from None
        if self.backend == "sqlite":
            try:
                await asyncio.to_thread(self._prepare_sqlite_file)
            except DatabaseUnavailable:
                await engine.dispose()
                self._state = DatabaseState.CLOSED
                raise
        try:
            await self.retry_locked(lambda: _probe(engine))
        except Exception as exc:  # the driver's own errors too (older SQLAlchemy: unwrapped)
            await engine.dispose()
            self._state = DatabaseState.CLOSED
            raise DatabaseUnavailable(
                f"cannot reach the database {self.url}: {self.reason(exc)}"
            ) from None
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._state = DatabaseState.OPEN
        log.info("database %s open", self.url)

    def _create_engine(self) -> AsyncEngine:
        """The engine (no connection yet); ImportError when the driver is missing."""
        if self.backend == "sqlite":
            engine = create_async_engine(
                self._url, connect_args={"timeout": BUSY_TIMEOUT, **self._connect_args}
            )
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
            return engine
        return create_async_engine(
            self._url,
            pool_size=5,
            max_overflow=10,
            pool_timeout=30,
            pool_recycle=1800,
            pool_pre_ping=True,
            connect_args={"timeout": CONNECT_TIMEOUT, **self._connect_args},
        )

    def _prepare_sqlite_file(self) -> None:
        """The file's directory (0700) and the file (0600), when missing: it will hold
        secrets (API key hashes, NATS signing seeds)."""
        path = Path(self._url.database or "")
        try:
            if not path.parent.exists():
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a racing process
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise DatabaseUnavailable(
                f"cannot create the SQLite database {path}: {exc.strerror or exc}"
            ) from None

    async def retry_locked(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again after a short pause each time SQLite says "database is
        locked", for up to :data:`LOCKED_RETRY_BUDGET` seconds; other errors (and every
        PostgreSQL error) are raised at once.

        SQLite's busy timeout covers most contention, but not all: a reader can get
        ``SQLITE_BUSY`` at once while the last connection of another process cleans up
        its write-ahead log, and a process starting under another's long migration
        outwaits one busy timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCKED_RETRY_BUDGET
        pause = 0.05
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if self.backend != "sqlite" or not _locked(exc) or loop.time() >= deadline:
                    raise
                log.info("database %s is locked by another process; retrying", self.url)
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 1.0)

    def reason(self, exc: BaseException) -> str:
        """One line saying why ``exc`` happened, without SQL, traceback or password."""
        if isinstance(exc, TimeoutError):
            return f"no answer within {CONNECT_TIMEOUT * 2:g}s"
        cause: BaseException = getattr(exc, "orig", None) or exc
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)  # "Connection refused", whatever the loop says
        lines = str(cause).strip().splitlines()
        line = lines[0] if lines else type(cause).__name__
        password = self._url.password
        if password:
            line = line.replace(str(password), "***")
        return line


async def _probe(engine: AsyncEngine) -> None:
    async with asyncio.timeout(CONNECT_TIMEOUT * 2), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY), wrapped by SQLAlchemy or not."""
    cause: BaseException = getattr(exc, "orig", None) or exc
    return "database is locked" in str(cause)


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Python's sqlite3 would begin transactions behind our back (and not before DDL);
    # with autocommit at the driver, _sqlite_begin starts every transaction instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))
