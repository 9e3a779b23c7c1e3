"""A token from the token broker over the client protocol, on both WebSocket transports:
the connect reply subscribes exactly the granted channels; once the token is revoked
through the broker its connection ends (3005) and a connect with it is refused (109)."""

from __future__ import annotations

from parsec.services.token_broker import TokenBrokerSettings
from parsec.services.token_policy import RoleAuthorizer

from .harness import Server


async def test_a_brokered_token_connects_subscribed_to_the_granted_channels(
    server: Server,
) -> None:
    """Operator bearer, roles from ``typ``: chat:* is granted, locked:x denied; the
    connect reply carries server-side subscriptions to the granted channels only."""
    broker = server.parsec.token_broker
    broker.configure(TokenBrokerSettings(authorizer=RoleAuthorizer({"mgmt": ["chat:*"]}, "typ")))
    bearer = server.parsec.issue_mgmt("ops").token

    issued = await broker.issue(bearer, ["chat:a", "chat:b", "locked:x"])
    client = await server.open()
    reply = await client.connect(issued.token)

    assert issued.granted == ("chat:a", "chat:b")
    assert sorted(reply["connect"]["subs"]) == ["chat:a", "chat:b"]


async def test_a_revoked_brokered_token_is_refused_at_connect(server: Server) -> None:
    """An operator revokes the token through the broker: the live connection closes with
    3005 "token revoked", and connecting again with the token is answered 109."""
    bearer = server.parsec.issue_mgmt("ops").token
    issued = await server.parsec.token_broker.issue(bearer, ["chat:a"])
    live = await server.open()
    assert "connect" in await live.connect(issued.token)

    await server.parsec.token_broker.revoke(bearer, token_id=issued.token_id, reason="test")

    assert await live.closed() == (3005, "token revoked")
    again = await server.open()
    reply = await again.connect(issued.token)
    assert reply["error"] == {"code": 109, "message": "token revoked"}
