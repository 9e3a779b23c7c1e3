"""The JSON Web Key Set (RFC 7517) of a ring's public keys, served at ``/parsec/jwks.json``.

Only asymmetric keys that still verify (active and verify-only) are listed, as public keys:
an HMAC secret or a private key never appears. Each JWK has ``kid``, ``kty``, ``alg``,
``use: "sig"`` and its public parameters: ``n`` / ``e`` (RSA, RFC 7518 §6.3), ``crv`` / ``x``
/ ``y`` (EC, §6.2, coordinates padded to the curve size) or ``crv`` / ``x`` (Ed25519,
RFC 8037).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from parsec.auth.keyring import RETIRED

if TYPE_CHECKING:
    from parsec.auth.keyring import Key, KeyRing

__all__ = ["jwks", "public_jwk"]

_CURVES: Final = {"secp256r1": "P-256", "secp384r1": "P-384"}


def jwks(keyring: KeyRing) -> dict[str, object] | None:
    """``{"keys": [JWK, …]}`` of the ring's non-retired asymmetric keys, oldest first; None
    when it has none (the route then answers 404)."""
    usable = [key for key in keyring.keys() if key.asymmetric and key.role != RETIRED]
    return {"keys": [public_jwk(key) for key in usable]} if usable else None


def public_jwk(key: Key) -> dict[str, object]:
    """The public JWK of asymmetric ``key``.

    Raises:
        ValueError: ``key`` is an HMAC key, which has no public form.
    """
    if not key.asymmetric:
        raise ValueError(f"key {key.id} is {key.alg}: an HMAC key has no public JWK")
    public = key.private_key().public_key()
    head: dict[str, object] = {"kid": key.id, "alg": key.alg, "use": "sig"}
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {**head, "kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        return {
            **head,
            "kty": "EC",
            "crv": _CURVES[public.curve.name],
            "x": _b64(point.x.to_bytes(size, "big")),
            "y": _b64(point.y.to_bytes(size, "big")),
        }
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {**head, "kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    raise ValueError(f"key {key.id} holds a key type that has no JWK form here")


def _uint(value: int) -> str:
    """Base64url of ``value`` as big-endian bytes without leading zeros (RFC 7518 §2)."""
    return _b64(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
