"""RemoteJWKS against a real local OpenID provider: cache, refetch on demand with a rate
limit, shared fetches, refresh after a max age, failures that keep the last keys, and
documents or keys that are refused."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from oidc_provider import OIDCProvider, SigningKey
from waiting import until

from parsec.auth import idp_tokens
from parsec.auth.idp_tokens import SigningKeys
from parsec.auth.remote_jwks import FETCH_FAILED, KEY_IGNORED, JWKSError, RemoteJWKS, parse_jwks
from parsec.auth.tokens import TokenVerifier
from parsec.engine.tokens import InvalidToken, KeyRefresher, UnknownSigningKey


@pytest.fixture
async def jwks(idp: OIDCProvider) -> AsyncIterator[RemoteJWKS]:
    async with RemoteJWKS(idp.jwks_url, min_interval=0.3, max_age=60) as source:
        yield source


async def test_start_fetches_the_keys_once(idp: OIDCProvider, jwks: RemoteJWKS) -> None:
    """Starting fetches the document; known kids are then read from the cache."""
    assert jwks.kids == {idp.active.kid}
    for _ in range(5):
        key = jwks.key(idp.active.kid)
        assert key is not None
        assert key.algorithm_name == "RS256"
    assert idp.jwks_requests == 1


async def test_a_token_verifies_with_the_cached_key(idp: OIDCProvider, jwks: RemoteJWKS) -> None:
    """A token signed by the provider verifies; its payload is returned as signed."""
    payload = idp_tokens.verify(idp.access_token("bob"), idp.active.kid, jwks)
    assert payload["preferred_username"] == "bob"
    assert payload["typ"] == "Bearer"


async def test_unknown_kid_refetches_once_per_interval(idp: OIDCProvider, jwks: RemoteJWKS) -> None:
    """After a rotation the new kid is unknown until a refresh; refreshes inside the
    minimum interval do not fetch, concurrent ones share one fetch."""
    new = idp.rotate()
    with pytest.raises(UnknownSigningKey):
        idp_tokens.verify(idp.access_token(), new.kid, jwks)
    await asyncio.sleep(0.35)
    results = await asyncio.gather(*(jwks.refresh() for _ in range(10)))
    assert results == [True] * 10
    assert idp.jwks_requests == 2
    assert idp_tokens.verify(idp.access_token(), new.kid, jwks)["sub"]
    assert await jwks.refresh() is False  # inside the interval: no fetch
    assert idp.jwks_requests == 2
    assert jwks.key(new.kid) is not None


async def test_a_failed_fetch_keeps_the_last_keys(
    idp: OIDCProvider, jwks: RemoteJWKS, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that answers 503 is logged with a stable code; the keys stay."""
    kid = idp.active.kid
    idp.down = True
    await asyncio.sleep(0.35)
    assert await jwks.refresh() is False
    assert jwks.kids == {kid}
    assert FETCH_FAILED in caplog.text
    assert "HTTP 503" in caplog.text


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'["keys"]', '"keys" array'),
        (b'{"keys": []}', "no usable signing key"),
        (b"x" * 4096, "larger than"),
    ],
)
async def test_bad_documents_are_refused(
    idp: OIDCProvider, jwks: RemoteJWKS, caplog: pytest.LogCaptureFixture, body: bytes, why: str
) -> None:
    """Not JSON, not a JWKS, no usable key, too large: refused, the keys stay."""
    async with RemoteJWKS(idp.jwks_url, max_bytes=2048, min_interval=0.1) as source:
        kids = source.kids
        idp.jwks_override = body
        await asyncio.sleep(0.15)
        assert await source.refresh() is False
        assert source.kids == kids != set()
    assert why in caplog.text


