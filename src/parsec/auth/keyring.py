"""The KeyRing: the signing keys of connection and subscription tokens.

A ring holds N keys, each named by a ``kid`` (``"k-"`` + 12 hex digits) and in one of three
roles:

- ``active``: signs new tokens and verifies. Exactly one key is active.
- ``verify-only``: verifies tokens it signed earlier, signs nothing.
- ``retired``: verifies nothing. A retired key is never active again.

Rotation is ``generate()`` (the new key joins as verify-only, so every node can verify with it
before anyone signs with it), then ``promote(kid)`` (the old active key becomes verify-only,
so its tokens, and the connections they opened, stay valid), then ``retire(old)`` once its
tokens have expired.

Algorithms: ``HS256`` (a 32-byte HMAC secret), ``RS256`` (RSA 2048), ``ES256`` (P-256),
``ES384`` (P-384) and ``EdDSA`` (Ed25519); an asymmetric key is kept as its PKCS#8 PEM.

Persistence is ``<state_dir>/keyring.json`` in the Go Parsec's format 2 (format 1 is read
too, its keys being HS256)::

    {"format_version": "2", "active_key_id": "k-…",
     "keys": [{"id", "secret_hex"?, "role", "created_at" (RFC 3339), "retired_at"?, "alg",
               "private_pem"?}]}

An HMAC key has ``secret_hex`` and no ``private_pem``; an asymmetric key has an unencrypted
PKCS#8 ``private_pem`` whose key type (and curve) matches its ``alg``, and no ``secret_hex``.
Documents are decoded strictly: an unknown field is an error.

The directory is created 0700 and the file is written 0600, atomically (a temp file then
``os.replace``), so a reader sees the old ring or the new one, never half of one. Without a
state directory the ring lives in memory only, and a warning says so. The same document is
what :meth:`KeyRing.snapshot_json` exports and :meth:`KeyRing.import_json` merges in.

When several nodes share a keyring through a store (``parsec.auth.keyring_store``, e.g.
Redis), the store's document is the ring and :class:`parsec.auth.shared_keyring.SharedKeyRing`
keeps this ring in step with it (:meth:`KeyRing.from_json`, :meth:`KeyRing.replace_json`).
"""

from __future__ import annotations

import binascii
import dataclasses
import functools
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "ACTIVE",
    "RETIRED",
    "ROLES",
    "SUPPORTED_ALGORITHMS",
    "VERIFY_ONLY",
    "Key",
    "KeyRing",
    "KeyRingError",
]

ACTIVE: Final = "active"
VERIFY_ONLY: Final = "verify-only"
RETIRED: Final = "retired"
ROLES: Final = frozenset({ACTIVE, VERIFY_ONLY, RETIRED})

SUPPORTED_ALGORITHMS: Final = frozenset({"HS256", "RS256", "ES256", "ES384", "EdDSA"})
"""The ``alg`` values this build can generate, load, sign and verify with."""

FILE_NAME: Final = "keyring.json"
_FORMAT_VERSIONS: Final = frozenset({"1", "2"})
_WRITTEN_FORMAT: Final = "2"
_DEFAULT_ALG: Final = "HS256"
_MIN_SECRET_BYTES: Final = 32
_RSA_BITS: Final = 2048
_RSA_EXPONENT: Final = 65537
_EC_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
}
_PKCS8_HEADER: Final = b"-----BEGIN PRIVATE KEY-----"
_KID_HEX_DIGITS: Final = 12

logger = logging.getLogger("parsec.auth")


