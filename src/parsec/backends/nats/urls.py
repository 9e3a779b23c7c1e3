"""NATS broker URLs.

``nats://[user:password@]host[:port]`` (plain TCP) or ``tls://…`` (TLS, verified with
the system's CA store); several servers of one NATS cluster are given comma-separated,
``nats://a:4222,nats://b:4222``, all with the same scheme. The port defaults to 4222.
Credentials in a URL (``user:password@`` or a token as ``token@``) go to the server
and never into logs: :func:`redacted` hides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from parsec.errors import ParsecError

__all__ = ["NatsURL", "parse_url", "redacted"]

_SCHEMES = ("nats", "tls")


@dataclass(frozen=True, slots=True)
class NatsURL:
    """A parsed broker URL: the server URLs to hand to nats-py, and whether TLS is on."""

    servers: tuple[str, ...]
    tls: bool


def parse_url(url: str) -> NatsURL:
    """Check ``url`` and split it into servers.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` naming the problem (the URL's
    credentials are never repeated in the message)."""
    parts = [part.strip() for part in url.split(",")]
    schemes = set()
    for part in parts:
        schemes.add(_check_server(part))
    if len(schemes) > 1:
        raise _invalid(url, "mixes nats:// and tls:// servers")
    return NatsURL(tuple(parts), tls=schemes == {"tls"})


def redacted(url: str) -> str:
    """``url`` with any credentials replaced by ``***``, for logs and messages."""
    shown = []
    for part in url.split(","):
        scheme, sep, rest = part.strip().partition("://")
        if sep and "@" in rest.split("/", 1)[0]:
            rest = "***@" + rest.split("@", 1)[1]
        shown.append(f"{scheme}{sep}{rest}")
    return ",".join(shown)


def _check_server(part: str) -> str:
    try:
        split = urlsplit(part)
        port = split.port
    except ValueError as exc:
        raise _invalid(part, f"is malformed ({exc})") from None
    if split.scheme not in _SCHEMES:
        raise _invalid(part, "must start with nats:// or tls://")
    if not split.hostname:
        raise _invalid(part, "has no host")
    if port == 0:
        raise _invalid(part, "has port 0")
    if split.path not in ("", "/") or split.query or split.fragment:
        raise _invalid(part, "must be scheme://[credentials@]host[:port] with nothing after")
    return split.scheme


def _invalid(url: str, problem: str) -> ParsecError:
    return ParsecError("PARSEC_INVALID_ARGUMENT", f"NATS URL {redacted(url)!r} {problem}")
