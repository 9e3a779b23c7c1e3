"""``POST /api/v1/auth/exchange``: a connection token of the caller's org.

The caller (a member, or an API key with ``tokens:issue``) picks the org with ``?org=``
(default: its default org). The token is signed by the org's own keyring, so it
connects to the org's WebSocket endpoint (``websocket_url``) and nowhere else::

    curl -X POST -H "Authorization: Bearer $KEY" "$BASE/api/v1/auth/exchange?org=acme"
    {"token": "eyJ…", "expires_at": "2026-…Z", "subject": "…", "org": "acme",
     "websocket_url": "ws://…/orgs/acme/connection/websocket"}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from parsec.api.accounts_v1 import PREFIX, Accounts, ChosenOrg, responses, router
from parsec.api.tenant_mount import ORGS_PATH
from parsec.services.accounts import AccountsService

__all__ = ["ExchangeIn", "ExchangeOut", "exchange_router"]

DEFAULT_TTL = 3600
MAX_TTL = 86400
MAX_CHANNELS = 100


class ExchangeIn(BaseModel):
    ttl_seconds: int = Field(
        default=DEFAULT_TTL, ge=60, le=MAX_TTL, description="How long the token is valid."
    )
    channels: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        max_length=MAX_CHANNELS,
        description="Channels the connection is subscribed to by the server.",
    )


class NatsOut(BaseModel):
    """A user of the org's own NATS account, for native NATS clients."""

    url: str = Field(description="Where the org's NATS account lives.")
    account: str = Field(description="The account's public key.")
    jwt: str = Field(description="The user's JWT, signed by the org's signing key.")
    seed: str = Field(description="The user's nkey seed (secret).")
    creds: str = Field(description="The standard .creds file text (JWT and seed).")
    expires_at: str = Field(description="RFC 3339, UTC.")


class ExchangeOut(BaseModel):
    token: str = Field(description="A connection token signed by the org's own keyring.")
    expires_at: str = Field(description="RFC 3339, UTC.")
    subject: str = Field(description="The token's sub: a user id, or apikey:<id>.")
    org: str = Field(description="The org's slug.")
    websocket_url: str = Field(description="Where the token connects.")
    nats: NatsOut | None = Field(
        default=None, description="With per-org NATS accounts ([nats]): a NATS user."
    )


def _rfc3339(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def websocket_url(base_url: str, slug: str) -> str:
    """The org's WebSocket endpoint, from ``[accounts] base_url``."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = f"{parts.path.rstrip('/')}{ORGS_PATH}/{slug}/connection/websocket"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def exchange_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)

    @routes.post(
        PREFIX + "/auth/exchange",
        summary="A connection token of the caller's org",
        responses=responses(400, 403, 404),
    )
    async def exchange(
        accounts: Accounts, org: ChosenOrg, body: Annotated[ExchangeIn | None, Body()] = None
    ) -> ExchangeOut:
        wanted = body or ExchangeIn()
        done = await accounts.exchange(org, ttl=wanted.ttl_seconds, channels=wanted.channels)
        nats = None
        if done.nats is not None and accounts.nats_accounts is not None:
            nats = NatsOut(
                url=accounts.nats_accounts.url,
                account=done.nats.account,
                jwt=done.nats.jwt,
                seed=done.nats.seed,
                creds=done.nats.creds,
                expires_at=_rfc3339(done.nats.expires_at),
            )
        return ExchangeOut(
            nats=nats,
            token=done.token,
            expires_at=_rfc3339(done.expires_at),
            subject=done.subject,
            org=org.slug,
            websocket_url=websocket_url(accounts.options.base_url, org.slug),
        )

    return routes
