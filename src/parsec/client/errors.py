"""What :class:`parsec.client.Client` raises.

::

    ClientException                 base; also a malformed reply from the server
    ├── ClientConnectError          the WebSocket could not be opened
    ├── ClientProtocolError         the server answered a command with an error reply
    │   └── ClientTokenExpired      109 for a token that cannot be renewed
    ├── ClientDisconnected          the connection closed (close code and reason)
    └── ClientUnsubscribed          the server unsubscribed the client from a channel
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "ClientConnectError",
    "ClientDisconnected",
    "ClientException",
    "ClientProtocolError",
    "ClientTokenExpired",
    "ClientUnsubscribed",
    "reconnects",
]

TOKEN_EXPIRED: Final = 109
"""The error code of an expired connection or subscription token."""


def reconnects(code: int) -> bool:
    """Whether the SDKs reconnect after a close with ``code`` (centrifuge-protocol.md
    §1.10): transport codes below 3000 (but 1009, message too big), 3000-3499,
    4000-4499 and the reserved 5000 and up; 3500-3999 and 4500-4999 are terminal."""
    if code < 3000:
        return code != 1009
    return code < 3500 or 4000 <= code < 4500 or code >= 5000


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

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed: a temporary error or a code below
        100 (the SDK rule; 109 needs a new token first)."""
        return self.temporary or self.code < 100


class ClientTokenExpired(ClientProtocolError):
    """The server answered 109 and no fresh token could be had: ``kind`` is
    ``"connection"`` or ``"subscription"``."""

    def __init__(
        self, kind: Literal["connection", "subscription"], message: str = "token expired"
    ) -> None:
        super().__init__(TOKEN_EXPIRED, message)
        self.kind = kind


class ClientDisconnected(ClientException):
    """The connection closed with WebSocket close ``code`` and ``reason``; 1006 means it
    was lost without a close frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}" if reason else str(code))
        self.code = code
        self.reason = reason

    @property
    def reconnect(self) -> bool:
        """Whether the SDKs reconnect after this close (see :func:`reconnects`)."""
        return reconnects(self.code)


class ClientUnsubscribed(ClientException):
    """The server ended the subscription to ``channel`` (an ``unsubscribe`` push)."""

    def __init__(self, channel: str, code: int, reason: str) -> None:
        super().__init__(f"{channel}: {code}: {reason}")
        self.channel = channel
        self.code = code
        self.reason = reason

    @property
    def resubscribe(self) -> bool:
        """Whether the SDKs subscribe again: codes 2500 and up (insufficient state,
        expired subscription); below 2500 the server ended the subscription for good."""
        return self.code >= 2500
