"""centrifuge-python connecting to a real ``parsec serve`` with a Keycloak-shaped access
token from a local OpenID provider (``[auth] jwks_url``, ``user_id_claim =
"preferred_username"``), as seed 003's chat server does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import cent
import httpx
import pytest
from oidc_provider import OIDCProvider, running_provider

from .parsec_process import ParsecServer, ServerFactory
from .sdk_events import EventLog, sdk_client

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def chat_server(server_factory: ServerFactory, idp: OIDCProvider) -> ParsecServer:
    """A server that accepts the realm's access tokens, users by preferred_username."""
    return server_factory.start(
        auth={
            "jwks_url": idp.jwks_url,
            "user_id_claim": "preferred_username",
            "token_issuer": idp.issuer,
            "token_audience": idp.audience,
        }
    )


async def test_keycloak_token_connects_and_receives_a_publication(
    chat_server: ParsecServer, idp: OIDCProvider
) -> None:
    """The SDK connects with the IdP's access token, subscribes, and receives what the
    server API publishes, with its preferred_username as the publisher-visible user."""
    channel = f"chat:{uuid.uuid4().hex[:12]}"
    token = idp.access_token("alice")
    async with (
        sdk_client(chat_server, token=token) as (client, events),
        cent.AsyncClient(chat_server.api_url, chat_server.api_key) as api,
    ):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        sub = client.new_subscription(channel, events=log)
        await sub.subscribe()
        await log.next("subscribed")
        presence = await api.presence(cent.PresenceRequest(channel=channel))
        await api.publish(cent.PublishRequest(channel=channel, data={"text": "hi"}))
        publication = await log.next("publication")

    assert publication.pub.data == {"text": "hi"}
    assert [info.user for info in presence.presence.values()] == ["alice"]


async def test_token_from_another_realm_is_refused(
    chat_server: ParsecServer, idp: OIDCProvider
) -> None:
    """A token from another issuer ends in the SDK's unauthorized state (3500)."""
    token = idp.access_token("alice", iss=f"{idp.base_url}/realms/other")
    async with sdk_client(chat_server, token=token) as (client, events):
        await client.connect()
        gone = await events.next("disconnected")
    assert gone.code == 3500


BROKER = """
[token_broker]
enabled = true
roles_claim = "realm_access.roles"

[[token_broker.roles]]
name = "member"
patterns = ["chat:*"]
"""


@pytest.fixture(scope="module")
def broker_server(server_factory: ServerFactory, idp: OIDCProvider) -> ParsecServer:
    """Issue 13's contract configuration: the IdP's tokens are accepted, users by
    preferred_username, and the token broker grants members the chat:* channels."""
    return server_factory.start(
        BROKER,
        auth={
            "jwks_url": idp.jwks_url,
            "user_id_claim": "preferred_username",
            "token_issuer": idp.issuer,
            "token_audience": idp.audience,
        },
    )


def ask_for_token(server: ParsecServer, body: object, bearer: str | None) -> httpx.Response:
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        return http.post(f"{server.http_url}/parsec/token", json=body, headers=headers)


async def test_the_token_broker_contract_with_an_idp_member(
    broker_server: ParsecServer, idp: OIDCProvider
) -> None:
    """A bearer signed by the IdP whose realm_access.roles holds member asks for chat:<x>
    and secret:<y>: chat:<x> is granted, secret:<y> denied; the minted token connects
    centrifuge-python as that user, subscribed server-side to exactly chat:<x>, and a
    publication there arrives. Without a bearer: 401."""
    room, secret = f"chat:{uuid.uuid4().hex[:10]}", f"secret:{uuid.uuid4().hex[:10]}"
    assert ask_for_token(broker_server, {"channels": [room]}, None).status_code == 401

    reply = ask_for_token(broker_server, {"channels": [room, secret]}, idp.access_token("dana"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["channels_granted"] == [room]
    assert [denied["channel"] for denied in body["channels_denied"]] == [secret]

    async with (
        sdk_client(broker_server, token=body["token"]) as (client, events),
        cent.AsyncClient(broker_server.api_url, broker_server.api_key) as api,
    ):
        await client.connect()
        connected = await events.next("connected")
        subscribed = await events.next("subscribed")
        presence = await api.presence(cent.PresenceRequest(channel=room))
        await api.publish(cent.PublishRequest(channel=room, data={"text": "hi"}))
        publication = await events.next("publication")

    assert connected.client
    assert subscribed.channel == room
    assert [ctx.channel for ctx in events.of("subscribed")] == [room]
    assert [info.user for info in presence.presence.values()] == ["dana"]
    assert publication.pub.data == {"text": "hi"}
