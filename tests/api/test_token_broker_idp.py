"""The token broker with the node's identity provider (``[auth] jwks_url``): its access
tokens are bearers out of the box, the user is their ``user_id_claim`` and the roles come
from ``roles_claim`` — the configuration of issue 13's contract, against a real local
OpenID provider (Keycloak-shaped tokens, a JWKS served over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from oidc_provider import OIDCProvider, running_provider

from parsec import AuthOptions, Options, Parsec, TokenBrokerOptions
from parsec.options import TokenBrokerRole

ROLES = [TokenBrokerRole("member", ("chat:*",))]


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with running_provider() as provider:
        yield provider


@pytest_asyncio.fixture
async def parsec(tmp_path: Path, idp: OIDCProvider) -> AsyncIterator[Parsec]:
    """The contract's configuration: jwks_url, user_id_claim = preferred_username,
    roles from realm_access.roles, member → chat:*."""
    options = Options(
        auth=AuthOptions(
            state_dir=tmp_path / "state",
            jwks_url=idp.jwks_url,
            user_id_claim="preferred_username",
            token_issuer=idp.issuer,
            token_audience=idp.audience,
        ),
        token_broker=TokenBrokerOptions(
            enabled=True, roles=ROLES, roles_claim="realm_access.roles"
        ),
    )
    async with Parsec(options) as instance:
        yield instance


async def issue(http: httpx.AsyncClient, body: object, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await http.post("/parsec/token", json=body, headers=headers)


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


async def test_an_idp_member_gets_chat_a_and_not_secret_b(
    http: httpx.AsyncClient, idp: OIDCProvider
) -> None:
    """The contract: an IdP bearer whose realm_access.roles holds member asks for chat:a
    and secret:b; it gets chat:a, one denied entry for secret:b, and a token for its
    preferred_username whose server-side subscriptions are exactly chat:a."""
    reply = await issue(http, {"channels": ["chat:a", "secret:b"]}, idp.access_token("alice"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["channels_granted"] == ["chat:a"]
    assert [denied["channel"] for denied in body["channels_denied"]] == ["secret:b"]
    claims = claims_of(body["token"])
    assert claims["sub"] == "alice"
    assert claims["channels"] == ["chat:a"]
    assert claims["jti"] == body["token_id"]


async def test_no_bearer_is_401(http: httpx.AsyncClient) -> None:
    """No Authorization header: 401 with a Bearer challenge."""
    reply = await issue(http, {"channels": ["chat:a"]}, None)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"iss": "http://127.0.0.1:1/realms/other"}, "PARSEC_AUTH_MISSING"),
        ({"aud": "another-client"}, "PARSEC_AUTH_MISSING"),
        ({"ttl": -60}, "PARSEC_AUTH_EXPIRED"),
    ],
    ids=["another-issuer", "another-audience", "expired"],
)
async def test_an_idp_token_failing_a_check_is_401(
    http: httpx.AsyncClient, idp: OIDCProvider, change: dict[str, Any], code: str
) -> None:
    """A token from another realm, for another audience, or expired gets no token."""
    ttl = change.pop("ttl", 300)
    token = idp.access_token("alice", ttl=ttl, **change)
    reply = await issue(http, {"channels": ["chat:a"]}, token)
    assert reply.status_code == 401
    assert reply.json()["code"] == code
    assert "token" not in reply.json()


async def test_a_token_signed_by_a_key_the_provider_does_not_publish_is_401(
    http: httpx.AsyncClient, idp: OIDCProvider
) -> None:
    """A key that is not in the provider's JWKS (an attacker's) gets nothing."""
    from oidc_provider import SigningKey

    forged = idp.access_token("alice", key=SigningKey.generate())
    reply = await issue(http, {"channels": ["chat:a"]}, forged)
    assert reply.status_code == 401


async def test_a_rotated_provider_key_is_accepted_after_a_refetch(
    parsec: Parsec, http: httpx.AsyncClient, idp: OIDCProvider
) -> None:
    """The provider rotates its key: the broker refetches the JWKS once and accepts the
    new key's tokens, without a restart."""
    assert parsec.idp_keys is not None
    parsec.idp_keys.min_interval = 0.0
    idp.rotate(keep_old=True)
    try:
        reply = await issue(http, {"channels": ["chat:b"]}, idp.access_token("bob"))
    finally:
        idp.keys = idp.keys[-1:]
    assert reply.status_code == 200, reply.text
    assert reply.json()["channels_granted"] == ["chat:b"]


async def test_a_management_token_still_authenticates(
    parsec: Parsec, http: httpx.AsyncClient
) -> None:
    """The identity provider comes first in the chain; an operator management token is
    still a bearer (no roles: granted nothing under the role authorizer, but 200)."""
    mgmt = parsec.issue_mgmt("ops")
    reply = await issue(http, {"channels": ["chat:a"]}, mgmt.token)
    assert reply.status_code == 200, reply.text
