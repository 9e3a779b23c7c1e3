"""Key material: the algorithms a keyring supports, generating fresh material, and
checking the material a keyring document holds.

Guarantees:

- ``HS256`` material is a secret of at least :data:`MIN_SECRET_BYTES` (32) random bytes.
- Asymmetric material is an unencrypted PKCS#8 PEM private key whose type (and curve)
  matches its ``alg``: ``RS256`` an RSA key of at least 2048 bits (generated with exponent
  65537), ``ES256`` / ``ES384`` an EC key on P-256 / P-384, ``EdDSA`` an Ed25519 key.
- A kid is ``"k-"`` + 12 hex digits drawn from :mod:`secrets`.
- Errors name where the material was read from and what is wrong, never the material.

This module knows nothing of rings, roles or files: ``parsec.auth.keyring`` builds keys
from it, ``parsec.auth.keyring_file`` checks a document's keys with it.
"""

from __future__ import annotations

import functools
import secrets
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "DEFAULT_ALG",
    "MIN_SECRET_BYTES",
    "SUPPORTED_ALGORITHMS",
    "InvalidKeyMaterial",
    "check_private_key",
    "load_private_key",
    "new_kid",
    "new_private_pem",
    "new_secret",
]

SUPPORTED_ALGORITHMS: Final = frozenset({"HS256", "RS256", "ES256", "ES384", "EdDSA"})
"""The ``alg`` values this build can generate, load, sign and verify with."""

DEFAULT_ALG: Final = "HS256"
"""The one symmetric algorithm (an HMAC secret); every other one is a private key."""
MIN_SECRET_BYTES: Final = 32
_RSA_BITS: Final = 2048
_RSA_EXPONENT: Final = 65537
_EC_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
}
_PKCS8_HEADER: Final = b"-----BEGIN PRIVATE KEY-----"
_KID_HEX_DIGITS: Final = 12


class InvalidKeyMaterial(Exception):
    """Key material that is not usable; the message names where it was read from."""


def new_secret() -> bytes:
    """A fresh ``HS256`` secret."""
    return secrets.token_bytes(MIN_SECRET_BYTES)


def new_private_pem(alg: str) -> bytes:
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


def new_kid() -> str:
    return "k-" + secrets.token_hex(_KID_HEX_DIGITS // 2)


def check_private_key(pem: bytes, alg: str, where: str) -> None:
    """Refuse a PEM that is not an unencrypted PKCS#8 private key of ``alg``'s type/curve."""
    if not pem.lstrip().startswith(_PKCS8_HEADER):
        raise InvalidKeyMaterial(f"{where} private_pem is not a PKCS#8 PEM (BEGIN PRIVATE KEY)")
    try:
        private = load_private_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKeyMaterial(
            f"{where} private_pem is not an unencrypted PKCS#8 private key"
        ) from None
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
        raise InvalidKeyMaterial(f"{where} is {alg} but its private_pem is not {expected}")


@functools.lru_cache(maxsize=128)
def load_private_key(pem: bytes) -> PrivateKeyTypes:
    """Parse an unencrypted PEM private key; cached, as checking an RSA key takes ~40 ms and
    every reload of the ring would repeat it."""
    return serialization.load_pem_private_key(pem, password=None)
