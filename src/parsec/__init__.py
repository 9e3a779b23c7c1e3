"""Parsec: a realtime messaging engine for Python, wire-compatible with Centrifugo."""

from __future__ import annotations

from parsec.channels.options import ChannelOptions, Namespace
from parsec.engine.codes import ClientError, Disconnect
from parsec.engine.types import ClientInfo, Publication, StreamPosition
from parsec.errors import ParsecError
from parsec.facade import Parsec
from parsec.options import (
    ApiOptions,
    AuthOptions,
    BrokerOptions,
    ClientOptions,
    Options,
    ServerOptions,
    TokenBrokerOptions,
    TokenBrokerRole,
)
from parsec.services.channels import Credentials
from parsec.services.delivery import DeliverySettings, SinkResult
from parsec.services.token_broker import TokenBrokerSettings
from parsec.sinks.base import Message
from parsec.version import __version__

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
    "TokenBrokerOptions",
    "TokenBrokerRole",
    "TokenBrokerSettings",
    "__version__",
]
