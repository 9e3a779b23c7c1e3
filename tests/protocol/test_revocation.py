"""Revocation over the client protocol: a revoked connection or subscription token is
refused at connect / subscribe, and a live connection or subscription holding one is
ended within a second; tokens of other issuers with a ``typ`` of their own still work."""

from __future__ import annotations

import time
from typing import Any

from parsec.auth import jws

from .harness import Server


def signed(server: Server, claims: dict[str, Any]) -> str:
    """A token with exactly ``claims``, signed by the server's active key."""
    return jws.sign(claims, server.parsec.keyring.active)


async def test_a_keycloak_style_subscription_token_is_a_centrifugo_token(server: Server) -> None:
    """A subscription token carrying Keycloak's ``"typ": "Bearer"`` claim is read as a
    Centrifugo subscription token, not refused as a malformed Parsec token."""
    now = int(time.time())
    token = signed(
        server,
        {"sub": "alice", "channel": "locked:room", "typ": "Bearer", "iat": now, "exp": now + 60},
    )
    client = await server.client("alice")

    reply = await client.call("subscribe", {"channel": "locked:room", "token": token})

    assert "subscribe" in reply, reply