class KeyRingError(Exception):
    """A keyring file that cannot be used, an unknown ``kid`` or an illegal role change.

    The message names the file or key and says what is wrong; it never contains key material.
    ``code`` is the ``PARSEC_*`` code of the failure: ``PARSEC_KEY_NOT_FOUND`` (unknown
    ``kid``), ``PARSEC_KEY_ACTIVE`` (retiring the active key), ``PARSEC_INVALID_ARGUMENT``
    (an unsupported ``alg``, promoting a retired key, an import that is refused) or
    ``PARSEC_INTERNAL`` (the keyring file cannot be read, written or used).
    """

    def __init__(self, message: str, *, code: str = "PARSEC_INTERNAL") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Key:
    """One signing key; its material is kept out of ``repr`` so a logged key leaks nothing.

    An HMAC key (``HS256``) has its ``secret`` and an empty ``private_pem``; an asymmetric
    key has its PKCS#8 ``private_pem`` and an empty ``secret``.
    """

    id: str
    alg: str
    secret: bytes = dataclasses.field(repr=False)
    role: str
    created_at: datetime
    retired_at: datetime | None
    private_pem: bytes = dataclasses.field(default=b"", repr=False)

    @property
    def asymmetric(self) -> bool:
        """Whether the key is a private key (RS256, ES256, ES384, EdDSA), not an HMAC secret."""
        return bool(self.private_pem)

    def private_key(self) -> PrivateKeyTypes:
        """The parsed private key of an asymmetric key; parsed once per process and cached.

        Raises:
            ValueError: the key is an HMAC key.
        """
        if not self.private_pem:
            raise ValueError(f"key {self.id} is {self.alg}: it has no private key")
        return _load_private_key(self.private_pem)


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


@dataclass(frozen=True, slots=True)
class _State:
    """An immutable snapshot of a ring; every change builds a new one."""

    active_id: str
    keys: dict[str, Key]


