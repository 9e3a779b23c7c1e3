"""Validation shared by the sink constructors and the config loader.

Each check returns the (normalised) value or raises ValueError with a message that
never repeats the value when it may be a secret.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

__all__ = ["email_address", "header_name", "header_value", "host", "http_url", "port"]

_ADDRESS_RE: Final = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+")
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host. The URL is not echoed:
    webhook URLs often carry a secret."""
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        raise ValueError("must be an http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if any(c.isspace() for c in value):
        raise ValueError("a URL must not contain whitespace")
    return value


def email_address(value: str) -> str:
    """``value`` if it is a bare address (``user@domain``, no display name)."""
    if not _ADDRESS_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address (user@domain)")
    return value


def host(value: str) -> str:
    """``value`` if it is a non-empty host name or address without whitespace."""
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be a host name or address")
    return value


def port(value: int) -> int:
    """``value`` if it is a TCP port number (1-65535)."""
    if isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f"must be a port number between 1 and 65535, got {value!r}")
    return value


def header_name(value: str) -> str:
    """``value`` if it is a valid HTTP header name (an RFC 9110 token)."""
    if not _TOKEN_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


def header_value(value: str) -> str:
    """``value`` if it holds no control characters (CR, LF, NUL …); not echoed."""
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ValueError("a header value must not contain control characters")
    return value
