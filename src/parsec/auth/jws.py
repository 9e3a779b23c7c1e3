"""Compact JWS (RFC 7515) signing and verification for every Parsec token.

:func:`sign` signs with one ring key; the header is ``{"alg": key.alg, "kid": key.id,
"typ": "JWT"}``. :func:`verify` accepts:

- a token with a ``kid`` header: signed by that key of the ring, with that key's ``alg`` and
  no other. An unknown or retired ``kid`` is an invalid token; active and verify-only keys
  verify.
- a token without ``kid``: signed with the shared secret (HS256, HS384 or HS512), so any
  backend that signs Centrifugo tokens with a shared secret works unchanged.

Algorithms: HS256/384/512 (HMAC), RS256 (RSASSA-PKCS1-v1_5), ES256 / ES384 (ECDSA P-256 /
P-384; the signature is raw ``r || s``, exactly twice the coordinate size, never DER) and
EdDSA (Ed25519). :func:`verify` checks the signature only: ``exp``, ``nbf``, ``iat`` and every
other claim are the caller's business.

Failures raise :class:`InvalidToken` with a stable ``code``; messages never contain a
secret. The token errors live here so that both this module and ``parsec.auth.tokens``
(which re-exports them) can raise them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from parsec.auth.keyring import RETIRED
from parsec.engine.tokens import MALFORMED, InvalidToken, TokenError, TokenExpired

if TYPE_CHECKING:
    from parsec.auth.keyring import Key, KeyRing

__all__ = [
    "SHARED_SECRET_ALGORITHMS",
    "InvalidToken",
    "TokenError",
    "TokenExpired",
    "sign",
    "unverified_header",
    "unverified_payload",
    "verify",
]

SHARED_SECRET_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
"""What a token without ``kid`` may be signed with."""

BAD_SIGNATURE: Final = "PARSEC_AUTH_INVALID_SIGNATURE"
BAD_ALG: Final = "PARSEC_AUTH_UNSUPPORTED_ALG"

_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]*")
_HMAC_DIGESTS: Final[dict[str, Callable[[], Any]]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}
_EC_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "ES256": hashes.SHA256,
    "ES384": hashes.SHA384,
}
_MAX_KID_SHOWN: Final = 40


# -- signing ----------------------------------------------------------------------------------


def sign(claims: Mapping[str, object], key: Key) -> str:
    """The compact JWS of ``claims`` signed by ``key`` (whatever its role or alg).

    Raises:
        ValueError: ``claims`` is not JSON-serialisable.
    """
    try:
        payload = msgspec.json.encode(claims)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(f"token claims are not JSON-serialisable: {exc}") from None
    header = msgspec.json.encode({"alg": key.alg, "kid": key.id, "typ": "JWT"})
    signing_input = f"{_b64(header)}.{_b64(payload)}".encode()
    return f"{signing_input.decode()}.{_b64(_signature(key, signing_input))}"


def _signature(key: Key, signing_input: bytes) -> bytes:
    if not key.asymmetric:
        return hmac.digest(key.secret, signing_input, _HMAC_DIGESTS[key.alg])
    private = key.private_key()
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private, ec.EllipticCurvePrivateKey):
        der = private.sign(signing_input, ec.ECDSA(_EC_HASHES[key.alg]()))
        r, s = decode_dss_signature(der)
        size = _coordinate_bytes(private.curve)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(signing_input)
    raise ValueError(f"key {key.id} holds a private key this build cannot sign with")


# -- verification -----------------------------------------------------------------------------


def verify(
    token: str, keyring: KeyRing | None, *, shared_secret: bytes | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, payload)`` of a well-formed token whose signature verifies.

    Does not look at ``exp``, ``nbf``, ``iat`` or any other claim.

    Raises:
        InvalidToken: the token is not a compact JWS with a JSON-object header and payload
            (``PARSEC_AUTH_MALFORMED``); its ``kid`` names no key of ``keyring`` or a retired
            one, it has no ``kid`` and no ``shared_secret`` is given, or its signature does
            not verify (``PARSEC_AUTH_INVALID_SIGNATURE``); its ``alg`` is not the key's (or
            not an HMAC one for the shared secret) (``PARSEC_AUTH_UNSUPPORTED_ALG``).
    """
    if not isinstance(token, str):
        raise InvalidToken("token must be a string", code=MALFORMED)
    encoded_header, encoded_payload, signature = _split(token)
    header = _json_object(_unb64(encoded_header, "header"), "header")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("token kid header must be a string", code=MALFORMED)
    alg = header.get("alg")
    signing_input = f"{encoded_header}.{encoded_payload}".encode()
    if kid is None:
        _verify_shared(alg, shared_secret, signing_input, signature)
    else:
        _verify_ring(alg, _ring_key(keyring, kid), signing_input, signature)
    payload = _json_object(_unb64(encoded_payload, "payload"), "payload")
    return header, payload