class KeyRing:
    """The ring of signing keys, persisted in ``<state_dir>/keyring.json`` or kept in memory.

    Reads (``active``, ``get``, ``keys``) see one consistent snapshot. A change is written to
    disk before it is visible in memory, so a failed write (raised as :class:`KeyRingError`)
    leaves both as they were. A change re-reads the file first, so it does not overwrite
    what another process (``parsec keys …``) wrote since this ring last read it. The one
    exception is :meth:`replace_json`, which follows a shared store: there the file is only a
    cache, and the ring changes even when the file cannot be written.
    """

    def __init__(self, path: Path | None, state: _State) -> None:
        self._path = path
        self._state = state

    @classmethod
    def open(cls, state_dir: Path | None) -> KeyRing:
        """Load <state_dir>/keyring.json, creating dir (0700) + file (0600) with one fresh
        active HS256 key when absent.

        ``state_dir`` None gives an ephemeral ring with one fresh key and a WARNING on the
        ``parsec.auth`` logger: its tokens die with the process.

        Raises:
            KeyRingError: the directory cannot be created, or the file cannot be read or is
                not a valid keyring (the message names the file and the problem).
        """
        if state_dir is None:
            logger.warning(
                "no state directory is set, so the keyring is ephemeral: tokens signed now "
                "stop verifying when this process exits, and other processes cannot verify "
                "them. Set a state directory (AuthOptions.state_dir) to keep keys in "
                "<state_dir>/%s.",
                FILE_NAME,
            )
            return cls(None, _fresh_state())
        path = state_dir / FILE_NAME
        _ensure_directory(state_dir)
        try:
            state = _read(path)
        except FileNotFoundError:
            state = _create(path)
        return cls(path, state)

    @classmethod
    def adopt(cls, state_dir: Path, data: bytes) -> KeyRing:
        """Make a keyring document (another ring's snapshot) the whole ring of a state
        directory that has none yet: no fresh key of its own is added.

        Raises:
            KeyRingError: the document is not a valid keyring, the directory already has
                a keyring (merge into it with ``import_json``), or the file cannot be written.
        """
        incoming = _decode_document(data)
        path = state_dir / FILE_NAME
        _ensure_directory(state_dir)
        if path.exists() or _create(path, incoming) is not incoming:
            raise KeyRingError(
                f"{path} already exists; import merges into it instead",
                code="PARSEC_INVALID_ARGUMENT",
            )
        return cls(path, incoming)

    @classmethod
    def in_memory(cls) -> KeyRing:
        """A ring with one fresh active HS256 key, in memory only, without :meth:`open`'s
        warning: for a ring that a shared store fills (see ``parsec.auth.shared_keyring``)."""
        return cls(None, _fresh_state())

    @classmethod
    def from_json(cls, data: bytes, *, source: str = "the keyring document") -> KeyRing:
        """A ring in memory only holding exactly the keys of a keyring document.

        Raises:
            KeyRingError: ``PARSEC_INTERNAL``, the document is not a valid keyring; the
                message names ``source`` and the problem, never key material.
        """
        return cls(None, _parse(data, source))

    def replace_json(self, data: bytes, *, source: str = "the keyring document") -> None:
        """Make a keyring document the whole ring, as a node following a shared store does:
        keys the document lacks are dropped, the rest take the document's roles, in one step.

        A ring with a file rewrites it as a cache of the shared ring; a failed write is
        logged (WARNING on ``parsec.auth``) and the ring in memory changes anyway.

        Raises:
            KeyRingError: ``PARSEC_INTERNAL``, the document is not a valid keyring (the
                message names ``source``); the ring is left as it was.
        """
        state = _parse(data, source)
        self._state = state
        if self._path is None:
            return
        try:
            _write(self._path, state)
        except KeyRingError as exc:
            logger.warning("the keyring changed, but its cached copy was not written: %s", exc)

    @property
    def path(self) -> Path | None:
        """The keyring file, or None for an ephemeral ring."""
        return self._path

    @property
    def active(self) -> Key:
        """The key that signs new tokens."""
        state = self._state
        return state.keys[state.active_id]

    def get(self, kid: str) -> Key | None:
        """The key named ``kid`` whatever its role (retired included), or None."""
        return self._state.keys.get(kid)

    def keys(self) -> list[Key]:
        """Every key, retired ones included, oldest first."""
        return list(self._state.keys.values())

    def generate(self, alg: str = _DEFAULT_ALG) -> Key:
        """Create a key of ``alg`` with fresh material; it joins verify-only, and persists.

        HS256 gets a 32-byte secret, RS256 an RSA 2048 key, ES256 / ES384 a P-256 / P-384 key,
        EdDSA an Ed25519 key.

        Raises:
            KeyRingError: ``alg`` is not supported, or the file cannot be read or written.
        """
        _check_alg(alg, "cannot generate a key")
        state = self._latest()
        key = _new_key(alg, VERIFY_ONLY, taken=state.keys.keys())
        self._commit(_State(state.active_id, {**state.keys, key.id: key}))
        return key

    def promote(self, kid: str) -> None:
        """Make ``kid`` the active key; the previous active key becomes verify-only.

        Promoting the active key does nothing.

        Raises:
            KeyRingError: ``kid`` is unknown or retired, or the file cannot be read or
                written.
        """
        state = self._latest()
        key = _known(state, kid)
        if key.role == RETIRED:
            raise KeyRingError(
                f"cannot promote key {kid}: it is retired", code="PARSEC_INVALID_ARGUMENT"
            )
        if key.role == ACTIVE:
            return
        previous = state.keys[state.active_id]
        keys = {
            **state.keys,
            previous.id: dataclasses.replace(previous, role=VERIFY_ONLY),
            kid: dataclasses.replace(key, role=ACTIVE),
        }
        self._commit(_State(kid, keys))

    def retire(self, kid: str) -> None:
        """Retire ``kid`` now: tokens it signed stop verifying. Retiring twice does nothing.

        Raises:
            KeyRingError: ``kid`` is unknown or active, or the file cannot be read or
                written.
        """
        state = self._latest()
        key = _known(state, kid)
        if key.role == ACTIVE:
            raise KeyRingError(
                f"cannot retire key {kid}: it is the active key; promote another first",
                code="PARSEC_KEY_ACTIVE",
            )
        if key.role == RETIRED:
            return
        retired = dataclasses.replace(key, role=RETIRED, retired_at=datetime.now(UTC))
        self._commit(_State(state.active_id, {**state.keys, kid: retired}))

    def reload(self) -> None:
        """Re-read the file (no-op when ephemeral). On error the ring keeps its keys.

        Raises:
            KeyRingError: the file is missing, unreadable or not a valid keyring.
        """
        if self._path is None:
            return
        try:
            self._state = _read(self._path)
        except FileNotFoundError:
            raise KeyRingError(f"keyring file {self._path} does not exist") from None

    def snapshot_json(self) -> bytes:
        """The ring as a keyring.json document (format 2), as this ring last read or wrote it.

        The document holds every secret and private key: treat it like the file itself.
        """
        return _encode(self._state)

    def import_json(self, data: bytes, *, force: bool = False) -> list[str]:
        """Merge a keyring.json document (another ring's snapshot) into this ring; persists.

        The document's active key becomes the active key, so both rings sign alike. Every
        other key keeps verifying: a key only this ring has stays (a previously active one
        becomes verify-only), and a key in both takes the document's role, except that a
        key retired on either side stays retired.

        Returns:
            The ids of the document's keys, in document order.

        Raises:
            KeyRingError: the document is not a valid keyring; a key of the document has the
                id of a key of this ring but other material (unless ``force``, which then
                takes the document's key); the document's active key is retired here; or the
                file cannot be read or written.
        """
        incoming = _decode_document(data)
        state = self._latest()
        self._commit(_merge(state, incoming, force=force))
        return list(incoming.keys)

    def _latest(self) -> _State:
        if self._path is not None:
            self.reload()
        return self._state

    def _commit(self, state: _State) -> None:
        if self._path is not None:
            _write(self._path, state)
        self._state = state


