"""The keyring file: ``<state_dir>/keyring.json``, read, validated, encoded and written.

The document is the Go Parsec's format 2 (format 1 is read too, its keys being HS256)::

    {"format_version": "2", "active_key_id": "k-…",
     "keys": [{"id", "secret_hex"?, "role", "created_at" (RFC 3339), "retired_at"?, "alg",
               "private_pem"?}]}

Guarantees:

- Reading accepts format ``"1"`` and ``"2"``; writing always produces format ``"2"``.
- Documents are decoded strictly: an unknown field, a duplicate ``id``, a role other than
  ``active`` / ``verify-only`` / ``retired``, an ``alg`` this build does not support, or
  anything but exactly one active key (named by ``active_key_id``) is an error.
- An HMAC key has ``secret_hex`` (at least 32 bytes) and no ``private_pem``; an asymmetric
  key has an unencrypted PKCS#8 ``private_pem`` whose key type (and curve) matches its
  ``alg`` (see ``parsec.auth.key_material``), and no ``secret_hex``.
- Times are written as RFC 3339 in UTC with ``Z``, as Go's ``RFC3339Nano``; a time read
  must carry a UTC offset.
- The state directory is created 0700 and the file written 0600, atomically: a complete,
  fsync'ed temp file beside it, then ``os.replace`` (or, for a file that must not exist
  yet, a hard link, so that of two racing creators both end with the ring that won). A
  reader sees the old ring or the new one, never half of one, and no temp file is left.
- Every failure is a :class:`~parsec.auth.keyring.KeyRingError` naming the file (or the
  document's source) and the problem, never key material.
"""

from __future__ import annotations

import binascii
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from parsec.auth.key_material import (
    DEFAULT_ALG,
    MIN_SECRET_BYTES,
    SUPPORTED_ALGORITHMS,
    InvalidKeyMaterial,
    check_private_key,
)
from parsec.auth.keyring_model import ACTIVE, ROLES, Key, KeyRingError, State

__all__ = [
    "FILE_NAME",
    "create",
    "decode_document",
    "encode",
    "ensure_directory",
    "parse",
    "read",
    "write",
]

FILE_NAME: Final = "keyring.json"
_FORMAT_VERSIONS: Final = frozenset({"1", "2"})
_WRITTEN_FORMAT: Final = "2"


class _KeyEntry(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, kw_only=True):
    id: str
    secret_hex: str = ""
    role: str
    created_at: str
    retired_at: str | None = None
    alg: str = ""
    private_pem: str = ""


class _KeyRingFile(msgspec.Struct, forbid_unknown_fields=True):
    format_version: str
    active_key_id: str
    keys: list[_KeyEntry]


class _FormatProbe(msgspec.Struct):
    format_version: str


def ensure_directory(state_dir: Path) -> None:
    """Create ``state_dir`` (0700, parents too) unless it is a directory already.

    Safe to call from several processes at once (``--workers N``).
    """
    if state_dir.is_dir():
        return
    try:
        # exist_ok: another worker of the same server may create it between the
        # check above and this call; losing that race is not an error.
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        state_dir.chmod(0o700)
    except OSError as exc:
        raise KeyRingError(f"cannot create state directory {state_dir}: {exc.strerror}") from None


def decode_document(data: bytes) -> State:
    """Decode a document handed in for import or adoption.

    Raises:
        KeyRingError: ``PARSEC_INVALID_ARGUMENT``, the document is not a usable ring.
    """
    try:
        return _decode(data)
    except (msgspec.DecodeError, _Invalid, InvalidKeyMaterial) as exc:
        raise KeyRingError(
            f"cannot import: not a valid keyring document: {exc}",
            code="PARSEC_INVALID_ARGUMENT",
        ) from None


