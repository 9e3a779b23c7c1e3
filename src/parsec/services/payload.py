"""The one JSON encoding path of publications: ``publish`` and ``publish_or_sink`` both
turn what they are given into wire bytes with :func:`publication_bytes`."""

from __future__ import annotations

from typing import Any

import msgspec

from parsec.engine.protocol import MalformedCommand, compact_json
from parsec.errors import ParsecError

__all__ = ["UnencodableData", "publication_bytes"]


class UnencodableData(ParsecError, TypeError):
    """``PARSEC_INVALID_ARGUMENT``: a value that JSON cannot encode (an ``object()``, a
    set…). Also a :class:`TypeError`, which ``publish`` raised for such a value before
    it went through :func:`publication_bytes`: code catching either keeps working."""


def publication_bytes(data: Any) -> bytes:
    """``data`` as JSON bytes for the wire: bytes (or a bytearray, a memoryview) must
    already hold one JSON value, which goes out as given less its raw newlines
    (:func:`parsec.engine.protocol.compact_json`); anything else is encoded with msgspec.

    Raises:
        UnencodableData: ``data`` cannot be encoded as JSON (a ParsecError with code
            ``PARSEC_INVALID_ARGUMENT`` that is also a TypeError); the message names
            the type and msgspec's reason.
        ParsecError: ``PARSEC_INVALID_ARGUMENT``, bytes that do not hold JSON.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            return bytes(compact_json(bytes(data)))
        except MalformedCommand as exc:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", str(exc)) from None
    try:
        return msgspec.json.encode(data)
    except (TypeError, msgspec.EncodeError) as exc:
        raise UnencodableData(
            "PARSEC_INVALID_ARGUMENT",
            f"data of type {type(data).__name__} is not JSON-encodable: {exc}",
        ) from None
