"""Parsec's coded errors: ``ParsecError`` with a stable ``PARSEC_*`` code.

::

    ParsecError(code, message)          every management-surface failure
     └─ mapped by code to a Twirp error code and an HTTP status (``twirp_code``,
        ``http_status``) on the management API, to a CLI exit code (1), and, where a
        client command meets it, to a client-protocol error (``client_error``).

Codes are a contract (parsec-reference.md §5); messages are for people and may change.
Messages never carry secrets or token contents.
"""

from __future__ import annotations

from typing import Final

from parsec.engine.codes import ClientError

__all__ = ["CODES", "ParsecClientError", "ParsecError"]

# code -> (twirp code, HTTP status)
CODES: Final[dict[str, tuple[str, int]]] = {
    "PARSEC_CHANNEL_INVALID": ("invalid_argument", 400),
    "PARSEC_INVALID_ARGUMENT": ("invalid_argument", 400),
    "PARSEC_CHANNEL_TTL_EXCEEDS_MAX": ("invalid_argument", 400),
    # Parsec for Python's own: a publication or request body over its size limit. The
    # Twirp code stays invalid_argument (Twirp has none for 413), so a client that only
    # reads the Twirp code sees a terminal error, never a retryable one.
    "PARSEC_PAYLOAD_TOO_LARGE": ("invalid_argument", 413),
    "PARSEC_CHANNEL_NOT_FOUND": ("not_found", 404),
    "PARSEC_KEY_NOT_FOUND": ("not_found", 404),
    "PARSEC_SINK_DLQ_NOT_FOUND": ("not_found", 404),
    "PARSEC_CHANNEL_EXISTS": ("already_exists", 409),
    "PARSEC_CHANNEL_CLOSED": ("failed_precondition", 412),
    "PARSEC_KEY_ACTIVE": ("failed_precondition", 412),
    "PARSEC_AUTH_DENIED": ("permission_denied", 403),
    "PARSEC_AUTH_EXPIRED": ("unauthenticated", 401),
    "PARSEC_AUTH_MISSING": ("unauthenticated", 401),
    "PARSEC_BROKER_NOT_READY": ("unavailable", 503),
    # Parsec for Python's own: a token signed by an identity provider's key this node
    # cannot fetch yet (its refetch limit, or the provider is down); retry shortly.
    "PARSEC_AUTH_UNAVAILABLE": ("unavailable", 503),
    "PARSEC_SINK_UNAVAILABLE": ("unavailable", 503),
    "PARSEC_SINK_DLQ_OVERFLOW": ("unavailable", 503),
    "PARSEC_RATE_LIMITED": ("resource_exhausted", 429),
    "PARSEC_BROKER_INTERNAL": ("internal", 500),
    "PARSEC_SINK_CONFIG_INVALID": ("internal", 500),
    "PARSEC_INTERNAL": ("internal", 500),
}

# code -> client-protocol error code, where a client command can meet the error
_CLIENT_CODES: Final[dict[str, int]] = {
    "PARSEC_CHANNEL_INVALID": 107,
    "PARSEC_INVALID_ARGUMENT": 107,
    "PARSEC_PAYLOAD_TOO_LARGE": 106,
    "PARSEC_AUTH_DENIED": 103,
    "PARSEC_AUTH_EXPIRED": 109,
    "PARSEC_AUTH_MISSING": 103,
    "PARSEC_CHANNEL_NOT_FOUND": 404,
    "PARSEC_CHANNEL_CLOSED": 412,
    "PARSEC_RATE_LIMITED": 111,
}


class ParsecError(Exception):
    """A failure with a stable ``PARSEC_*`` code and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown Parsec error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def twirp_code(self) -> str:
        return CODES[self.code][0]

    @property
    def http_status(self) -> int:
        return CODES[self.code][1]

    def client_error(self) -> ParsecClientError:
        """The client-protocol error a command gets for this failure. Codes outside
        the library range (404, 412) are application codes: SDKs treat them as
        terminal for the subscription, as they should."""
        return ParsecClientError(self)


class ParsecClientError(ClientError):
    """A client-protocol error that carries the ParsecError it stands for, so a layer
    above the engine can raise the original again."""

    def __init__(self, error: ParsecError) -> None:
        number = _CLIENT_CODES.get(error.code, 100)
        super().__init__(number, f"{error.code}: {error.message}", number in (100, 111))
        self.parsec_error = error