def _fresh_state() -> _State:
    key = _new_key(_DEFAULT_ALG, ACTIVE, taken=())
    return _State(key.id, {key.id: key})


def _new_key(alg: str, role: str, *, taken: Collection[str]) -> Key:
    kid = _new_kid()
    while kid in taken:
        kid = _new_kid()
    asymmetric = alg != _DEFAULT_ALG
    return Key(
        id=kid,
        alg=alg,
        secret=b"" if asymmetric else secrets.token_bytes(_MIN_SECRET_BYTES),
        role=role,
        created_at=datetime.now(UTC),
        retired_at=None,
        private_pem=_new_private_pem(alg) if asymmetric else b"",
    )


def _new_private_pem(alg: str) -> bytes:
    """A fresh private key for asymmetric ``alg``, as unencrypted PKCS#8 PEM."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=_RSA_BITS)
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(_EC_CURVES[alg]())
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_kid() -> str:
    return "k-" + secrets.token_hex(_KID_HEX_DIGITS // 2)


def _known(state: _State, kid: str) -> Key:
    key = state.keys.get(kid)
    if key is None:
        raise KeyRingError(f"no key {kid!r} in the keyring", code="PARSEC_KEY_NOT_FOUND")
    return key


def _check_alg(alg: str, what: str) -> None:
    if alg not in SUPPORTED_ALGORITHMS:
        supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        raise KeyRingError(
            f"{what}: alg {alg!r} is not supported (supported: {supported})",
            code="PARSEC_INVALID_ARGUMENT",
        )


def _merge(local: _State, incoming: _State, *, force: bool) -> _State:
    """``local`` with ``incoming``'s keys and active key (see :meth:`KeyRing.import_json`)."""
    keys = dict(local.keys)
    for kid, key in incoming.keys.items():
        mine = keys.get(kid)
        if mine is not None and not _same_material(mine, key) and not force:
            raise KeyRingError(
                f"cannot import key {kid}: this keyring has a key with the same id but a "
                "different secret; use force to replace it",
                code="PARSEC_INVALID_ARGUMENT",
            )
        keys[kid] = key if mine is None or mine.role != RETIRED else mine
    if keys[incoming.active_id].role == RETIRED:
        raise KeyRingError(
            f"cannot import: its active key {incoming.active_id} is retired in this keyring",
            code="PARSEC_INVALID_ARGUMENT",
        )
    for kid, key in keys.items():
        if key.role == ACTIVE and kid != incoming.active_id:
            keys[kid] = dataclasses.replace(key, role=VERIFY_ONLY)
    return _State(incoming.active_id, keys)


def _same_material(one: Key, other: Key) -> bool:
    return (one.alg, one.secret, one.private_pem) == (other.alg, other.secret, other.private_pem)


# -- the file ---------------------------------------------------------------------------------


def _ensure_directory(state_dir: Path) -> None:
    if state_dir.is_dir():
        return
    try:
        state_dir.mkdir(mode=0o700, parents=True)
        state_dir.chmod(0o700)
    except OSError as exc:
        raise KeyRingError(f"cannot create state directory {state_dir}: {exc.strerror}") from None


def _decode_document(data: bytes) -> _State:
    try:
        return _decode(data)
    except (msgspec.DecodeError, _Invalid) as exc:
        raise KeyRingError(
            f"cannot import: not a valid keyring document: {exc}",
            code="PARSEC_INVALID_ARGUMENT",
        ) from None


