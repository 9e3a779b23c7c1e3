"""Database URLs: the two kinds Parsec accepts, the default, and redaction.

Standard library only, so :mod:`parsec.config` can check a URL without loading
SQLAlchemy. Accepted: ``sqlite+aiosqlite:///relative/file.db``,
``sqlite+aiosqlite:////absolute/file.db`` and ``postgresql+asyncpg://user:pass@host:port/db``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DEFAULT_FILE", "POSTGRES", "SCHEMES", "SQLITE", "default_url", "problem", "redact"]

SQLITE: Final = "sqlite+aiosqlite"
POSTGRES: Final = "postgresql+asyncpg"
SCHEMES: Final = (SQLITE, POSTGRES)
DEFAULT_FILE: Final = "parsec.db"
"""The SQLite file in the state directory when no URL is configured."""


def default_url(state_dir: Path) -> str:
    """``sqlite+aiosqlite:///<state_dir>/parsec.db``, with the state dir made absolute."""
    return f"{SQLITE}:///{state_dir.absolute() / DEFAULT_FILE}"


def problem(url: str) -> str | None:
    """What is wrong with ``url`` in words (never echoing a password), or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        return (
            f"expected a {SQLITE}:///FILE or {POSTGRES}://USER@HOST/DB URL, "
            f"got one starting {(scheme + sep)[:40]!r}"
        )
    if scheme == SQLITE:
        path = rest[1:] if rest.startswith("/") else None
        if path is None:
            return f"a SQLite URL has no host: use {SQLITE}:///relative.db or ////absolute.db"
        path = path.partition("?")[0]
        if not path or path == ":memory:":
            return "SQLite needs a file (an in-memory database is lost with each connection)"
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"malformed PostgreSQL URL: {exc}"
    if not parts.hostname and "host=" not in parts.query:
        return "a PostgreSQL URL needs a host: postgresql+asyncpg://USER@HOST:PORT/DB"
    if not parts.path.strip("/"):
        return "a PostgreSQL URL needs a database name: postgresql+asyncpg://USER@HOST:PORT/DB"
    return None


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe to print or log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.partition("://")[0] + "://***"
    if password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
