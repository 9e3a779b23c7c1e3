"""Where the Redis backends keep a channel's state, and the Lua scripts that change it.

Layout under a key prefix ``<p>`` (default ``parsec``), for a channel ``<ch>``:

=========================  ==========================  ===================================
key or pub/sub channel      type                        holds
=========================  ==========================  ===================================
``<p>:stream:{<ch>}``       STREAM, entry id = offset   history; field ``d`` = publication
``<p>:meta:{<ch>}``         HASH ``e``, ``s``           stream position: epoch, top offset
``<p>:result:{<ch>}:<k>``   HASH ``o``, ``e``           result of idempotency key ``<k>``
``<p>:presence:{<ch>}``     HASH client -> info         presence entries (ClientInfo JSON)
``<p>:expiry:{<ch>}``       ZSET client -> expire-at    when each presence entry expires
``<p>:pub:<ch>``            PUB/SUB                     publications, joins, leaves
``<p>:node:<id>``           PUB/SUB                     one broker's own anchor channel
=========================  ==========================  ===================================

Every key of a channel carries the same Redis Cluster hash tag (``{<ch>}``), so one
Lua script can touch them all on any deployment. A channel whose name contains ``}``
(or is empty) would cut the tag short; such a channel is tagged with a digest of its
name instead and keeps its full name after the tag, so keys stay unique.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from parsec.errors import ParsecError

__all__ = ["DEFAULT_KEY_PREFIX", "Keys", "load_script"]

DEFAULT_KEY_PREFIX = "parsec"
_FORBIDDEN_IN_PREFIX = frozenset("{}*?[]\\ \t\r\n")


class Keys:
    """The key names of one deployment (one key prefix).

    Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for an empty prefix or one with
    braces, glob characters or whitespace (they would break hash tags or key scans).
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        if not prefix or _FORBIDDEN_IN_PREFIX.intersection(prefix):
            raise ParsecError(
                "PARSEC_INVALID_ARGUMENT",
                f"key prefix {prefix!r} must be non-empty, without braces, "
                "glob characters or whitespace",
            )
        self.prefix = prefix

    def stream(self, channel: str) -> str:
        return f"{self.prefix}:stream:{_tagged(channel)}"

    def meta(self, channel: str) -> str:
        return f"{self.prefix}:meta:{_tagged(channel)}"

    def result(self, channel: str, idempotency_key: str) -> str:
        return f"{self.prefix}:result:{_tagged(channel)}:{idempotency_key}"

    def presence(self, channel: str) -> str:
        return f"{self.prefix}:presence:{_tagged(channel)}"

    def expiry(self, channel: str) -> str:
        return f"{self.prefix}:expiry:{_tagged(channel)}"

    def pubsub(self, channel: str) -> str:
        """The pub/sub channel a channel's messages travel on (not a key: untagged)."""
        return f"{self.prefix}:pub:{channel}"

    def anchor(self, node: str) -> str:
        """A pub/sub channel only one broker listens to."""
        return f"{self.prefix}:node:{node}"


def _tagged(channel: str) -> str:
    if channel and "}" not in channel:
        return "{" + channel + "}"
    digest = hashlib.sha1(channel.encode(), usedforsecurity=False).hexdigest()
    return "{" + digest + "}" + channel


def load_script(name: str) -> str:
    """The source of ``lua/<name>.lua`` shipped with this package."""
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")
