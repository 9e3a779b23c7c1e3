"""The logins ``parsec login`` stores: a user access token (``psu_…``) per Parsec
server, the bearer of the accounts commands (``parsec orgs …``) for that server.

They live in their own file, ``logins.json`` beside the credentials file of ``parsec
login oidc`` (:mod:`parsec.client.credentials`, which is left as it is), so an OIDC
login and any number of server logins coexist. JSON, mode 0600, written atomically (a
temporary file in the same directory, then ``os.replace``); a directory it creates is
mode 0700::

    {"logins": {"https://parsec.example.com": {"server": "https://parsec.example.com",
                "access_token": "psu_…", "expires_at": 1767225600}}}

Servers are keyed without a trailing slash. What it raises: :class:`CredentialsError`
for a file that cannot be read, parsed or written (the message names the file, never a
token).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from parsec.client.credentials import CredentialsError

__all__ = ["FILE_NAME", "ServerLogin", "forget", "load", "lookup", "remember", "server_key"]

FILE_NAME: Final = "logins.json"


class ServerLogin(msgspec.Struct, frozen=True, kw_only=True):
    """One login at one Parsec server."""

    server: str
    access_token: str
    expires_at: int

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at <= (time.time() if now is None else now)


class _Logins(msgspec.Struct, kw_only=True):
    logins: dict[str, ServerLogin] = msgspec.field(default_factory=dict)


def server_key(server: str) -> str:
    """How ``server`` is keyed: without trailing slashes."""
    return server.rstrip("/")


def load(path: Path) -> dict[str, ServerLogin]:
    """Every login stored in ``path`` by server; empty when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(data, type=_Logins).logins
    except msgspec.DecodeError as exc:
        raise CredentialsError(f"{path} is not a Parsec logins file: {exc}") from None


def lookup(path: Path, server: str) -> ServerLogin | None:
    """The login stored for ``server``, expired or not; None when there is none."""
    return load(path).get(server_key(server))


def remember(path: Path, login: ServerLogin) -> None:
    """Store ``login`` (replacing the one of its server), keeping the others."""
    logins = load(path)
    logins[server_key(login.server)] = login
    _save(path, logins)


def forget(path: Path, server: str) -> bool:
    """Remove the login of ``server``; False when there was none. The file goes when
    it holds no login any more."""
    logins = load(path)
    if logins.pop(server_key(server), None) is None:
        return False
    if logins:
        _save(path, logins)
    else:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise CredentialsError(f"cannot delete {path}: {exc.strerror or exc}") from None
    return True


def _save(path: Path, logins: dict[str, ServerLogin]) -> None:
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:  # mkstemp made it 0600
            file.write(msgspec.json.format(msgspec.json.encode(_Logins(logins=logins))) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from None
