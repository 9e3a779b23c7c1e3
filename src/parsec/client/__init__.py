"""A minimal asyncio client for Parsec and Centrifugo servers (client protocol v2, JSON).

::

    async with Client("ws://127.0.0.1:8000/connection/websocket", token) as client:
        await client.subscribe("chat:lobby")
        async for channel, publication in client.publications():
            print(channel, publication["data"])
"""

from __future__ import annotations

from parsec.client.client import Client, ConnectResult, PublicationDict, SubscribeResult
from parsec.client.errors import (
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientUnsubscribed,
)

__all__ = [
    "Client",
    "ClientConnectError",
    "ClientDisconnected",
    "ClientException",
    "ClientProtocolError",
    "ClientUnsubscribed",
    "ConnectResult",
    "PublicationDict",
    "SubscribeResult",
]
