"""Client protocol codes: reply errors (100-113), unsubscribe codes (2000-2999) and
disconnect codes (3000-4999), as the Centrifugo client protocol v2 defines them.

``ClientError`` is what a command handler raises to answer a command with an error
reply; the connection stays open. ``Disconnect`` is what it raises to close the
connection: no reply is sent, the transport closes with ``code`` and ``reason``.

Disconnect ranges decide what an SDK does next: 3000-3499 and 4000-4499 reconnect,
3500-3999 and 4500-4999 are terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ClientError",
    "Disconnect",
    "Unsubscribe",
    "disconnects",
    "errors",
    "permission_denied",
    "unknown_channel",
    "unsubscribes",
]

MAX_CLOSE_REASON_BYTES: Final = 123


class ClientError(Exception):
    """An error reply to one command. The connection stays open.

    The named errors in ``errors`` are subclasses with their code and message preset,
    so ``raise errors.BAD_REQUEST`` raises a fresh instance each time.
    """

    code: int = 100
    message: str = "internal server error"
    temporary: bool = False
    detail: str = ""
    """Why, for the server log only (which rule refused, for whom); never sent."""

    def __init__(
        self,
        code: int | None = None,
        message: str | None = None,
        temporary: bool | None = None,
        *,
        detail: str = "",
    ) -> None:
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        if temporary is not None:
            self.temporary = temporary
        self.detail = detail
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Disconnect(Exception):
    """Close the connection with a WebSocket close code and a short reason.

    The named disconnects in ``disconnects`` are subclasses with code and reason
    preset: raise them as they are, or instantiate them (``disconnects.SHUTDOWN()``)
    to pass a value.
    """

    code: int = 3000
    reason: str = "connection closed"

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        if len(self.reason.encode()) > MAX_CLOSE_REASON_BYTES:
            raise ValueError("a close reason is at most 123 bytes")
        super().__init__(self.code, self.reason)

    @property
    def reconnect(self) -> bool:
        """Whether an SDK reconnects after this disconnect (code ranges, §1.10)."""
        return 3000 <= self.code < 3500 or 4000 <= self.code < 4500

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


def unknown_channel(namespace: str) -> ClientError:
    """102 ``unknown channel: namespace '<namespace>' is not configured``. The client
    named the channel, so naming its namespace tells it nothing new."""
    return errors.UNKNOWN_CHANNEL(
        message=f"unknown channel: namespace {namespace!r} is not configured",
        detail="no [[namespaces]] entry of that name",
    )


def permission_denied(action: str, channel: str, why: str) -> ClientError:
    """103 ``permission denied: <action> <channel>`` for the channel the client named;
    ``why`` (the rule that refused it) goes to the server log only."""
    return errors.PERMISSION_DENIED(message=f"permission denied: {action} {channel!r}", detail=why)


def _error(name: str, code: int, message: str, temporary: bool = False) -> type[ClientError]:
    return type(name, (ClientError,), {"code": code, "message": message, "temporary": temporary})


def _disconnect(name: str, code: int, reason: str) -> type[Disconnect]:
    return type(name, (Disconnect,), {"code": code, "reason": reason})


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """A server-side unsubscribe sent as a push; codes >= 2500 make SDKs resubscribe."""

    code: int
    reason: str


class errors:
    """Reply error values (centrifuge-protocol.md §1.8)."""

    INTERNAL: Final = _error("Internal", 100, "internal server error", temporary=True)
    UNAUTHORIZED: Final = _error("Unauthorized", 101, "unauthorized")
    UNKNOWN_CHANNEL: Final = _error("UnknownChannel", 102, "unknown channel")
    PERMISSION_DENIED: Final = _error("PermissionDenied", 103, "permission denied")
    METHOD_NOT_FOUND: Final = _error("MethodNotFound", 104, "method not found")
    ALREADY_SUBSCRIBED: Final = _error("AlreadySubscribed", 105, "already subscribed")
    LIMIT_EXCEEDED: Final = _error("LimitExceeded", 106, "limit exceeded")
    BAD_REQUEST: Final = _error("BadRequest", 107, "bad request")
    NOT_AVAILABLE: Final = _error("NotAvailable", 108, "not available")
    TOKEN_EXPIRED: Final = _error("TokenExpired", 109, "token expired")
    TOKEN_REVOKED: Final = _error("TokenRevoked", 109, "token revoked")
    """A revoked token is answered as an expired one: the SDK fetches a new token."""
    EXPIRED: Final = _error("Expired", 110, "expired")
    TOO_MANY_REQUESTS: Final = _error("TooManyRequests", 111, "too many requests", temporary=True)
    UNRECOVERABLE_POSITION: Final = _error("UnrecoverablePosition", 112, "unrecoverable position")
    PUBLICATION_TOO_LARGE: Final = _error("PublicationTooLarge", 106, "publication too large")
    """A publication over its channel's size limit (a 106 of its own kind, so that the
    layers above can tell it from the channel limit)."""


class disconnects:
    """Disconnect values (centrifuge-protocol.md §1.10)."""

    CONNECTION_CLOSED: Final = _disconnect("ConnectionClosed", 3000, "connection closed")
    SHUTDOWN: Final = _disconnect("Shutdown", 3001, "shutdown")
    SERVER_ERROR: Final = _disconnect("ServerError", 3004, "internal server error")
    EXPIRED: Final = _disconnect("Expired", 3005, "connection expired")
    TOKEN_REVOKED: Final = _disconnect("TokenRevoked", 3005, "token revoked")
    """The connection token was revoked: as expired, the SDK reconnects, gets 109 and
    fetches a new token."""
    SUBSCRIPTION_EXPIRED: Final = _disconnect("SubscriptionExpired", 3006, "subscription expired")
    SUBSCRIPTION_TOKEN_REVOKED: Final = _disconnect(
        "SubscriptionTokenRevoked", 3006, "subscription token revoked"
    )
    SLOW: Final = _disconnect("Slow", 3008, "slow")
    WRITE_ERROR: Final = _disconnect("WriteError", 3009, "write error")
    INSUFFICIENT_STATE: Final = _disconnect("InsufficientState", 3010, "insufficient state")
    FORCE_RECONNECT: Final = _disconnect("ForceReconnect", 3011, "force reconnect")
    NO_PONG: Final = _disconnect("NoPong", 3012, "no pong")
    TOO_MANY_REQUESTS: Final = _disconnect("TooManyRequests", 3013, "too many requests")
    INVALID_TOKEN: Final = _disconnect("InvalidToken", 3500, "invalid token")
    BAD_REQUEST: Final = _disconnect("BadRequest", 3501, "bad request")
    STALE: Final = _disconnect("Stale", 3502, "stale")
    FORCE_NO_RECONNECT: Final = _disconnect("ForceNoReconnect", 3503, "force disconnect")
    CONNECTION_LIMIT: Final = _disconnect("ConnectionLimit", 3504, "connection limit")
    CHANNEL_LIMIT: Final = _disconnect("ChannelLimit", 3505, "channel limit")
    INAPPROPRIATE_PROTOCOL: Final = _disconnect(
        "InappropriateProtocol", 3506, "inappropriate protocol"
    )
    PERMISSION_DENIED: Final = _disconnect("PermissionDenied", 3507, "permission denied")
    NOT_AVAILABLE: Final = _disconnect("NotAvailable", 3508, "not available")
    TOO_MANY_ERRORS: Final = _disconnect("TooManyErrors", 3509, "too many errors")


class unsubscribes:
    """Unsubscribe push values (centrifuge-protocol.md §1.9). CLIENT and DISCONNECT are
    internal: they name why a subscription ended (in logs) and are never sent."""

    CLIENT: Final = Unsubscribe(0, "client unsubscribe")
    DISCONNECT: Final = Unsubscribe(1, "disconnect")
    SERVER: Final = Unsubscribe(2000, "server unsubscribe")
    INSUFFICIENT_STATE: Final = Unsubscribe(2500, "insufficient state")
    EXPIRED: Final = Unsubscribe(2501, "subscription expired")
    TOKEN_REVOKED: Final = Unsubscribe(2501, "token revoked")
    """The subscription's token was revoked: as expired, the SDK resubscribes, gets 109
    and fetches a new token (a revoked Parsec access token gets 103)."""
