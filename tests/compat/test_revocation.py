"""Token revocation across a cluster, as the official clients see it: two ``parsec
serve`` processes share the real Redis; ``cent`` calls Centrifugo PRO's ``revoke_token``
and ``invalidate_user_tokens`` on one node, and centrifuge-python clients connected to
the other node are disconnected (or unsubscribed) within a second and cannot come back
with the revoked token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import cent
import httpx
import jwt
import pytest
from centrifuge import SubscriptionState

from .parsec_process import ParsecServer, redis_pair
from .sdk_events import EventLog, sdk_client

WITHIN = 1.0
"""How soon a revocation made on one node ends a connection on the other."""

LOCKED = """
[[namespaces]]
name = "locked"
"""
"""A namespace where every subscription needs a subscription token."""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ParsecServer, ParsecServer]]:
    """Two nodes on one Redis key prefix, stopped before the prefix's keys are deleted."""
    with redis_pair(tmp_path_factory.mktemp("revocation"), LOCKED) as pair:
        yield pair


def mint(node: ParsecServer, user: str, *, iat: int | None = None, **claims: Any) -> str:
    """A token ``node`` accepts (HS256 with its secret), with a fresh ``jti`` and an
    ``iat`` (now unless given)."""
    issued = int(time.time()) if iat is None else iat
    payload = {
        "sub": user,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + 3600,
        **claims,
    }
    return jwt.encode(payload, node.hmac_secret, algorithm="HS256")


def jti(token: str) -> str:
    value: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return value


async def call(
    node: ParsecServer, request: cent.RevokeTokenRequest | cent.InvalidateUserTokensRequest
) -> None:
    """Send ``request`` to ``node``'s server API with the asyncio ``cent`` client."""
    async with cent.AsyncClient(
        api_url=node.api_url, api_key=node.api_key, session=aiohttp.ClientSession()
    ) as client:
        if isinstance(request, cent.RevokeTokenRequest):
            await client.revoke_token(request)
        else:
            await client.invalidate_user_tokens(request)


def fresh_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def timed(events: EventLog, kind: str, since: float) -> tuple[Any, float]:
    """The next ``kind`` event the server caused (not the client's own ``connect`` /
    ``subscribe`` call, code 0) and how long after ``since`` (monotonic) it came."""
    ctx = await events.until(kind, lambda ctx: ctx.code != 0)
    return ctx, time.monotonic() - since


