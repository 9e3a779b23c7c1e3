"""Parsec: a realtime messaging engine for Python, wire-compatible with Centrifugo."""

from __future__ import annotations

from parsec._facade import Parsec
from parsec._management import Credentials
from parsec._sinking import DeliverySettings, SinkResult
from parsec._version import __version__
from parsec.channels.options import ChannelOptions, Namespace
from parsec.engine.codes import ClientError, Disconnect
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.errors import ParsecError
from parsec.options import (
    ApiOptions,
    AuthOptions,
    BrokerOptions,
    ClientOptions,
    Options,
    ServerOptions,
)
from parsec.sinks.base import Message

__all__ = [
    "ApiOptions",
    "AuthOptions",
    "BrokerOptions",
    "ChannelOptions",
    "ClientError",
    "ClientInfo",
    "ClientOptions",
    "Credentials",
    "DeliverySettings",
    "Disconnect",
    "Message",
    "Namespace",
    "Options",
    "Parsec",
    "ParsecError",
    "Publication",
    "ServerOptions",
    "SinkResult",
    "StreamPosition",
    "__version__",
]
