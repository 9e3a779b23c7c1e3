"""A minimal asyncio client for Parsec and Centrifugo servers (client protocol v2, JSON).

::

    async with Client("ws://127.0.0.1:8000/connection/websocket", token) as client:
        await client.subscribe("chat:lobby")
        async for channel, publication in client.publications():
            print(channel, publication["data"])

``Client`` is one connection and never reconnects; ``Follower`` keeps one subscription
alive across reconnects, with recovery, as the official SDKs do::

    async for event in Follower(url, "chat:lobby", token=token).events():
        if isinstance(event, Received):
            print(event.publication["data"])
"""

from __future__ import annotations

from parsec.client.backoff import Backoff
from parsec.client.client import Client, ConnectResult, PublicationDict, SubscribeResult
from parsec.client.errors import (
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientTokenExpired,
    ClientUnsubscribed,
)
from parsec.client.follow import Follower, FollowEvent, Received, Reconnecting, Subscribed

__all__ = [
    "Backoff",
    "Client",
    "ClientConnectError",
    "ClientDisconnected",
    "ClientException",
    "ClientProtocolError",
    "ClientTokenExpired",
    "ClientUnsubscribed",
    "ConnectResult",
    "FollowEvent",
    "Follower",
    "PublicationDict",
    "Received",
    "Reconnecting",
    "SubscribeResult",
    "Subscribed",
]
