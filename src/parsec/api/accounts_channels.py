"""An org's channels over ``/api/v1`` — for its members and its API keys::

    GET  /api/v1/orgs/{slug}/channels[?pattern=chat:*]   channels with subscribers
    POST /api/v1/orgs/{slug}/publish  {channel, data}     publish
    GET  /api/v1/orgs/{slug}/history?channel=&limit=      the channel's history
    GET  /api/v1/orgs/{slug}/presence?channel=            who is subscribed

Each call runs on the org's own Parsec (:mod:`parsec.services.tenancy`): the channel
names are the org's, and no call here can name a channel of another org. Reading needs
membership (or an API key's ``channels:read``), publishing too (``channels:publish``).
A channel the namespaces do not allow, or without history/presence, is 400
``PARSEC_INVALID_ARGUMENT`` or the channel error's own code.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from parsec.api.accounts_v1 import PREFIX, Accounts, InOrg, responses, router
from parsec.services.accounts import AccountsService

__all__ = ["channels_router"]

Channel = Annotated[str, Query(min_length=1, max_length=255, description="A channel name.")]


class ChannelOut(BaseModel):
    channel: str
    subscribers: int


class ChannelsOut(BaseModel):
    channels: list[ChannelOut]


class PublishIn(BaseModel):
    channel: str = Field(min_length=1, max_length=255)
    data: Any = Field(description="Any JSON value.")


class PositionOut(BaseModel):
    offset: int = Field(description="The publication's offset (0: the channel keeps no history).")
    epoch: str


class PublicationOut(BaseModel):
    offset: int
    data: Any
    user: str | None = Field(description="Who published it, for a client's publication.")


class HistoryOut(BaseModel):
    publications: list[PublicationOut]
    offset: int
    epoch: str


class ClientOut(BaseModel):
    client: str
    user: str


class PresenceOut(BaseModel):
    clients: list[ClientOut]


def channels_router(accounts: AccountsService) -> APIRouter:
    routes = router(accounts)
    path = PREFIX + "/orgs/{slug}"
    errors = responses(400, 403, 404)

    @routes.get(path + "/channels", summary="The org's channels", responses=responses(404))
    async def list_channels(
        accounts: Accounts,
        org: InOrg,
        pattern: Annotated[str, Query(max_length=255, description="A glob.")] = "",
    ) -> ChannelsOut:
        org.require("member", "channels:read")
        tenant = await accounts.tenant(org.org_id)
        found = await tenant.node.cluster_channels(pattern)
        return ChannelsOut(
            channels=[ChannelOut(channel=c, subscribers=n) for c, n in sorted(found.items())]
        )

    @routes.post(path + "/publish", summary="Publish", responses=errors)
    async def publish(accounts: Accounts, org: InOrg, body: PublishIn) -> PositionOut:
        org.require("member", "channels:publish")
        tenant = await accounts.tenant(org.org_id)
        position = await tenant.publish(body.channel, body.data)
        return PositionOut(offset=position.offset, epoch=position.epoch)

    @routes.get(
        path + "/history", summary="A channel's history", responses=responses(400, 403, 404)
    )
    async def history(
        accounts: Accounts,
        org: InOrg,
        channel: Channel,
        limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    ) -> HistoryOut:
        org.require("member", "channels:read")
        tenant = await accounts.tenant(org.org_id)
        result = await tenant.node.history(channel, limit=limit)
        return HistoryOut(
            publications=[
                PublicationOut(
                    offset=p.offset,
                    data=msgspec.json.decode(p.data),
                    user=None if p.info is None else p.info.user,
                )
                for p in result.publications
            ],
            offset=result.position.offset,
            epoch=result.position.epoch,
        )

    @routes.get(path + "/presence", summary="Who is subscribed", responses=errors)
    async def presence(accounts: Accounts, org: InOrg, channel: Channel) -> PresenceOut:
        org.require("member", "channels:read")
        tenant = await accounts.tenant(org.org_id)
        clients = await tenant.node.presence_of(channel)
        return PresenceOut(
            clients=[ClientOut(client=c.client, user=c.user) for c in clients.values()]
        )

    return routes
