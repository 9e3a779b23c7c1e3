"""What goes wrong with the database, each with a stable code and the CLI's exit code.

::

    DatabaseError (code, exit_code)
     ├─ DatabaseConfigError   PARSEC_DATABASE_CONFIG_INVALID   exit 2: a bad URL, no state dir
     ├─ DatabaseUnavailable   PARSEC_DATABASE_UNAVAILABLE      exit 1: cannot connect or query
     └─ SchemaTooNew          PARSEC_DATABASE_SCHEMA_TOO_NEW   exit 1: written by a newer Parsec

Messages name the database by its redacted URL (``***`` for the password) and never
carry a password.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["DatabaseConfigError", "DatabaseError", "DatabaseUnavailable", "SchemaTooNew"]


class DatabaseError(Exception):
    """A database failure with a stable ``code`` and a message for people."""

    code: ClassVar[str] = "PARSEC_DATABASE_ERROR"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseConfigError(DatabaseError):
    """The database cannot be configured: a URL Parsec does not accept, or no URL and no
    state directory to put the default SQLite file in."""

    code = "PARSEC_DATABASE_CONFIG_INVALID"
    exit_code = 2


class DatabaseUnavailable(DatabaseError):
    """The database does not answer: connection refused, authentication failed, no
    such database, an unwritable SQLite file, a timeout."""

    code = "PARSEC_DATABASE_UNAVAILABLE"


class SchemaTooNew(DatabaseError):
    """The database's schema revision is unknown to this Parsec: a newer Parsec
    migrated it. Parsec refuses to touch it rather than guess."""

    code = "PARSEC_DATABASE_SCHEMA_TOO_NEW"

    def __init__(self, revision: str, head: str) -> None:
        super().__init__(
            f"the database schema is at revision {revision!r}, which this Parsec does not "
            f"know (its newest is {head!r}): a newer Parsec migrated it; upgrade Parsec"
        )
        self.revision = revision
        self.head = head
