"""What :class:`parsec.client.Client` raises.

::

    ClientException                 base; also a malformed reply from the server
    ├── ClientConnectError          the WebSocket could not be opened
    ├── ClientProtocolError         the server answered a command with an error reply
    ├── ClientDisconnected          the connection closed (close code and reason)
    └── ClientUnsubscribed          the server unsubscribed the client from a channel
"""

from __future__ import annotations

__all__ = [
    "ClientConnectError",
    "ClientDisconnected",
    "ClientException",
    "ClientProtocolError",
    "ClientUnsubscribed",
]


class ClientException(Exception):
    """Base of every error the client raises."""


class ClientConnectError(ClientException):
    """The WebSocket could not be opened: refused, timed out, bad URL or a rejected
    handshake (for example HTTP 403 for a disallowed origin)."""


class ClientProtocolError(ClientException):
    """An error reply (protocol codes 100-113, centrifuge-protocol.md §1.8)."""

    def __init__(self, code: int, message: str, *, temporary: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.temporary = temporary


class ClientDisconnected(ClientException):
    """The connection closed with WebSocket close ``code`` and ``reason``; 1006 means it
    was lost without a close frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}" if reason else str(code))
        self.code = code
        self.reason = reason


class ClientUnsubscribed(ClientException):
    """The server ended the subscription to ``channel`` (an ``unsubscribe`` push)."""

    def __init__(self, channel: str, code: int, reason: str) -> None:
        super().__init__(f"{channel}: {code}: {reason}")
        self.channel = channel
        self.code = code
        self.reason = reason
