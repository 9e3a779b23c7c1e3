"""The login ``parsec login oidc`` stores: an OpenID provider's ID token (the management
API's bearer), the refresh token that renews it and what renewing needs.

The file is JSON, mode 0600, written atomically (a temporary file in the same directory,
then ``os.replace``); a directory it creates is mode 0700::

    {"issuer": "...", "client_id": "...", "client_secret": null, "token_endpoint": "...",
     "id_token": "...", "refresh_token": "...", "expires_at": 1767225600}

``expires_at`` is the ID token's ``exp`` (Unix seconds). What it raises:
:class:`CredentialsError` for a file that cannot be read, parsed or written (the message
names the file, never a token).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

__all__ = ["FILE_NAME", "CredentialsError", "StoredLogin", "delete", "load", "save"]

FILE_NAME: Final = "credentials.json"
REFRESH_LEEWAY: Final = 30
"""Seconds before ``expires_at`` from which the ID token counts as expiring."""


class CredentialsError(Exception):
    """The credentials file cannot be read, parsed or written."""


class StoredLogin(msgspec.Struct, frozen=True, kw_only=True):
    """One login at an OpenID provider."""

    issuer: str
    client_id: str
    token_endpoint: str
    id_token: str
    expires_at: int
    refresh_token: str | None = None
    client_secret: str | None = None

    def expiring(self, leeway: float = REFRESH_LEEWAY, now: float | None = None) -> bool:
        """Whether the ID token expires within ``leeway`` seconds (or has expired)."""
        return self.expires_at - (time.time() if now is None else now) <= leeway


def load(path: Path) -> StoredLogin | None:
    """The login stored in ``path``, or None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(data, type=StoredLogin)
    except msgspec.DecodeError as exc:
        raise CredentialsError(f"{path} is not a Parsec credentials file: {exc}") from None


def save(path: Path, login: StoredLogin) -> None:
    """Write ``login`` to ``path`` atomically, readable by the owner only."""
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:  # mkstemp made it 0600
            file.write(msgspec.json.format(msgspec.json.encode(login)) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from None


def delete(path: Path) -> bool:
    """Remove ``path``; False when there was nothing to remove."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CredentialsError(f"cannot delete {path}: {exc.strerror or exc}") from None
    return True
