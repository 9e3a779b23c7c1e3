"""Channels: Parsec's name grammar, namespaces and per-namespace options."""

from __future__ import annotations

from parsec.channels.names import ChannelName, InvalidChannelName, parse_name
from parsec.channels.namespaces import ChannelRules, ResolvedChannel, validate_namespace_name
from parsec.channels.options import ChannelOptions, Namespace

__all__ = [
    "ChannelName",
    "ChannelOptions",
    "ChannelRules",
    "InvalidChannelName",
    "Namespace",
    "ResolvedChannel",
    "parse_name",
    "validate_namespace_name",
]
