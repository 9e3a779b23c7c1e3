"""The NATS subjects of one deployment (one subject prefix ``<p>``, default ``parsec``).

=====================  ================================================================
subject                carries
=====================  ================================================================
``<p>.ch.<token>``     a channel's publications, joins and leaves (``engine.wire``)
``<p>.control``        to every node: commands, node reports, survey questions
``<p>.node.<token>``   to one node (survey answers); the token encodes its id
=====================  ================================================================

A channel name may hold characters a subject token cannot (``.``, ``*``, ``>``,
whitespace) or should not; :func:`encode_channel` keeps ASCII letters, digits, ``-``,
``_`` and ``:`` as they are and writes every other character as ``~XX`` per UTF-8
byte (upper-case hex), so ``chat:room.1`` travels as ``parsec.ch.chat:room~2E1``. The
encoding is reversible (:func:`decode_channel`) and injective, and its tokens are
never empty (the empty name is ``~``).
"""

from __future__ import annotations

import re
import string
from typing import Final

from parsec.errors import ParsecError

__all__ = ["DEFAULT_SUBJECT_PREFIX", "Subjects", "decode_channel", "encode_channel"]

DEFAULT_SUBJECT_PREFIX: Final = "parsec"
_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-_:")
_ESCAPED: Final = re.compile(r"~([0-9A-F]{2})")
_BAD_PREFIX_TOKEN: Final = re.compile(r"[\s*>]|[^\x21-\x7e]")


def encode_channel(channel: str) -> str:
    """``channel`` as one subject token (see the module docstring)."""
    if not channel:
        return "~"
    if _SAFE.issuperset(channel):
        return channel
    out: list[str] = []
    for char in channel:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def decode_channel(token: str) -> str:
    """The channel name :func:`encode_channel` turned into ``token``.

    Raises ValueError for a token it cannot have made."""
    if token == "~":
        return ""
    pieces = _ESCAPED.split(token)
    raw = bytearray()
    for index, piece in enumerate(pieces):
        if index % 2:
            raw.append(int(piece, 16))
        elif piece and not _SAFE.issuperset(piece):
            raise ValueError(f"not an encoded channel: {token!r}")
        else:
            raw.extend(piece.encode("ascii"))
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ValueError(f"not an encoded channel (bad UTF-8): {token!r}") from None


class Subjects:
    """Subject names under one prefix.

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for a prefix that is empty, has an
    empty token (a leading, trailing or doubled ``.``), wildcards, whitespace or
    non-ASCII characters."""

    __slots__ = ("channel_root", "control", "node_root", "prefix")

    def __init__(self, prefix: str = DEFAULT_SUBJECT_PREFIX) -> None:
        if not prefix or any(
            not token or _BAD_PREFIX_TOKEN.search(token) for token in prefix.split(".")
        ):
            raise ParsecError(
                "PARSEC_INVALID_ARGUMENT",
                f"subject prefix {prefix!r} must be dot-separated printable ASCII tokens "
                "without wildcards (* >) or whitespace",
            )
        self.prefix = prefix
        self.channel_root = f"{prefix}.ch."
        self.control = f"{prefix}.control"
        self.node_root = f"{prefix}.node."

    def channel(self, channel: str) -> str:
        """The subject of a channel's messages."""
        return self.channel_root + encode_channel(channel)

    def node(self, node: str) -> str:
        """The subject of the control messages to one node."""
        return self.node_root + encode_channel(node)
