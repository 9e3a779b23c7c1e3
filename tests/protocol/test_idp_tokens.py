"""Connection and subscription tokens from an identity provider (``[auth] jwks_url``),
against a real local OpenID provider shaped like a Keycloak realm: the user from
``preferred_username``, Keycloak's claims accepted, a key rotation picked up after a
rate-limited refetch, and tokens from another issuer, audience or key refused."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
import pytest_asyncio
from oidc_provider import OIDCProvider, SigningKey

from parsec.auth.remote_jwks import RemoteJWKS

from .conftest import ServerFactory
from .harness import RawClient, Server


def idp_auth(idp: OIDCProvider) -> dict[str, Any]:
    """The ``[auth]`` of a chat server that accepts the realm's access tokens."""
    return {
        "jwks_url": idp.jwks_url,
        "user_id_claim": "preferred_username",
        "token_issuer": idp.issuer,
        "token_audience": idp.audience,
    }


@pytest_asyncio.fixture(loop_scope="session")
async def server(make_server: ServerFactory, idp: OIDCProvider) -> Server:
    return await make_server(auth=idp_auth(idp))


def keys_of(server: Server) -> RemoteJWKS:
    keys = server.parsec.idp_keys
    assert keys is not None
    return keys


async def refused(server: Server, token: str) -> tuple[int, str]:
    """The close code and reason of a connect with ``token``."""
    client = await server.open()
    await client.send({"id": 1, "connect": {"token": token}})
    return await client.closed()


async def connected(server: Server, token: str) -> RawClient:
    client = await server.open()
    reply = await client.connect(token)
    assert "connect" in reply, reply
    return client


async def test_user_is_preferred_username(server: Server, idp: OIDCProvider) -> None:
    """A Keycloak access token (typ Bearer, azp, realm_access, scope, sid…) connects as
    its preferred_username; presence shows that user."""
    client = await connected(server, idp.access_token("alice"))
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:room"})
    reply = await client.call("presence", {"channel": "chat:room"})
    users = {entry["user"] for entry in reply["presence"]["presence"].values()}
    assert users == {"alice"}


async def test_subscription_token_from_the_idp(server: Server, idp: OIDCProvider) -> None:
    """An IdP token with a channel claim (a Keycloak mapper) subscribes its user to a
    channel that needs a token; one for another user is refused."""
    client = await connected(server, idp.access_token("alice"))
    token = idp.access_token("alice", channel="locked:room")
    assert "subscribe" in await client.call("subscribe", {"channel": "locked:room", "token": token})
    other = idp.access_token("bob", channel="locked:other")
    await client.send({"id": 9, "subscribe": {"channel": "locked:other", "token": other}})
    assert (await client.closed())[0] == 3500


async def test_local_tokens_still_connect(server: Server) -> None:
    """The node's own keyring tokens keep working next to the IdP's."""
    await connected(server, server.token("bob"))
    assert "subscribe" in await (await connected(server, server.token("carol"))).call(
        "subscribe", {"channel": "locked:room", "token": server.sub_token("carol", "locked:room")}
    )


async def test_rotated_key_is_accepted_after_a_refetch(server: Server, idp: OIDCProvider) -> None:
    """After the provider rotates its key, a token signed by the new one connects: the
    unknown kid triggers one refetch."""
    keys_of(server).min_interval = 0.01
    await asyncio.sleep(0.02)
    idp.rotate(alg="ES256")
    await connected(server, idp.access_token("alice"))
    await connected(server, idp.access_token("bob"))
    assert idp.jwks_requests == 2


async def test_refetches_are_rate_limited(server: Server, idp: OIDCProvider) -> None:
    """Tokens naming unknown kids refetch at most once per interval: ten concurrent
    ones share a fetch (and, the key still unknown after it, are closed 3500); a later
    one inside the interval does not fetch."""
    stranger = SigningKey.generate()
    keys = keys_of(server)
    keys.min_interval = 0.2
    await asyncio.sleep(0.25)
    codes = await asyncio.gather(
        *(refused(server, idp.access_token(key=stranger)) for _ in range(10))
    )
    assert {code for code, _ in codes} == {3500}
    assert idp.jwks_requests == 2
    keys.min_interval = 60  # however slow the machine, the next one is inside it
    idp.rotate()
    assert (await unavailable(server, idp.access_token())) == 100
    assert idp.jwks_requests == 2


