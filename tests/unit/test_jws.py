"""Compact JWS: every alg signs and verifies, ECDSA is raw r||s, and forged tokens fail."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from parsec.auth import jws
from parsec.auth.jws import InvalidToken
from parsec.auth.keyring import Key, KeyRing

ALGS = ["HS256", "RS256", "ES256", "ES384", "EdDSA"]
SHARED = b"a-shared-secret-of-a-comfortable-length-for-every-hmac-alg-0123456789"
CLAIMS: dict[str, object] = {"sub": "alice", "chs": ["private:room"], "exp": 2_000_000_000}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_parts(token: str, *, header: object = None, signature: bytes | None = None) -> str:
    """``token`` with its header replaced (re-encoded JSON) and/or its signature replaced."""
    head, payload, sig = token.split(".")
    if header is not None:
        head = b64(json.dumps(header).encode())
    if signature is not None:
        sig = b64(signature)
    return f"{head}.{payload}.{sig}"


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    """One in-memory ring holding a verify-only key of every alg."""
    ring = KeyRing.open(None)
    for alg in ALGS[1:]:
        ring.generate(alg)
    return ring


def key_of(ring: KeyRing, alg: str) -> Key:
    keys = ring.keys()
    return next(key for key in keys if key.alg == alg)


@pytest.mark.parametrize("alg", ALGS)
def test_every_alg_round_trips(ring: KeyRing, alg: str) -> None:
    """A token signed by a key of each alg verifies to its header and claims."""
    key = key_of(ring, alg)
    header, payload = jws.verify(jws.sign(CLAIMS, key), ring)
    assert header == {"alg": alg, "kid": key.id, "typ": "JWT"}
    assert payload == CLAIMS


@pytest.mark.parametrize("alg", ALGS[1:])
def test_pyjwt_verifies_asymmetric_tokens(ring: KeyRing, alg: str) -> None:
    """An independent implementation (PyJWT) accepts our signatures with the public key."""
    key = key_of(ring, alg)
    public = serialization.load_pem_private_key(key.private_pem, password=None).public_key()
    decoded = jwt.decode(jws.sign(CLAIMS, key), public, algorithms=[alg])  # type: ignore[arg-type]
    assert decoded == CLAIMS


@pytest.mark.parametrize("alg", ALGS[1:])
def test_pyjwt_tokens_verify(ring: KeyRing, alg: str) -> None:
    """A token PyJWT signs with a ring key and its kid verifies here."""
    key = key_of(ring, alg)
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    token = jwt.encode(CLAIMS, private, algorithm=alg, headers={"kid": key.id})  # type: ignore[arg-type]
    assert jws.verify(token, ring)[1] == CLAIMS


@pytest.mark.parametrize(("alg", "size"), [("ES256", 32), ("ES384", 48)])
def test_ecdsa_signature_is_raw_r_s(ring: KeyRing, alg: str, size: int) -> None:
    """ES signatures are exactly two coordinates, r then s, and verify read as such."""
    key = key_of(ring, alg)
    signing_input, _, encoded = jws.sign(CLAIMS, key).rpartition(".")
    raw = unb64(encoded)
    assert len(raw) == 2 * size
    r, s = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
    private.public_key().verify(
        encode_dss_signature(r, s), signing_input.encode(), ec.ECDSA(digest)
    )


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
def test_der_ecdsa_signature_is_refused(ring: KeyRing, alg: str) -> None:
    """A valid signature in DER form (what OpenSSL emits) is not a JWS signature."""
    key = key_of(ring, alg)
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    token = jws.sign(CLAIMS, key)
    signing_input = token.rpartition(".")[0].encode()
    digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
    der = private.sign(signing_input, ec.ECDSA(digest))
    decode_dss_signature(der)  # it is a well-formed DER signature of the right input
    with pytest.raises(InvalidToken, match="signature does not verify") as raised:
        jws.verify(with_parts(token, signature=der), ring)
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
@pytest.mark.parametrize("change", [-1, 1])
def test_ecdsa_signature_of_wrong_length(ring: KeyRing, alg: str, change: int) -> None:
    """One byte more or less than 2 x coordinate size is an invalid signature."""
    token = jws.sign(CLAIMS, key_of(ring, alg))
    raw = unb64(token.rpartition(".")[2])
    forged = raw[:-1] if change < 0 else raw + b"\x00"
    with pytest.raises(InvalidToken, match="signature does not verify"):
        jws.verify(with_parts(token, signature=forged), ring)


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_payload_fails(ring: KeyRing, alg: str) -> None:
    """Swapping the payload of a signed token breaks its signature, for every alg."""
    head, _, signature = jws.sign(CLAIMS, key_of(ring, alg)).split(".")
    forged = b64(json.dumps({**CLAIMS, "sub": "admin"}).encode())
    with pytest.raises(InvalidToken) as raised:
        jws.verify(f"{head}.{forged}.{signature}", ring)
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_signature_fails(ring: KeyRing, alg: str) -> None:
    """Flipping one bit of the signature makes the token invalid, for every alg."""
    token = jws.sign(CLAIMS, key_of(ring, alg))
    raw = bytearray(unb64(token.rpartition(".")[2]))
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(InvalidToken, match="signature does not verify"):
        jws.verify(with_parts(token, signature=bytes(raw)), ring)


@pytest.mark.parametrize("alg", ALGS)
def test_alg_must_be_the_key_alg(ring: KeyRing, alg: str) -> None:
    """A header naming a ring key but another alg is refused before any verification."""
    token = jws.sign(CLAIMS, key_of(ring, alg))
    header = json.loads(unb64(token.split(".")[0]))
    other = "HS512" if alg == "HS256" else "HS256"
    with pytest.raises(InvalidToken, match="alg") as raised:
        jws.verify(with_parts(token, header={**header, "alg": other}), ring)
    assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


def test_hmac_with_public_key_confusion_is_refused(ring: KeyRing) -> None:
    """The classic attack: HS256 keyed with an RS256 key's public PEM, under its kid."""
    key = key_of(ring, "RS256")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged_key = Key(key.id, "HS256", public_pem, "active", key.created_at, None)
    with pytest.raises(InvalidToken) as raised:
        jws.verify(jws.sign(CLAIMS, forged_key), ring)
    assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


