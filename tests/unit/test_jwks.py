"""JWKS: public keys of asymmetric, non-retired keys only, usable by a standard JWT library."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from parsec.auth import jws
from parsec.auth.jwks import jwks, public_jwk
from parsec.auth.keyring import Key, KeyRing

ASYMMETRIC = ["RS256", "ES256", "ES384", "EdDSA"]
CLAIMS: dict[str, object] = {"sub": "alice", "exp": 2_000_000_000}
PRIVATE_PARAMETERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    """An in-memory ring: its HS256 active key plus a verify-only key of every asymmetric alg."""
    ring = KeyRing.open(None)
    for alg in ASYMMETRIC:
        ring.generate(alg)
    return ring


def asymmetric(ring: KeyRing) -> list[Key]:
    keys = ring.keys()
    return [key for key in keys if key.asymmetric]


def test_hmac_only_ring_has_no_jwks() -> None:
    """A ring with only HMAC keys publishes nothing (the route answers 404)."""
    ring = KeyRing.open(None)
    ring.generate("HS256")
    assert jwks(ring) is None


def test_jwks_lists_asymmetric_keys_in_order(ring: KeyRing) -> None:
    """Each asymmetric key appears once, oldest first, with kid, alg and use sig."""
    document = jwks(ring)
    assert document is not None
    entries = document["keys"]
    assert isinstance(entries, list)
    assert [(entry["kid"], entry["alg"]) for entry in entries] == [
        (key.id, key.alg) for key in asymmetric(ring)
    ]
    assert all(entry["use"] == "sig" for entry in entries)


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("RS256", {"kty": "RSA", "fields": {"n", "e"}}),
        ("ES256", {"kty": "EC", "crv": "P-256", "fields": {"x", "y"}, "size": 32}),
        ("ES384", {"kty": "EC", "crv": "P-384", "fields": {"x", "y"}, "size": 48}),
        ("EdDSA", {"kty": "OKP", "crv": "Ed25519", "fields": {"x"}, "size": 32}),
    ],
)
def test_jwk_shape(ring: KeyRing, alg: str, expected: dict[str, object]) -> None:
    """Each key type has exactly RFC 7517/7518/8037's public members, nothing private."""
    key = next(key for key in asymmetric(ring) if key.alg == alg)
    entry = public_jwk(key)
    assert entry["kty"] == expected["kty"]
    assert entry.get("crv") == expected.get("crv")
    fields = expected["fields"]
    assert isinstance(fields, set)
    assert set(entry) == {"kid", "kty", "alg", "use"} | fields | (
        {"crv"} if "crv" in entry else set()
    )
    assert not PRIVATE_PARAMETERS & set(entry)
    if "size" in expected:
        for name in fields:
            value = entry[name]
            assert isinstance(value, str)
            assert "=" not in value
            assert len(jwt.utils.base64url_decode(value)) == expected["size"]


def test_rsa_exponent_is_minimal(ring: KeyRing) -> None:
    """e is 65537 as the three bytes AQAB, with no leading zero byte."""
    key = next(key for key in asymmetric(ring) if key.alg == "RS256")
    assert public_jwk(key)["e"] == "AQAB"


def test_no_secret_material_anywhere(ring: KeyRing) -> None:
    """Neither an HMAC secret nor any part of a private PEM appears in the document."""
    text = json.dumps(jwks(ring))
    keys = ring.keys()
    for key in keys:
        if key.asymmetric:
            for line in key.private_pem.decode().splitlines()[1:-1]:
                assert line not in text
        else:
            assert key.secret.hex() not in text
            assert jwt.utils.base64url_encode(key.secret).decode() not in text
    assert '"oct"' not in text


def test_hmac_key_has_no_public_jwk(ring: KeyRing) -> None:
    """Asking for the JWK of an HMAC key is a ValueError, not a leak."""
    with pytest.raises(ValueError, match="HMAC key has no public JWK"):
        public_jwk(ring.active)


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_pyjwkset_verifies_our_tokens(ring: KeyRing, alg: str) -> None:
    """PyJWT's PyJWKSet, fed the JSON document, verifies a token signed by the ring."""
    key = next(key for key in asymmetric(ring) if key.alg == alg)
    token = jws.sign(CLAIMS, key)
    key_set = jwt.PyJWKSet.from_json(json.dumps(jwks(ring)))
    signing_key = key_set[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, signing_key, algorithms=[alg]) == CLAIMS


def test_pyjwkset_refuses_a_forged_token(ring: KeyRing) -> None:
    """The published key does not verify a token signed by a stranger under the same kid."""
    ours = next(key for key in asymmetric(ring) if key.alg == "ES256")
    stranger = KeyRing.open(None).generate("ES256")
    impostor = Key(
        ours.id, "ES256", b"", "active", ours.created_at, None, private_pem=stranger.private_pem
    )
    key_set = jwt.PyJWKSet.from_json(json.dumps(jwks(ring)))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(jws.sign(CLAIMS, impostor), key_set[ours.id], algorithms=["ES256"])


def test_retired_keys_leave_the_set(tmp_path: Path) -> None:
    """A retired key is dropped; when none is left, there is no JWKS at all."""
    ring = KeyRing.open(tmp_path)
    hmac_key = ring.active
    key = ring.generate("EdDSA")
    ring.promote(key.id)
    ring.retire(hmac_key.id)
    document = jwks(ring)
    assert document is not None
    assert [entry["kid"] for entry in document["keys"]] == [key.id]  # type: ignore[attr-defined]
    ring.promote(ring.generate("HS256").id)
    ring.retire(key.id)
    assert jwks(ring) is None
