"""Protobuf's JSON mapping of scalar types, as pydantic annotated types (Twirp v8's wire).

* ``int64`` / ``uint64`` (:data:`Int64`, :data:`Uint64`) are JSON strings in responses
  (``"offset": "3"``); requests accept a JSON integer (``60``, or ``60.0`` and ``6e1``,
  which JSON Schema and protobuf's JSON mapping count as integers too) or a decimal
  string. Booleans and numbers with a fraction (``1.5``) are refused.
* ``bytes`` (:data:`Base64Bytes`) are base64 strings: responses use the standard alphabet
  with padding; requests also accept the URL-safe alphabet and missing padding.

Each type's JSON schema says the same, for the OpenAPI document; :func:`range_schema`
describes an integer field with bounds.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Base64Bytes", "Int64", "Uint64", "range_schema"]

_DECIMAL: Final = re.compile(r"-?[0-9]+")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64_MAX: Final = 2**64 - 1


def _integer(value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError("must be an integer or a decimal string")
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # 60.0 or 6e1: an integer in JSON Schema and protobuf's JSON
    if not isinstance(value, int):
        raise ValueError("must be an integer or a decimal string")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _int64(value: object) -> int:
    return _integer(value, _INT64_MIN, _INT64_MAX)


def _uint64(value: object) -> int:
    return _integer(value, 0, _UINT64_MAX)


def _integer_schema(fmt: str) -> dict[str, object]:
    return {
        "anyOf": [
            {"type": "integer", "format": fmt},
            {"type": "string", "pattern": "^-?[0-9]+$"},
        ]
    }


def range_schema(fmt: str, high: int) -> dict[str, object]:
    """The JSON schema of an integer field that takes 0 to ``high``: an integer with those
    bounds, or a decimal string whose value is within them (leading zeros and ``-0``
    included, as :func:`_integer` reads it)."""
    return {
        "anyOf": [
            {"type": "integer", "format": fmt, "minimum": 0, "maximum": high},
            {"type": "string", "pattern": f"^(?:-0+|0*(?:{_up_to(high)}))$"},
        ]
    }


def _up_to(high: int) -> str:
    """A regular expression for the decimal numbers 0 to ``high`` written without leading
    zeros: the shorter ones, then for each digit of ``high`` the numbers that share the
    digits before it and have a smaller one there, then ``high`` itself."""
    digits = str(high)
    width = len(digits)
    branches = ["0"]
    if width > 1:
        branches.append(f"[1-9][0-9]{{0,{width - 2}}}")
    for i, digit in enumerate(digits):
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            rest = width - i - 1
            tail = "" if not rest else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
            below = str(lowest) if int(digit) - 1 == lowest else f"[{lowest}-{int(digit) - 1}]"
            branches.append(digits[:i] + below + tail)
    branches.append(digits)
    return "|".join(branches)


Int64 = Annotated[
    int,
    BeforeValidator(_int64),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(_integer_schema("int64"), mode="validation"),
    WithJsonSchema({"type": "string", "format": "int64"}, mode="serialization"),
]
"""A protobuf ``int64``: integer or decimal string in, decimal string out."""

Uint64 = Annotated[
    int,
    BeforeValidator(_uint64),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(_integer_schema("uint64"), mode="validation"),
    WithJsonSchema({"type": "string", "format": "uint64"}, mode="serialization"),
]
"""A protobuf ``uint64``: non-negative integer or decimal string in, decimal string out."""


def _b64decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value  # already decoded: a model built in Python, not from JSON
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    text = value.rstrip("=")
    padded = text + "=" * (-len(text) % 4)
    alphabet = b"-_" if ("-" in text or "_" in text) else b"+/"
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 (standard or URL-safe alphabet)") from None


def _b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_b64decode),
    PlainSerializer(_b64encode, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "byte", "contentEncoding": "base64"}),
]
"""A protobuf ``bytes``: base64 text on the wire, bytes in Python."""