async def test_revoke_token_disconnects_the_holder_on_another_node_within_a_second(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """revoke_token (cent, node A) with the jti of the connection token a
    centrifuge-python client holds on node B: the client is disconnected within a second
    (3005 "token revoked"); reconnecting with the same token is refused, so the client
    without get_token ends up disconnected; a new client with that token never
    connects."""
    a, b = nodes
    user = fresh_user()
    token = mint(b, user)
    async with sdk_client(b, user, token=token) as (client, events):
        await client.connect()
        await events.next("connected")

        started = time.monotonic()
        await call(a, cent.RevokeTokenRequest(uid=jti(token)))
        ctx, elapsed = await timed(events, "connecting", started)

        assert (ctx.code, ctx.reason) == (3005, "token revoked")
        assert elapsed < WITHIN
        await events.next("disconnected")
        assert events.of("connected") == events.of("connected")[:1]

    async with sdk_client(b, user, token=token) as (again, again_events):
        await again.connect()
        await again_events.next("disconnected")
        assert again_events.of("connected") == []
        errors = again_events.of("error")
        assert any(getattr(e.error, "code", None) == 109 for e in errors), errors


async def test_invalidate_user_tokens_disconnects_the_users_clients_on_every_node(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """invalidate_user_tokens (cent, node A): the user's clients on both nodes whose
    tokens were issued before are disconnected within a second; a client that gets a
    token issued afterwards (get_token) reconnects; another user is untouched."""
    a, b = nodes
    user, bystander = fresh_user(), fresh_user()
    cutoff = int(time.time())
    old = {node.port: mint(node, user, iat=cutoff - 10) for node in nodes}

    async def new_token_b() -> str:
        return mint(b, user, iat=cutoff)

    async with (
        sdk_client(a, user, token=old[a.port]) as (on_a, events_a),
        sdk_client(b, user, token=old[b.port], get_token=new_token_b) as (on_b, events_b),
        sdk_client(b, bystander) as (other, other_events),
    ):
        for client, events in ((on_a, events_a), (on_b, events_b), (other, other_events)):
            await client.connect()
            await events.next("connected")

        started = time.monotonic()
        await call(a, cent.InvalidateUserTokensRequest(user=user, issued_before=cutoff))

        for events in (events_a, events_b):
            ctx, elapsed = await timed(events, "connecting", started)
            assert (ctx.code, ctx.reason) == (3005, "token revoked")
            assert elapsed < WITHIN
        await events_b.next("connected")
        await events_a.next("disconnected")
        assert caused(other_events, "connecting") == []


async def test_invalidate_user_tokens_of_a_channel_unsubscribes_on_another_node(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """invalidate_user_tokens with channel (cent, node A): the user's subscription on
    node B made with an older subscription token ends within a second (2501 "token
    revoked") while the connection stays; with get_token the SDK fetches a new token and
    subscribes again."""
    a, b = nodes
    user = fresh_user()
    channel = f"locked:{uuid.uuid4().hex[:8]}"
    cutoff = int(time.time())
    tokens_given: list[str] = []

    async def sub_token(name: str) -> str:
        token = mint(b, user, channel=name, iat=cutoff - 5 if not tokens_given else cutoff)
        tokens_given.append(token)
        return token

    async with sdk_client(b, user) as (client, events):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        sub = client.new_subscription(channel, events=log, get_token=sub_token)
        await sub.subscribe()
        await log.next("subscribed")

        started = time.monotonic()
        request = cent.InvalidateUserTokensRequest(user=user, channel=channel, issued_before=cutoff)
        await call(a, request)

        ctx, elapsed = await timed(log, "subscribing", started)
        assert (ctx.code, ctx.reason) == (2501, "token revoked")
        assert elapsed < WITHIN
        await log.next("subscribed")
        assert sub.state == SubscriptionState.SUBSCRIBED
        assert len(tokens_given) == 2
        assert caused(events, "connecting") == []


async def test_a_keycloak_style_subscription_token_subscribes(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """A subscription token carrying Keycloak's "typ": "Bearer" claim subscribes."""
    _, b = nodes
    user = fresh_user()
    channel = f"locked:{uuid.uuid4().hex[:8]}"
    token = mint(b, user, channel=channel, typ="Bearer")
    async with sdk_client(b, user) as (client, events):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        sub = client.new_subscription(channel, events=log, token=token)
        await sub.subscribe()
        await log.next("subscribed")


async def test_reuse_detection_ends_the_access_token_subscription_on_another_node(
    nodes: tuple[ParsecServer, ParsecServer],
) -> None:
    """A refresh token redeemed twice on node A revokes its family: the subscription a
    centrifuge-python client on node B made with the family's access token ends within a
    second, and the token subscribes no more (103)."""
    a, b = nodes
    channel = f"private:app.docs.{uuid.uuid4().hex[:8]}"
    creds = a.create_private(channel, "alice")
    async with sdk_client(b, "bob") as (client, events):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        sub = client.new_subscription(channel, events=log, token=creds["access_token"])
        await sub.subscribe()
        await log.next("subscribed")

        refresh = {"refresh_token": creds["refresh_token"]}
        assert twirp(a, "RefreshToken", refresh).status_code == 200
        started = time.monotonic()
        assert twirp(a, "RefreshToken", refresh).status_code == 403

        ctx, elapsed = await timed(log, "subscribing", started)
        assert ctx.code == 2501
        assert elapsed < WITHIN
        unsubscribed = await log.next("unsubscribed")
        assert unsubscribed.code == 103


def caused(events: EventLog, kind: str) -> list[Any]:
    """The ``kind`` events the server caused (code 0 is the client's own call)."""
    return [ctx for ctx in events.of(kind) if ctx.code != 0]


def twirp(node: ParsecServer, method: str, body: dict[str, Any]) -> httpx.Response:
    """A ParsecService call that needs no bearer (RefreshToken)."""
    return httpx.post(f"{node.http_url}/twirp/parsec.ParsecService/{method}", json=body, timeout=10)
