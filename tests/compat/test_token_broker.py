"""The token broker as a client sees it: two ``parsec serve --config`` processes with
``[token_broker]`` enabled share the real Redis; a token from ``POST /parsec/token`` on
node A connects centrifuge-python to node B subscribed to exactly the granted channels,
and ``POST /parsec/revoke`` on node A ends that connection and refuses the token (3005,
then 109).

The bearers are operator management tokens minted from node A's keyring. They carry no
roles claim, so the role authorizer reads roles from ``typ`` (``"mgmt"``): management
tokens are granted the ``chat:*`` channels, nothing else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import cent
import httpx
import pytest

from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecTokens

from .parsec_process import ParsecServer, redis_pair
from .sdk_events import sdk_client

WITHIN = 1.0

BROKER = """
[token_broker]
enabled = true
roles_claim = "typ"

[[token_broker.roles]]
name = "mgmt"
patterns = ["chat:*"]
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ParsecServer, ParsecServer]]:
    """Two nodes on one Redis key prefix, stopped before the prefix's keys are deleted."""
    with redis_pair(tmp_path_factory.mktemp("token-broker"), BROKER) as pair:
        yield pair


def operator(node: ParsecServer, user: str = "operator") -> str:
    return ParsecTokens(KeyRing.open(node.state_dir)).issue_mgmt(user).token


def post(node: ParsecServer, path: str, bearer: str, body: object) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        return http.post(
            f"{node.http_url}/parsec{path}",
            json=body,
            headers={"Authorization": f"Bearer {bearer}"},
        )


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_minted_token_subscribes_exactly_the_granted_channels(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """chat:<x> is granted and secret:<y> denied; a centrifuge-python client connecting
    to the other node with the token is subscribed server-side to chat:<x> only and
    receives a publication sent there through the server API."""
    a, b = nodes
    room, secret = fresh("chat:room"), fresh("secret:vault")
    reply = post(a, "/token", operator(a), {"channels": [room, secret], "ttl": 600})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["channels_granted"] == [room]
    assert [d["channel"] for d in body["channels_denied"]] == [secret]

    async with sdk_client(b, token=body["token"]) as (client, events):
        await client.connect()
        await events.next("connected")
        subscribed = await events.next("subscribed")
        assert subscribed.channel == room

        cent.Client(api_url=a.api_url, api_key=a.api_key).publish(
            cent.PublishRequest(channel=room, data={"text": "hi"})
        )
        publication = await events.next("publication")

        assert publication.channel == room
        assert publication.pub.data == {"text": "hi"}
        assert [ctx.channel for ctx in events.of("subscribed")] == [room]


async def ended_by(node: ParsecServer, token: str, revoke: Callable[[], httpx.Response]) -> None:
    """A client connected to ``node`` with ``token`` is disconnected 3005 "token revoked"
    within a second of ``revoke`` (which must answer ``{"ok": true}``)."""
    async with sdk_client(node, token=token) as (client, events):
        await client.connect()
        await events.next("connected")

        started = time.monotonic()
        assert revoke().json() == {"ok": True}
        ctx = await events.until("connecting", lambda ctx: ctx.code != 0)

        assert (ctx.code, ctx.reason) == (3005, "token revoked")
        assert time.monotonic() - started < WITHIN
        await events.next("disconnected")


async def refused_at_connect(node: ParsecServer, token: str) -> None:
    """Connecting to ``node`` with ``token`` is refused (109), never connected."""
    async with sdk_client(node, token=token) as (client, events):
        await client.connect()
        await events.next("disconnected")
        assert events.of("connected") == []
        errors = events.of("error")
        assert any(getattr(e.error, "code", None) == 109 for e in errors), errors


async def test_a_token_revoked_on_one_node_is_refused_on_the_other(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """An operator revokes the token id on node A: the client holding it on node B is
    disconnected within a second (3005 "token revoked"), and connecting again with it
    is refused (109)."""
    a, b = nodes
    bearer = operator(a)
    body = post(a, "/token", bearer, {"channels": [fresh("chat:room")]}).json()
    revoke = {"token_id": body["token_id"], "reason": "test"}

    await ended_by(b, body["token"], lambda: post(a, "/revoke", bearer, revoke))
    await refused_at_connect(b, body["token"])


async def test_a_user_revokes_their_own_tokens_on_every_node(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """Self-service: a non-operator management token holder revokes their own user on
    node A; their client on node B is disconnected (3005)."""
    a, b = nodes
    user = fresh("user")
    own = ParsecTokens(KeyRing.open(a.state_dir)).issue_mgmt(user, scopes=[]).token
    body = post(a, "/token", own, {"channels": [fresh("chat:room")]}).json()
    assert body["channels_granted"]

    await ended_by(b, body["token"], lambda: post(a, "/revoke", own, {"user_id": user}))


async def test_a_user_revokes_a_token_of_theirs_by_id_on_another_node(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """Self-service by token id, asked of the node that did not mint the token: the
    user's client on the minting node is disconnected (3005) and the token is refused
    at connect on both nodes (109); their other token keeps working."""
    a, b = nodes
    user = fresh("user")
    own = ParsecTokens(KeyRing.open(a.state_dir)).issue_mgmt(user, scopes=[]).token
    lost = post(a, "/token", own, {"channels": [fresh("chat:room")]}).json()
    kept = post(a, "/token", own, {"channels": [fresh("chat:room")]}).json()
    revoke = {"token_id": lost["token_id"], "reason": "lost phone"}

    await ended_by(a, lost["token"], lambda: post(b, "/revoke", own, revoke))
    for node in (a, b):
        await refused_at_connect(node, lost["token"])
    async with sdk_client(b, token=kept["token"]) as (client, events):
        await client.connect()
        await events.next("connected")