def test_signature_from_another_key_of_the_same_alg(ring: KeyRing) -> None:
    """A token signed by a stranger's ES256 key under one of our kids fails."""
    ours = key_of(ring, "ES256")
    stranger = KeyRing.open(None).generate("ES256")
    impostor = Key(
        ours.id, "ES256", b"", "active", ours.created_at, None, private_pem=stranger.private_pem
    )
    forged = jws.sign(CLAIMS, impostor)
    with pytest.raises(InvalidToken, match="signature does not verify"):
        jws.verify(forged, ring)


def test_retired_and_verify_only_keys(tmp_path: Path) -> None:
    """Verify-only keys verify; once retired, their tokens are refused as a bad signature."""
    ring = KeyRing.open(tmp_path)
    old = ring.active
    old_token = jws.sign(CLAIMS, old)
    new = ring.generate("EdDSA")
    ring.promote(new.id)
    assert jws.verify(old_token, ring)[1] == CLAIMS
    ring.retire(old.id)
    with pytest.raises(InvalidToken, match="retired") as raised:
        jws.verify(old_token, ring)
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


def test_unknown_kid_and_no_ring(ring: KeyRing) -> None:
    """A kid that is not in the ring, or a verifier with no ring, is a bad signature."""
    token = jws.sign(CLAIMS, KeyRing.open(None).active)
    for keyring in (ring, None):
        with pytest.raises(InvalidToken, match="names no key") as raised:
            jws.verify(token, keyring)
        assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


def test_long_unknown_kid_is_cut_in_the_message(ring: KeyRing) -> None:
    """An attacker-sized kid is not echoed in full."""
    token = with_parts(jws.sign(CLAIMS, ring.active), header={"alg": "HS256", "kid": "k" * 500})
    with pytest.raises(InvalidToken) as raised:
        jws.verify(token, ring)
    assert "k" * 41 not in str(raised.value)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_shared_secret_without_kid(ring: KeyRing, alg: str) -> None:
    """Without kid, HS256/384/512 with the shared secret verify."""
    token = jwt.encode(CLAIMS, SHARED, algorithm=alg)
    header, payload = jws.verify(token, ring, shared_secret=SHARED)
    assert header["alg"] == alg
    assert payload == CLAIMS


