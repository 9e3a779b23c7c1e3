"""Per-namespace channel options, named and defaulted as Centrifugo names them
(centrifuge-protocol.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChannelOptions", "Namespace"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace(ChannelOptions):
    """A named set of channel options; channels ``<name>:<rest>`` use it."""

    name: str
