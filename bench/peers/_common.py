"""What the peer servers share: the command line, the heartbeat and token checks."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import jwt

__all__ = [
    "PING_INTERVAL_S",
    "PING_TIMEOUT_S",
    "PeerArgs",
    "parse_args",
    "peer_parser",
    "token_ok",
]

PING_INTERVAL_S = 25.0
"""Every server in a run pings its clients this often (Parsec: ``[client] ping_interval``
in ``bench/configs/parsec.toml``)."""
PING_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class PeerArgs:
    host: str
    port: int
    secret: str


def peer_parser(prog: str) -> argparse.ArgumentParser:
    """The options every peer takes: ``--host``, ``--port`` and ``--secret`` (the HS256
    secret of connection tokens); a peer may add its own."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    return parser


def parse_args(prog: str, argv: list[str] | None = None) -> PeerArgs:
    """``--host``, ``--port`` and ``--secret``."""
    args = peer_parser(prog).parse_args(argv)
    return PeerArgs(host=args.host, port=args.port, secret=args.secret)


def token_ok(token: str, secret: str) -> bool:
    """Whether ``token`` is an HS256 JWT signed with ``secret``, unexpired, with a
    ``sub`` (the checks Parsec makes on a connection token)."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub"]})
    except jwt.InvalidTokenError:
        return False
    return isinstance(claims.get("sub"), str)
