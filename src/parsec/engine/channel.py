"""What the engine knows of a channel: the options it enforces
(:class:`ChannelOptions`, Centrifugo's names and defaults, centrifuge-protocol.md §6),
what a name resolves to (:class:`ResolvedChannel`), and the :class:`ChannelResolver`
contract the node calls on every subscribe and publish.

The rules themselves (namespaces, the name grammar) are
:class:`parsec.channels.namespaces.ChannelRules`, a layer above, which implements the
resolver. :mod:`parsec.channels` re-exports these names where they were defined before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["ChannelOptions", "ChannelResolver", "ResolvedChannel", "has_safe_characters"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOptions:
    """What a channel keeps and who may do what in it.

    History is on only when both ``history_size`` and ``history_ttl`` are > 0.
    ``force_recovery`` implies positioning. The ``allow_*_for_client`` options open an
    action to every authenticated connection, ``_for_subscriber`` to connections
    subscribed to the channel, ``_for_anonymous`` additionally to anonymous ones.
    """

    presence: bool = False
    join_leave: bool = False
    force_push_join_leave: bool = False
    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = 30 * 24 * 3600.0
    force_positioning: bool = False
    allow_positioning: bool = False
    force_recovery: bool = False
    allow_recovery: bool = False
    allow_subscribe_for_client: bool = False
    allow_subscribe_for_anonymous: bool = False
    allow_publish_for_client: bool = False
    allow_publish_for_subscriber: bool = False
    allow_publish_for_anonymous: bool = False
    allow_history_for_client: bool = False
    allow_history_for_subscriber: bool = False
    allow_history_for_anonymous: bool = False
    allow_presence_for_client: bool = False
    allow_presence_for_subscriber: bool = False
    allow_presence_for_anonymous: bool = False
    allow_user_limited_channels: bool = False
    channel_regex: str = ""
    require_subscription_token: bool = False
    """Parsec's own option: every subscribe needs a token (always on for ``private``)."""
    max_publication_size: int = 0
    """Parsec's own option: the largest publication in bytes in these channels (data
    plus tags); 0 uses the server's ``server.max_publication_size``."""

    @property
    def history_enabled(self) -> bool:
        return self.history_size > 0 and self.history_ttl > 0


@dataclass(frozen=True, slots=True)
class ResolvedChannel:
    """What a channel name means under the configured rules."""

    name: str
    """The channel exactly as given."""
    namespace: str
    """The namespace name; ``""`` when the channel uses the ``without_namespace`` options."""
    options: ChannelOptions
    user_limited: frozenset[str] | None
    """The users listed after ``#`` when the namespace allows user-limited channels and the
    name has a ``#``; else None. Empty entries are dropped, so ``news#`` admits nobody."""
    token_required: bool
    """A subscription token is needed: ``$`` prefix, the ``private`` namespace, or the
    namespace's ``require_subscription_token``."""


def has_safe_characters(name: str) -> bool:
    """Whether every character of ``name`` is printable ASCII (``\x20``-``\x7e``).

    The one rule for the characters of any channel name, Parsec grammar or Centrifugo
    namespace: :class:`parsec.channels.namespaces.ChannelRules` applies it before
    anything else, so every client command, server API method and library call that
    names a channel refuses the rest (107, or ``PARSEC_CHANNEL_INVALID``)."""
    return name.isascii() and name.isprintable()


class ChannelResolver(Protocol):
    """Resolves channel names (:class:`parsec.channels.namespaces.ChannelRules`)."""

    def resolve(self, channel: str) -> ResolvedChannel:
        """What ``channel`` means under the configured rules.

        Raises:
            ClientError: ``errors.BAD_REQUEST`` (107) for a name no channel may have,
                ``errors.UNKNOWN_CHANNEL`` (102) for a namespace that is not configured.
        """
        ...