def create(path: Path, state: State) -> State:
    """Write ``state`` to ``path`` unless another process got there first; the ring
    ``path`` then holds.

    The file appears whole (hard link of a complete temp file) or not at all; when two
    processes race, both end up with the ring that won.
    """
    temp = _write_temp(path, state)
    try:
        os.link(temp, path)
    except FileExistsError:
        return read(path)
    except OSError as exc:
        raise KeyRingError(f"cannot create keyring file {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
    return state


def write(path: Path, state: State) -> None:
    """Replace ``path`` with ``state``, atomically."""
    temp = _write_temp(path, state)
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None


def _write_temp(path: Path, state: State) -> Path:
    """A complete 0600 copy of ``state`` beside ``path``, flushed to disk."""
    try:
        fd, name = tempfile.mkstemp(prefix=".keyring-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(encode(state))
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None
    return temp


def encode(state: State) -> bytes:
    document = _KeyRingFile(
        format_version=_WRITTEN_FORMAT,
        active_key_id=state.active_id,
        keys=[_entry(key) for key in state.keys.values()],
    )
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def _entry(key: Key) -> _KeyEntry:
    return _KeyEntry(
        id=key.id,
        secret_hex=key.secret.hex(),
        role=key.role,
        created_at=_format_time(key.created_at),
        retired_at=None if key.retired_at is None else _format_time(key.retired_at),
        alg=key.alg,
        private_pem=key.private_pem.decode(),
    )


def read(path: Path) -> State:
    """Parse and validate ``path``.

    Raises:
        FileNotFoundError: there is no file (the caller decides whether that is an error).
        KeyRingError: anything else that stops the file from being a usable ring.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyRingError(f"cannot read keyring file {path}: {exc.strerror}") from None
    return parse(data, f"keyring file {path}")


def parse(data: bytes, source: str) -> State:
    """Parse and validate a keyring document read from ``source`` (named in the error).

    Raises:
        KeyRingError: ``PARSEC_INTERNAL``, the document is not a usable ring.
    """
    try:
        return _decode(data)
    except (msgspec.DecodeError, _Invalid, InvalidKeyMaterial) as exc:
        raise KeyRingError(f"{source} is not a valid keyring: {exc}") from None


class _Invalid(Exception):
    """A problem inside a keyring document; ``parse`` adds where it was read from."""


def _decode(data: bytes) -> State:
    version = msgspec.json.decode(data, type=_FormatProbe).format_version
    if version not in _FORMAT_VERSIONS:
        supported = ", ".join(sorted(_FORMAT_VERSIONS))
        raise _Invalid(f"format_version {version!r} is not supported (supported: {supported})")
    document = msgspec.json.decode(data, type=_KeyRingFile)
    keys: dict[str, Key] = {}
    for entry in document.keys:
        if entry.id in keys:
            raise _Invalid(f"key {entry.id!r} appears twice")
        keys[entry.id] = _key(entry)
    _check_active(document.active_key_id, keys)
    return State(document.active_key_id, keys)


def _key(entry: _KeyEntry) -> Key:
    if not entry.id:
        raise _Invalid("a key has an empty id")
    where = f"key {entry.id!r}"
    alg = entry.alg or DEFAULT_ALG
    if alg not in SUPPORTED_ALGORITHMS:
        supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        raise _Invalid(
            f"{where} uses alg {alg!r}, which this build does not support (supported: {supported})"
        )
    if entry.role not in ROLES:
        raise _Invalid(
            f"{where} has role {entry.role!r} (expected one of: {', '.join(sorted(ROLES))})"
        )
    secret, private_pem = _material(entry, alg, where)
    return Key(
        id=entry.id,
        alg=alg,
        secret=secret,
        role=entry.role,
        created_at=_parse_time(entry.created_at, f"{where} created_at"),
        retired_at=_optional_time(entry.retired_at, f"{where} retired_at"),
        private_pem=private_pem,
    )


def _material(entry: _KeyEntry, alg: str, where: str) -> tuple[bytes, bytes]:
    """``(secret, private_pem)`` of an entry: one of them, as its ``alg`` requires."""
    if alg == DEFAULT_ALG:
        if entry.private_pem:
            raise _Invalid(f"{where} is {alg} but has a private_pem; {alg} keys use secret_hex")
        return _secret(entry.secret_hex, where), b""
    if entry.secret_hex:
        raise _Invalid(f"{where} is {alg} but has a secret_hex; {alg} keys use private_pem")
    if not entry.private_pem:
        raise _Invalid(f"{where} is {alg} but has no private_pem")
    pem = entry.private_pem.encode()
    check_private_key(pem, alg, where)
    return b"", pem


def _secret(secret_hex: str, where: str) -> bytes:
    try:
        secret = binascii.unhexlify(secret_hex)
    except (binascii.Error, ValueError):
        raise _Invalid(f"{where} secret_hex is not hexadecimal") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise _Invalid(
            f"{where} secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required"
        )
    return secret


def _check_active(active_id: str, keys: dict[str, Key]) -> None:
    if not keys:
        raise _Invalid("it has no keys")
    actives = [key.id for key in keys.values() if key.role == ACTIVE]
    if len(actives) != 1:
        raise _Invalid(f"exactly one key must have role active, found {len(actives)}")
    if active_id != actives[0]:
        raise _Invalid(
            f"active_key_id {active_id!r} is not the key whose role is active ({actives[0]!r})"
        )


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid(f"{what} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise _Invalid(f"{what} {text!r} has no UTC offset")
    return moment


def _optional_time(text: str | None, what: str) -> datetime | None:
    return None if text is None else _parse_time(text, what)


def _format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and no trailing fractional zeros, as Go's RFC3339Nano."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"
