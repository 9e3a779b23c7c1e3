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

Persistence is ``<state_dir>/keyring.json`` in the Go Parsec's format 2, written 0600 and
atomically (``parsec.auth.keyring_file`` describes the document and what writing it
guarantees). Without a state directory the ring lives in memory only, and a warning says
so. The same document is what :meth:`KeyRing.snapshot_json` exports and
:meth:`KeyRing.import_json` merges in.

When several nodes share a keyring through a store (``parsec.auth.keyring_store``, e.g.
Redis), the store's document is the ring and :class:`parsec.auth.shared_keyring.SharedKeyRing`
keeps this ring in step with it (:meth:`KeyRing.from_json`, :meth:`KeyRing.replace_json`).

The ring is split by concept: :class:`Key`, its roles and :class:`KeyRingError` live in
``parsec.auth.keyring_model``, fresh and checked key material in
``parsec.auth.key_material``, the file in ``parsec.auth.keyring_file``; this module
re-exports their public names, so import them from here.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from parsec.auth import key_material, keyring_file
from parsec.auth.key_material import DEFAULT_ALG, SUPPORTED_ALGORITHMS
from parsec.auth.keyring_file import FILE_NAME
from parsec.auth.keyring_model import (
    ACTIVE,
    RETIRED,
    ROLES,
    VERIFY_ONLY,
    Key,
    KeyRingError,
    State,
)

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

__all__ = [
    "ACTIVE",
    "FILE_NAME",
    "RETIRED",
    "ROLES",
    "SUPPORTED_ALGORITHMS",
    "VERIFY_ONLY",
    "Key",
    "KeyRing",
    "KeyRingError",
]

logger = logging.getLogger("parsec.auth")


class KeyRing:
    """The ring of signing keys, persisted in ``<state_dir>/keyring.json`` or kept in memory.

    Reads (``active``, ``get``, ``keys``) see one consistent snapshot. A change is written to
    disk before it is visible in memory, so a failed write (raised as :class:`KeyRingError`)
    leaves both as they were. A change re-reads the file first, so it does not overwrite
    what another process (``parsec keys …``) wrote since this ring last read it. The one
    exception is :meth:`replace_json`, which follows a shared store: there the file is only a
    cache, and the ring changes even when the file cannot be written.
    """

    def __init__(self, path: Path | None, state: State) -> None:
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
        keyring_file.ensure_directory(state_dir)
        try:
            state = keyring_file.read(path)
        except FileNotFoundError:
            state = keyring_file.create(path, _fresh_state())
        return cls(path, state)

    @classmethod
    def adopt(cls, state_dir: Path, data: bytes) -> KeyRing:
        """Make a keyring document (another ring's snapshot) the whole ring of a state
        directory that has none yet: no fresh key of its own is added.

        Raises:
            KeyRingError: the document is not a valid keyring, the directory already has
                a keyring (merge into it with ``import_json``), or the file cannot be written.
        """
        incoming = keyring_file.decode_document(data)
        path = state_dir / FILE_NAME
        keyring_file.ensure_directory(state_dir)
        if path.exists() or keyring_file.create(path, incoming) is not incoming:
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
        return cls(None, keyring_file.parse(data, source))

    def replace_json(self, data: bytes, *, source: str = "the keyring document") -> None:
        """Make a keyring document the whole ring, as a node following a shared store does:
        keys the document lacks are dropped, the rest take the document's roles, in one step.

        A ring with a file rewrites it as a cache of the shared ring; a failed write is
        logged (WARNING on ``parsec.auth``) and the ring in memory changes anyway.

        Raises:
            KeyRingError: ``PARSEC_INTERNAL``, the document is not a valid keyring (the
                message names ``source``); the ring is left as it was.
        """
        state = keyring_file.parse(data, source)
        self._state = state
        if self._path is None:
            return
        try:
            keyring_file.write(self._path, state)
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

    def generate(self, alg: str = DEFAULT_ALG) -> Key:
        """Create a key of ``alg`` with fresh material; it joins verify-only, and persists.

        HS256 gets a 32-byte secret, RS256 an RSA 2048 key, ES256 / ES384 a P-256 / P-384 key,
        EdDSA an Ed25519 key.

        Raises:
            KeyRingError: ``alg`` is not supported, or the file cannot be read or written.
        """
        _check_alg(alg, "cannot generate a key")
        state = self._latest()
        key = _new_key(alg, VERIFY_ONLY, taken=state.keys.keys())
        self._commit(State(state.active_id, {**state.keys, key.id: key}))
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
        self._commit(State(kid, keys))

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
        self._commit(State(state.active_id, {**state.keys, kid: retired}))

    def reload(self) -> None:
        """Re-read the file (no-op when ephemeral). On error the ring keeps its keys.

        Raises:
            KeyRingError: the file is missing, unreadable or not a valid keyring.
        """
        if self._path is None:
            return
        try:
            self._state = keyring_file.read(self._path)
        except FileNotFoundError:
            raise KeyRingError(f"keyring file {self._path} does not exist") from None

    def snapshot_json(self) -> bytes:
        """The ring as a keyring.json document (format 2), as this ring last read or wrote it.

        The document holds every secret and private key: treat it like the file itself.
        """
        return keyring_file.encode(self._state)

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
        incoming = keyring_file.decode_document(data)
        state = self._latest()
        self._commit(_merge(state, incoming, force=force))
        return list(incoming.keys)

    def _latest(self) -> State:
        if self._path is not None:
            self.reload()
        return self._state

    def _commit(self, state: State) -> None:
        if self._path is not None:
            keyring_file.write(self._path, state)
        self._state = state


def _fresh_state() -> State:
    key = _new_key(DEFAULT_ALG, ACTIVE, taken=())
    return State(key.id, {key.id: key})


def _new_key(alg: str, role: str, *, taken: Collection[str]) -> Key:
    kid = key_material.new_kid()
    while kid in taken:
        kid = key_material.new_kid()
    asymmetric = alg != DEFAULT_ALG
    return Key(
        id=kid,
        alg=alg,
        secret=b"" if asymmetric else key_material.new_secret(),
        role=role,
        created_at=datetime.now(UTC),
        retired_at=None,
        private_pem=key_material.new_private_pem(alg) if asymmetric else b"",
    )


def _known(state: State, kid: str) -> Key:
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


def _merge(local: State, incoming: State, *, force: bool) -> State:
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
    return State(incoming.active_id, keys)


def _same_material(one: Key, other: Key) -> bool:
    return (one.alg, one.secret, one.private_pem) == (other.alg, other.secret, other.private_pem)
