"""NATS JWTs (version 2): operator, account and user claims, signed with nkeys.

Built here on :mod:`parsec.backends.nats.keys` and the standard library rather than on
the ``nats-jwt`` package: a NATS JWT is a JSON header and payload, base64url without
padding, signed with Ed25519 over ``header.payload`` (``alg: ed25519-nkey``); the few
claims Parsec issues fit in a page, while ``nats-jwt`` 0.2.2 pulls in dataclasses-json,
marshmallow, pycryptodome and an upper-bounded pytz, and ships no type information.

What the functions guarantee:

* :func:`encode` signs any claims as nats-server and the Go ``jwt/v2`` library expect:
  ``jti`` is the base32 SHA-512/256 of the claims, ``iat`` is set, ``iss`` is the
  signer's public key.
* :func:`decode` verifies the signature against the ``iss`` the token names and
  returns the claims; it does not judge trust (who may issue what) nor expiry: the
  caller does (:func:`issuer`).
* :func:`account_claims` gives an account no limits (connections, subscriptions,
  payload, imports, exports: unlimited; JetStream off) and lists its signing keys;
  :func:`user_claims` gives a user publish / subscribe allow-lists (empty: anything).
* :func:`creds_file` is the standard ``.creds`` text native NATS clients read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from parsec.backends.nats.keys import InvalidKey, KeyRole, NKey, check_public_key

__all__ = [
    "InvalidJWT",
    "account_claims",
    "creds_file",
    "decode",
    "encode",
    "issuer",
    "operator_claims",
    "subject",
    "user_claims",
]

_HEADER: Final = {"typ": "JWT", "alg": "ed25519-nkey"}
UNLIMITED: Final = -1


class InvalidJWT(ValueError):
    """A string that is not a well-signed NATS JWT."""


def encode(claims: Mapping[str, Any], signer: NKey, *, issued_at: int) -> str:
    """``claims`` signed by ``signer``, issued at ``issued_at`` (Unix seconds)."""
    body = {key: value for key, value in claims.items() if key != "jti"}
    body["iat"] = issued_at
    body["iss"] = signer.public_key
    digest = hashlib.new("sha512_256", _json(body)).digest()
    body = {"jti": base64.b32encode(digest).decode().rstrip("="), **body}
    signed = f"{_b64(_json(_HEADER))}.{_b64(_json(body))}"
    return f"{signed}.{_b64(signer.sign(signed.encode()))}"


def decode(token: str) -> dict[str, Any]:
    """The claims of ``token`` once its signature by its ``iss`` is verified;
    :class:`InvalidJWT` otherwise."""
    parts = token.strip().split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise InvalidJWT("not a JWT (three dot-separated parts)")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, binascii.Error):
        raise InvalidJWT("not a JWT (bad base64url or JSON)") from None
    if not isinstance(header, dict) or header.get("alg") != _HEADER["alg"]:
        raise InvalidJWT("not a NATS JWT (alg is not ed25519-nkey)")
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise InvalidJWT("a NATS JWT without an issuer")
    if not _verified(claims["iss"], f"{parts[0]}.{parts[1]}".encode(), signature):
        raise InvalidJWT("the signature does not match the issuer")
    return claims


def issuer(token: str) -> str:
    """The public key that signed ``token`` (verified)."""
    return str(decode(token)["iss"])


def subject(token: str) -> str:
    """The public key ``token`` is about (its ``sub``, verified)."""
    return str(decode(token).get("sub", ""))


def operator_claims(
    operator: str, *, name: str, system_account: str, signing_keys: Sequence[str] = ()
) -> dict[str, Any]:
    """An operator's own claims (self-signed: encode them with the operator's key)."""
    nats: dict[str, Any] = {"system_account": system_account, "type": "operator", "version": 2}
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    return {"name": name, "sub": operator, "nats": nats}


def account_claims(account: str, *, name: str, signing_keys: Sequence[str] = ()) -> dict[str, Any]:
    """An account without limits, whose users may be signed by ``signing_keys``."""
    limits = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": UNLIMITED,
        "leaf": UNLIMITED,
    }
    nats: dict[str, Any] = {
        "limits": limits,
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    }
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    return {"name": name, "sub": account, "nats": nats}


def user_claims(
    user: str,
    *,
    name: str,
    account: str,
    allow_pub: Sequence[str] = (),
    allow_sub: Sequence[str] = (),
    expires_at: int | None = None,
) -> dict[str, Any]:
    """A user of ``account`` (set as ``issuer_account``: the claims are meant to be
    signed by one of its signing keys) who may publish to ``allow_pub`` and subscribe
    to ``allow_sub`` (empty: any subject)."""
    nats: dict[str, Any] = {
        "pub": {"allow": list(allow_pub)} if allow_pub else {},
        "sub": {"allow": list(allow_sub)} if allow_sub else {},
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "issuer_account": account,
        "type": "user",
        "version": 2,
    }
    claims: dict[str, Any] = {"name": name, "sub": user, "nats": nats}
    if expires_at is not None:
        claims["exp"] = expires_at
    return claims


def creds_file(user_jwt: str, user_seed: str) -> str:
    """The ``.creds`` text of a user (what ``nsc`` writes and every NATS client reads)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def _verified(public_key: str, data: bytes, signature: bytes) -> bool:
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    role = _role_of(public_key)
    if role is None:
        return False
    raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))[1:33]
    try:
        VerifyKey(raw).verify(data, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def _role_of(public_key: str) -> KeyRole | None:
    for role in KeyRole:
        try:
            check_public_key(public_key, role)
        except InvalidKey:
            continue
        return role
    return None


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
