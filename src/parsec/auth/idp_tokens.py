"""Tokens signed by an identity provider (Keycloak, Auth0, …): verified against the keys
of its JSON Web Key Set, as Centrifugo's ``token_jwks_public_endpoint``.

:class:`SigningKeys` is what the verifier needs from a key source
(:class:`parsec.auth.remote_jwks.RemoteJWKS` fetches one over HTTP); :func:`verify`
checks one token's signature with the key its ``kid`` names, with that key's algorithm
and no other. A key source never holds HMAC keys (``oct``, ``HS*``) or ``none``: an IdP
signs with its private keys and publishes the public ones.

Failures raise :class:`~parsec.engine.tokens.InvalidToken` with a stable code; a ``kid``
the source does not hold raises :class:`~parsec.engine.tokens.UnknownSigningKey`, which
the engine answers by refreshing the keys once (rate-limited) and asking again.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import jwt
import msgspec

from parsec.engine.tokens import MALFORMED, InvalidToken, UnknownSigningKey

__all__ = ["REFUSED_ALGORITHMS", "SigningKeys", "verify"]

REFUSED_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512", "none"})
"""Algorithms a key from an IdP's JWKS is never used with: shared secrets and no
signature at all."""

BAD_SIGNATURE: Final = "PARSEC_AUTH_INVALID_SIGNATURE"
BAD_ALG: Final = "PARSEC_AUTH_UNSUPPORTED_ALG"
_MAX_KID_SHOWN: Final = 40
_JWS: Final = jwt.PyJWS()


class SigningKeys(Protocol):
    """The public signing keys of an identity provider, by ``kid``.

    Guarantees: ``key`` is synchronous and does no I/O (it reads what is cached), so a
    token signed by a known key is verified without awaiting; it never returns a key
    whose algorithm is in :data:`REFUSED_ALGORITHMS`. ``refresh`` fetches the keys again
    unless a fetch ran less than the source's minimum interval ago (then it returns False
    at once); concurrent callers share one fetch; a failed fetch is logged, keeps the
    keys held before and returns False; it never raises for a failed fetch.
    """

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid`` names, or None when the source holds none by that id."""
        ...

    async def refresh(self) -> bool:
        """Fetch the keys again (rate-limited); whether a fetch succeeded."""
        ...


def verify(token: str, kid: str, keys: SigningKeys) -> dict[str, Any]:
    """The payload of ``token`` (whose header names ``kid``) once its signature verifies
    with that key of ``keys``, with the key's algorithm.

    Does not look at ``exp``, ``nbf``, ``iss``, ``aud`` or any other claim.

    Raises:
        UnknownSigningKey: ``keys`` holds no key ``kid``.
        InvalidToken: the token's ``alg`` is not the key's (``PARSEC_AUTH_UNSUPPORTED_ALG``),
            its signature does not verify (``PARSEC_AUTH_INVALID_SIGNATURE``), or its
            payload is not a JSON object (``PARSEC_AUTH_MALFORMED``).
    """
    key = keys.key(kid)
    if key is None:
        raise UnknownSigningKey(f"token kid {kid[:_MAX_KID_SHOWN]!r} names no key")
    alg = key.algorithm_name
    if alg in REFUSED_ALGORITHMS:  # a key source must not hold one; never trust it
        raise InvalidToken(f"token alg {alg} is not accepted from a JWKS", code=BAD_ALG)
    try:
        raw = _JWS.decode_complete(token, key.key, algorithms=[alg])["payload"]
    except jwt.InvalidAlgorithmError:
        raise InvalidToken(f"token alg is not {alg}, the key's", code=BAD_ALG) from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("token signature does not verify", code=BAD_SIGNATURE) from None
    except jwt.PyJWTError:
        raise InvalidToken("malformed token", code=MALFORMED) from None
    try:
        payload = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise InvalidToken("token payload is not JSON", code=MALFORMED) from None
    if not isinstance(payload, dict):
        raise InvalidToken("token payload is not a JSON object", code=MALFORMED)
    return payload
