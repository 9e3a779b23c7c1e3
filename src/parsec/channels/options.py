"""Per-namespace channel options, named and defaulted as Centrifugo names them
(centrifuge-protocol.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

from parsec.engine.channel import ChannelOptions

__all__ = ["ChannelOptions", "Namespace"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace(ChannelOptions):
    """A named set of channel options; channels ``<name>:<rest>`` use it."""

    name: str