def unverified_header(token: str) -> dict[str, Any]:
    """The JSON-object header of ``token``, read without verifying anything else.

    Raises:
        InvalidToken: ``token`` is not a compact JWS with a JSON-object header
            (``PARSEC_AUTH_MALFORMED``).
    """
    return _unverified(token, "header")


def unverified_payload(token: str) -> dict[str, Any]:
    """The JSON-object payload of ``token``, read without verifying anything: only to
    decide which verifier to ask (its ``iss``), never to trust a claim.

    Raises:
        InvalidToken: ``token`` is not a compact JWS with a JSON-object payload
            (``PARSEC_AUTH_MALFORMED``).
    """
    return _unverified(token, "payload")


def _unverified(token: str, what: Literal["header", "payload"]) -> dict[str, Any]:
    if not isinstance(token, str):
        raise InvalidToken("token must be a string", code=MALFORMED)
    header, payload, _ = _split(token)
    return _json_object(_unb64(header if what == "header" else payload, what), what)


def _split(token: str) -> tuple[str, str, bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: not three dot-separated parts", code=MALFORMED)
    for part in parts:
        if not _SEGMENT.fullmatch(part):
            raise InvalidToken("malformed token: a part is not base64url", code=MALFORMED)
    return parts[0], parts[1], _unb64(parts[2], "signature")


def _unb64(segment: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        message = f"malformed token: the {what} is not base64url"
        raise InvalidToken(message, code=MALFORMED) from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise InvalidToken(f"token {what} is not JSON", code=MALFORMED) from None
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object", code=MALFORMED)
    return value


def _ring_key(keyring: KeyRing | None, kid: str) -> Key:
    key = None if keyring is None else keyring.get(kid)
    if key is None:
        shown = kid[:_MAX_KID_SHOWN]
        raise InvalidToken(f"token kid {shown!r} names no key", code=BAD_SIGNATURE)
    if key.role == RETIRED:
        raise InvalidToken(f"token kid {kid!r} names a retired key", code=BAD_SIGNATURE)
    return key


def _verify_shared(
    alg: object, secret: bytes | None, signing_input: bytes, signature: bytes
) -> None:
    if secret is None:
        raise InvalidToken(
            "token has no kid and no shared secret is configured", code=BAD_SIGNATURE
        )
    if not isinstance(alg, str) or alg not in SHARED_SECRET_ALGORITHMS:
        allowed = ", ".join(SHARED_SECRET_ALGORITHMS)
        raise InvalidToken(f"token alg is not one of {allowed}", code=BAD_ALG)
    expected = hmac.digest(secret, signing_input, _HMAC_DIGESTS[alg])
    if not hmac.compare_digest(expected, signature):
        raise InvalidToken("token signature does not verify", code=BAD_SIGNATURE)


def _verify_ring(alg: object, key: Key, signing_input: bytes, signature: bytes) -> None:
    if alg != key.alg:
        raise InvalidToken(f"token alg is not one of {key.alg}", code=BAD_ALG)
    if not _signature_verifies(key, signing_input, signature):
        raise InvalidToken("token signature does not verify", code=BAD_SIGNATURE)


def _signature_verifies(key: Key, signing_input: bytes, signature: bytes) -> bool:
    if not key.asymmetric:
        expected = hmac.digest(key.secret, signing_input, _HMAC_DIGESTS[key.alg])
        return hmac.compare_digest(expected, signature)
    public = key.private_key().public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(
                _der(signature, public.curve), signing_input, ec.ECDSA(_EC_HASHES[key.alg]())
            )
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, signing_input)
        else:
            return False
    except (InvalidSignature, _BadSignatureLength):
        return False
    return True


class _BadSignatureLength(Exception):
    """An ECDSA signature that is not exactly two coordinates long (DER, truncated, …)."""


def _der(raw: bytes, curve: ec.EllipticCurve) -> bytes:
    """The DER form of a raw ``r || s`` ECDSA signature of exactly ``2 * size`` bytes."""
    size = _coordinate_bytes(curve)
    if len(raw) != 2 * size:
        raise _BadSignatureLength
    return encode_dss_signature(
        int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    )


def _coordinate_bytes(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