def test_symmetric_and_none_keys_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """HS256 / oct / none / encryption JWKs never become signing keys."""
    good = SigningKey.generate("ES256")
    document = {
        "keys": [
            {"kty": "oct", "kid": "shared", "alg": "HS256", "k": "c2VjcmV0"},
            {"kty": "oct", "kid": "bare", "k": "c2VjcmV0"},
            {**good.public_jwk(), "kid": "none-alg", "alg": "none"},
            {**SigningKey.generate().public_jwk(), "kid": "enc", "use": "enc"},
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            good.public_jwk(),
        ]
    }
    with caplog.at_level(logging.WARNING):
        keys = parse_jwks(json.dumps(document).encode())
    assert set(keys) == {good.kid}
    assert keys[good.kid].algorithm_name == "ES256"
    for kid in ("shared", "bare", "none-alg", "broken"):
        assert f"kid {kid!r}" in caplog.text
    assert KEY_IGNORED in caplog.text
    assert "'enc'" not in caplog.text
    with pytest.raises(JWKSError):
        parse_jwks(json.dumps({"keys": document["keys"][:2]}).encode())


async def test_a_token_with_another_alg_than_the_key_is_refused(
    idp: OIDCProvider, jwks: RemoteJWKS
) -> None:
    """An HS256 token naming the RSA key's kid (signed with its public key) is refused."""
    public_pem = idp.active.public_jwk()["n"]
    forged = jwt.encode({"sub": "x"}, public_pem, "HS256", headers={"kid": idp.active.kid})
    with pytest.raises(InvalidToken, match="alg"):
        idp_tokens.verify(forged, idp.active.kid, jwks)


async def test_a_provider_down_at_start_is_fetched_on_demand(idp: OIDCProvider) -> None:
    """Start succeeds with no keys; a later refresh picks them up."""
    idp.down = True
    async with RemoteJWKS(idp.jwks_url, min_interval=0.1) as source:
        assert source.kids == set()
        idp.down = False
        await asyncio.sleep(0.15)
        assert await source.refresh() is True
        assert source.kids == {idp.active.kid}


async def test_keys_are_refetched_after_max_age(idp: OIDCProvider) -> None:
    """The background task refetches after ``max_age`` without being asked."""
    async with RemoteJWKS(idp.jwks_url, min_interval=0.1, max_age=0.2) as source:
        new = idp.rotate()
        await until(lambda: source.key(new.kid) is not None)
    assert idp.jwks_requests >= 2


async def test_unreachable_url_times_out_and_aclose_is_idempotent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused connection is a logged failure; aclose twice is fine, a given client
    is left open."""
    async with httpx.AsyncClient() as client:
        source = RemoteJWKS("http://127.0.0.1:9/certs", client=client, timeout=1)
        await source.start()
        assert source.kids == set()
        await source.aclose()
        await source.aclose()
        assert not client.is_closed
    assert FETCH_FAILED in caplog.text


def test_bad_arguments_are_refused() -> None:
    """A non-http URL or a max age under the minimum interval is a ValueError."""
    with pytest.raises(ValueError, match="http"):
        RemoteJWKS("file:///etc/jwks.json")
    with pytest.raises(ValueError, match="intervals"):
        RemoteJWKS("http://x/certs", min_interval=10, max_age=1)


def test_the_key_source_and_the_verifier_fill_their_contracts() -> None:
    """mypy checks RemoteJWKS against SigningKeys, TokenVerifier against KeyRefresher;
    a verifier without an IdP refreshes nothing."""
    keys: SigningKeys = RemoteJWKS("http://127.0.0.1:1/certs")
    refresher: KeyRefresher = TokenVerifier(None, signing_keys=keys)
    assert refresher is not None
    assert asyncio.run(TokenVerifier(None).refresh_keys()) is False


async def test_aclose_during_the_first_fetch_leaves_no_task(idp: OIDCProvider) -> None:
    """Closing while start is fetching cancels the fetch; start returns and starts
    nothing more."""
    source = RemoteJWKS(idp.jwks_url)
    before = asyncio.all_tasks()
    starting = asyncio.create_task(source.start())
    await until(lambda: source.fetches == 1)
    await source.aclose()
    await starting
    assert asyncio.all_tasks() - before == set()