def _create(path: Path, state: _State | None = None) -> _State:
    """Write ``state`` (default: a fresh ring) to ``path`` unless another process got
    there first.

    The file appears whole (hard link of a complete temp file) or not at all; when two
    processes race, both end up with the ring that won.
    """
    state = state or _fresh_state()
    temp = _write_temp(path, state)
    try:
        os.link(temp, path)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise KeyRingError(f"cannot create keyring file {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
    return state


def _write(path: Path, state: _State) -> None:
    temp = _write_temp(path, state)
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None


def _write_temp(path: Path, state: _State) -> Path:
    """A complete 0600 copy of ``state`` beside ``path``, flushed to disk."""
    try:
        fd, name = tempfile.mkstemp(prefix=".keyring-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_encode(state))
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyRingError(f"cannot write keyring file {path}: {exc.strerror}") from None
    return temp


def _encode(state: _State) -> bytes:
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


def _read(path: Path) -> _State:
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
    return _parse(data, f"keyring file {path}")


def _parse(data: bytes, source: str) -> _State:
    """Parse and validate a keyring document read from ``source`` (named in the error).

    Raises:
        KeyRingError: ``PARSEC_INTERNAL``, the document is not a usable ring.
    """
    try:
        return _decode(data)
    except (msgspec.DecodeError, _Invalid) as exc:
        raise KeyRingError(f"{source} is not a valid keyring: {exc}") from None


class _Invalid(Exception):
    """A problem inside a keyring document; ``_parse`` adds where it was read from."""


def _decode(data: bytes) -> _State:
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
    return _State(document.active_key_id, keys)


def _key(entry: _KeyEntry) -> Key:
    if not entry.id:
        raise _Invalid("a key has an empty id")
    where = f"key {entry.id!r}"
    alg = entry.alg or _DEFAULT_ALG
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
    if alg == _DEFAULT_ALG:
        if entry.private_pem:
            raise _Invalid(f"{where} is {alg} but has a private_pem; {alg} keys use secret_hex")
        return _secret(entry.secret_hex, where), b""
    if entry.secret_hex:
        raise _Invalid(f"{where} is {alg} but has a secret_hex; {alg} keys use private_pem")
    if not entry.private_pem:
        raise _Invalid(f"{where} is {alg} but has no private_pem")
    pem = entry.private_pem.encode()
    _check_private_key(pem, alg, where)
    return b"", pem


def _check_private_key(pem: bytes, alg: str, where: str) -> None:
    """Refuse a PEM that is not an unencrypted PKCS#8 private key of ``alg``'s type/curve."""
    if not pem.lstrip().startswith(_PKCS8_HEADER):
        raise _Invalid(f"{where} private_pem is not a PKCS#8 PEM (BEGIN PRIVATE KEY)")
    try:
        private = _load_private_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _Invalid(f"{where} private_pem is not an unencrypted PKCS#8 private key") from None
    if alg == "RS256":
        usable = isinstance(private, rsa.RSAPrivateKey) and private.key_size >= _RSA_BITS
        expected = f"an RSA key of at least {_RSA_BITS} bits"
    elif alg == "EdDSA":
        usable = isinstance(private, ed25519.Ed25519PrivateKey)
        expected = "an Ed25519 key"
    else:
        curve = _EC_CURVES[alg]
        usable = isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(
            private.curve, curve
        )
        expected = f"an EC key on curve {curve.name}"
    if not usable:
        raise _Invalid(f"{where} is {alg} but its private_pem is not {expected}")


@functools.lru_cache(maxsize=128)
def _load_private_key(pem: bytes) -> PrivateKeyTypes:
    """Parse an unencrypted PEM private key; cached, as checking an RSA key takes ~40 ms and
    every reload of the ring would repeat it."""
    return serialization.load_pem_private_key(pem, password=None)


def _secret(secret_hex: str, where: str) -> bytes:
    try:
        secret = binascii.unhexlify(secret_hex)
    except (binascii.Error, ValueError):
        raise _Invalid(f"{where} secret_hex is not hexadecimal") from None
    if len(secret) < _MIN_SECRET_BYTES:
        raise _Invalid(
            f"{where} secret is {len(secret)} bytes; at least {_MIN_SECRET_BYTES} are required"
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