async def test_a_rotated_key_inside_the_interval_is_a_temporary_error(
    server: Server, idp: OIDCProvider
) -> None:
    """The provider rotates right after the node fetched its keys: a token of the new
    key is answered with a temporary error (the SDKs retry with backoff, the connection
    stays open), and connects once the interval has passed."""
    keys = keys_of(server)
    await fetched_now(keys)
    keys.min_interval = 60
    idp.rotate()
    token = idp.access_token()
    assert await unavailable(server, token) == 100
    await fetched_now(keys)  # the interval has passed
    await connected(server, token)


async def fetched_now(keys: RemoteJWKS) -> None:
    """Let the keys be fetched at once, and fetch them."""
    keys.min_interval = 0.001
    await asyncio.sleep(0.01)
    assert await keys.refresh()


async def unavailable(server: Server, token: str) -> int:
    """The code of the temporary error a connect with ``token`` gets."""
    client = await server.open()
    reply = await client.connect(token)
    error = reply["error"]
    assert error["temporary"] is True, reply
    return int(error["code"])


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "http://127.0.0.1:1/realms/other"},
        {"aud": "another-client"},
        {"preferred_username": None},
        {"channel": "chat:room"},
    ],
    ids=["issuer", "audience", "no-username", "subscription-token"],
)
async def test_wrong_tokens_close_3500(
    server: Server, idp: OIDCProvider, claims: dict[str, Any]
) -> None:
    """Another issuer or audience, no user claim, or a subscription token at connect:
    3500."""
    assert await refused(server, idp.access_token(**claims)) == (3500, "invalid token")


async def test_unknown_key_closes_3500(server: Server, idp: OIDCProvider) -> None:
    """A token signed by a key the provider does not publish, still unknown after a
    refetch, is refused."""
    keys_of(server).min_interval = 0.001
    assert (await refused(server, idp.access_token(key=SigningKey.generate())))[0] == 3500


async def test_expired_idp_token_gets_109(server: Server, idp: OIDCProvider) -> None:
    """An expired IdP token is answered 109, like any expired token."""
    client = await server.open()
    reply = await client.connect(idp.access_token(ttl=-30))
    assert reply["error"]["code"] == 109


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_symmetric_or_unsigned_token_naming_an_idp_key_is_refused(
    server: Server, idp: OIDCProvider, alg: str
) -> None:
    """HS256 signed with the public key's text, or alg none, with the IdP's kid: 3500."""
    claims = {"preferred_username": "mallory", "iss": idp.issuer, "aud": idp.audience}
    secret: str = idp.active.public_jwk()["n"] if alg == "HS256" else ""
    token = jwt.encode(claims, secret, algorithm=alg, headers={"kid": idp.active.kid})
    assert (await refused(server, token))[0] == 3500


async def test_provider_down_at_startup(make_server: ServerFactory, idp: OIDCProvider) -> None:
    """The node starts while the provider is down and fetches the keys on demand."""
    idp.down = True
    server = await make_server(auth=idp_auth(idp))
    assert keys_of(server).kids == set()
    idp.down = False
    keys_of(server).min_interval = 0.01
    await asyncio.sleep(0.02)
    await connected(server, idp.access_token("alice"))


async def test_refresh_and_sub_refresh_with_a_rotated_key(
    server: Server, idp: OIDCProvider
) -> None:
    """refresh and sub_refresh accept tokens from a key rotated in since connect."""
    client = await connected(server, idp.access_token("alice"))
    sub = idp.access_token("alice", channel="locked:room")
    assert "subscribe" in await client.call("subscribe", {"channel": "locked:room", "token": sub})
    keys_of(server).min_interval = 0.01
    await asyncio.sleep(0.02)
    idp.rotate()
    reply = await client.call("refresh", {"token": idp.access_token("alice", ttl=600)})
    assert reply["refresh"]["expires"] is True
    await asyncio.sleep(0.02)
    idp.rotate()
    token = idp.access_token("alice", channel="locked:room", ttl=600)
    reply = await client.call("sub_refresh", {"channel": "locked:room", "token": token})
    assert reply["sub_refresh"]["expires"] is True
    assert idp.jwks_requests == 3
