"""NATS nkeys: the Ed25519 keys of NATS's decentralised auth, typed.

An nkey is written as base32 text whose first letter says its role: ``O`` operator,
``A`` account, ``U`` user; a *seed* (the private half) starts with ``S`` followed by
the role (``SO…``, ``SA…``, ``SU…``). Both carry a CRC-16 checksum.

:func:`check_seed` and :func:`check_public_key` are pure Python (no nkeys, no nats-py),
so configuration can be validated without the ``nats`` extra; they check the role, the
length and the checksum (nkeys 0.2.1 checks no checksum when it decodes a seed, so a
mistyped seed would silently become another key). Messages never repeat a seed.
Signing uses the ``nkeys`` package (the ``nats`` extra), imported when first needed.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InvalidKey", "KeyRole", "NKey", "check_public_key", "check_seed"]

_SEED_PREFIX = 18 << 3
_SEED_RAW_LENGTH = 2 + 32 + 2
_PUBLIC_RAW_LENGTH = 1 + 32 + 2


class KeyRole(enum.Enum):
    """The role of a key, by its prefix byte (the letter its text starts with)."""

    OPERATOR = 14 << 3
    ACCOUNT = 0
    USER = 20 << 3

    @property
    def letter(self) -> str:
        return self.name[0]


class InvalidKey(ValueError):
    """Text that is not an nkey of the expected role; the message never shows a seed."""


@dataclass(frozen=True, slots=True)
class NKey:
    """A key pair: ``public_key`` (shareable) and ``seed`` (secret; left out of repr)."""

    role: KeyRole
    public_key: str
    seed: str = field(repr=False)

    @classmethod
    def create(cls, role: KeyRole) -> NKey:
        """A fresh random key pair of ``role``."""
        return cls.from_seed(_encode_seed(os.urandom(32), role), role)

    @classmethod
    def derived(cls, secret: NKey, label: str, role: KeyRole) -> NKey:
        """The key pair of ``role`` that ``secret`` and ``label`` always give (an
        HMAC-SHA256 of ``label`` keyed with ``secret``'s seed): every node holding
        ``secret`` derives the same key, and nobody without it can."""
        raw = hmac.new(check_seed(secret.seed, secret.role), label.encode(), "sha256").digest()
        return cls.from_seed(_encode_seed(raw, role), role)

    @classmethod
    def from_seed(cls, seed: str, role: KeyRole) -> NKey:
        """The key pair of ``seed``; :class:`InvalidKey` when it is not a seed of
        ``role``."""
        raw = check_seed(seed, role)
        del raw
        public: bytes = _nkeys_pair(seed.strip()).public_key
        return cls(role, public.decode(), seed.strip())

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` (64 bytes)."""
        signature: bytes = _nkeys_pair(self.seed).sign(data)
        return signature


def check_seed(seed: str, role: KeyRole) -> bytes:
    """The 32 raw bytes of ``seed`` if it is a valid seed of ``role`` (``S`` + the
    role's letter, base32, correct checksum); :class:`InvalidKey` otherwise."""
    expected = f"a seed of a NATS {role.name.lower()} (S{role.letter}…)"
    raw = _decode(seed, _SEED_RAW_LENGTH, expected)
    if raw[0] & 0xF8 != _SEED_PREFIX:
        raise InvalidKey(f"not {expected}: it does not start with S")
    found = ((raw[0] & 0x07) << 5) | ((raw[1] & 0xF8) >> 3)
    if found != role.value:
        raise InvalidKey(f"not {expected}: it is the seed of another kind of key")
    return raw[2:34]


def check_public_key(key: str, role: KeyRole) -> str:
    """``key`` if it is a valid public key of ``role``; :class:`InvalidKey` otherwise
    (public keys are not secret: the message shows it)."""
    expected = f"a NATS {role.name.lower()} public key ({role.letter}…)"
    raw = _decode(key, _PUBLIC_RAW_LENGTH, expected)
    if raw[0] != role.value:
        raise InvalidKey(f"{key!r} is not {expected}")
    return key


def _decode(text: str, length: int, expected: str) -> bytes:
    if not isinstance(text, str) or not text.strip().isascii():
        raise InvalidKey(f"not {expected}")
    body = text.strip().encode()
    try:
        raw = base64.b32decode(body + b"=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise InvalidKey(f"not {expected}: not base32") from None
    if len(raw) != length:
        raise InvalidKey(f"not {expected}: wrong length")
    if _crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise InvalidKey(f"not {expected}: bad checksum (mistyped or truncated?)")
    return raw


def _encode_seed(raw: bytes, role: KeyRole) -> str:
    header = bytes([_SEED_PREFIX | role.value >> 5, (role.value & 31) << 3])
    body = header + raw
    return base64.b32encode(body + _crc16(body).to_bytes(2, "little")).decode().rstrip("=")


def _nkeys_pair(seed: str) -> Any:
    import nkeys

    return nkeys.from_seed(seed.encode())


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM, as nkeys uses."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