def test_shared_secret_refuses_asymmetric_algs(ring: KeyRing) -> None:
    """Without kid, only HMAC algs are accepted, so a public key cannot be abused."""
    key = key_of(ring, "ES256")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    token = jwt.encode(CLAIMS, private, algorithm="ES256")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken, match="alg is not one of HS256, HS384, HS512") as raised:
        jws.verify(token, ring, shared_secret=SHARED)
    assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


def test_no_kid_without_shared_secret(ring: KeyRing) -> None:
    """A kid-less token with no shared secret configured is refused."""
    with pytest.raises(InvalidToken, match="no shared secret"):
        jws.verify(jwt.encode(CLAIMS, SHARED, algorithm="HS256"), ring)


def test_wrong_shared_secret(ring: KeyRing) -> None:
    """A kid-less token signed with another secret fails and shows neither secret."""
    other = b"another-secret-that-is-long-enough-for-hs256-0123456789"
    with pytest.raises(InvalidToken) as raised:
        jws.verify(jwt.encode(CLAIMS, other, algorithm="HS256"), ring, shared_secret=SHARED)
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"
    assert SHARED.decode() not in str(raised.value)
    assert other.decode() not in str(raised.value)


def test_alg_none_is_refused(ring: KeyRing) -> None:
    """An unsigned token is refused with or without a kid."""
    for headers in (None, {"kid": ring.active.id}):
        token = jwt.encode(CLAIMS, "", algorithm="none", headers=headers)
        with pytest.raises(InvalidToken) as raised:
            jws.verify(token, ring, shared_secret=SHARED)
        assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "three dot-separated parts"),
        ("a.b", "three dot-separated parts"),
        ("a.b.c.d", "three dot-separated parts"),
        ("é.e30.c2ln", "not base64url"),
        ("eyJ+.e30.c2ln", "not base64url"),
        ("a.e30.c2ln", "header is not base64url"),
        ("bm90IGpzb24.e30.c2ln", "header is not JSON"),
        ("W10.e30.c2ln", "header is not a JSON object"),
        (b64(b"[" * 100_000) + ".e30.c2ln", "header is not JSON"),
        ("eyJhbGciOiJIUzI1NiIsImtpZCI6MX0.e30.c2ln", "kid header must be a string"),
    ],
)
def test_malformed_tokens(ring: KeyRing, token: str, problem: str) -> None:
    """Strings that are not compact JWS raise InvalidToken MALFORMED, never anything else."""
    with pytest.raises(InvalidToken, match=problem) as raised:
        jws.verify(token, ring, shared_secret=SHARED)
    assert raised.value.code == "PARSEC_AUTH_MALFORMED"


def test_non_string_token(ring: KeyRing) -> None:
    """A token that is not a string is malformed, not a crash."""
    with pytest.raises(InvalidToken, match="must be a string"):
        jws.verify(42, ring)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "problem"), [(b"not json", "not JSON"), (b"[1]", "not a JSON object")]
)
def test_signed_payload_that_is_not_an_object(ring: KeyRing, payload: bytes, problem: str) -> None:
    """A correctly signed payload that is not a JSON object is malformed."""
    token = jwt.PyJWS().encode(payload, SHARED, algorithm="HS256")
    with pytest.raises(InvalidToken, match=f"payload is {problem}"):
        jws.verify(token, ring, shared_secret=SHARED)


def test_payload_is_only_read_after_the_signature(ring: KeyRing) -> None:
    """A forged token with a garbage payload reports the signature, not the payload."""
    head, _, signature = jws.sign(CLAIMS, ring.active).split(".")
    with pytest.raises(InvalidToken, match="signature does not verify"):
        jws.verify(f"{head}.{b64(b'garbage')}.{signature}", ring)


@pytest.mark.parametrize("claims", [{"when": object()}, {"z": 1 + 2j}, {"m": {(1, 2): 3}}])
def test_sign_refuses_non_json_claims(ring: KeyRing, claims: dict[str, Any]) -> None:
    """Claims that are not JSON-serialisable raise ValueError."""
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        jws.sign(claims, ring.active)
