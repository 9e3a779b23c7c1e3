"""The revocations file: ``<state_dir>/revocations.json``, where a node keeps the
revocations it holds so that it can write them back into a store that lost its data
after a restart (see ``parsec.auth.revocation``).

The document is ``{"format_version": 1, "entries": {key: [level, until]}}``; ``entries``
has the JSON form of a set of revocations, which is also what a node answers a
revocations survey with (:func:`wire`).

Guarantees:

- :func:`save` replaces the file atomically (a complete, fsync'ed temp file beside it,
  then ``os.replace``, the directory created if missing), so a reader sees the old
  entries or the new ones; no temp file is left. A failure is logged (WARNING on
  ``parsec.auth``), never raised: the entries stay in force in memory.
- :func:`read` returns nothing for a missing file (or no file at all) and raises
  ``PARSEC_INTERNAL`` for one that cannot be read or is not a revocations file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from parsec.auth.revocation_store import Revocation
from parsec.errors import ParsecError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FILE_NAME", "Entries", "read", "save", "wire"]

FILE_NAME: Final = "revocations.json"
"""The file in the state directory where a node keeps its revocations."""

log = logging.getLogger("parsec.auth")

_FILE_FORMAT: Final = 1

Entries = dict[str, tuple[int, int]]
"""The JSON form of revocations: key → ``(level, until)``."""


class _CacheFile(msgspec.Struct):
    format_version: int
    entries: Entries


def wire(entries: Mapping[str, Revocation]) -> Entries:
    """``entries`` in their JSON form."""
    return {key: (entry.level, entry.until) for key, entry in entries.items()}


def read(path: Path | None) -> dict[str, Revocation]:
    """The entries of the file at ``path``; none when ``path`` is None or missing.

    Raises:
        ParsecError: ``PARSEC_INTERNAL``, the file cannot be read or is not a
            revocations file.
    """
    if path is None:
        return {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ParsecError("PARSEC_INTERNAL", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = msgspec.json.decode(data, type=_CacheFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParsecError(
            "PARSEC_INTERNAL",
            f"{path} is not a revocations file ({exc}); move it away to start without it",
        ) from None
    return {key: Revocation(*value) for key, value in document.entries.items()}


def save(path: Path | None, entries: Mapping[str, Revocation]) -> None:
    """Write ``entries`` to the file at ``path`` (atomically); a failure is logged.
    Nothing happens when ``path`` is None."""
    if path is None:
        return
    data = msgspec.json.encode(_CacheFile(_FILE_FORMAT, wire(entries)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".revocations-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("revocations: cannot write %s: %s", path, exc.strerror)
