"""What the engine reads of its configuration: read-only views, each section a
:class:`typing.Protocol`.

:class:`parsec.options.Options` (a layer above) satisfies :class:`EngineSettings`
structurally; the engine never imports it. Only the settings the node, its sessions
and the transports handing connections to them read are listed here.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "AuthSettings",
    "BrokerSettings",
    "ClientSettings",
    "EngineSettings",
    "ServerSettings",
]


class ServerSettings(Protocol):
    @property
    def allowed_origins(self) -> list[str]: ...
    @property
    def max_frame_size(self) -> int: ...
    @property
    def max_publication_size(self) -> int: ...


class AuthSettings(Protocol):
    @property
    def allow_anonymous(self) -> bool: ...


class BrokerSettings(Protocol):
    @property
    def pool_size(self) -> int: ...


class ClientSettings(Protocol):
    @property
    def ping_interval(self) -> float: ...
    @property
    def pong_timeout(self) -> float: ...
    @property
    def stale_close_delay(self) -> float: ...
    @property
    def expired_close_delay(self) -> float: ...
    @property
    def expired_sub_close_delay(self) -> float: ...
    @property
    def channel_limit(self) -> int: ...
    @property
    def queue_max_size(self) -> int: ...
    @property
    def presence_update_interval(self) -> float: ...
    @property
    def presence_ttl(self) -> float: ...
    @property
    def history_max_publication_limit(self) -> int: ...
    @property
    def recovery_max_publication_limit(self) -> int: ...


class EngineSettings(Protocol):
    """The settings a :class:`parsec.engine.node.Node` runs with."""

    @property
    def server(self) -> ServerSettings: ...
    @property
    def auth(self) -> AuthSettings: ...
    @property
    def broker(self) -> BrokerSettings: ...
    @property
    def client(self) -> ClientSettings: ...
    @property
    def node_name(self) -> str: ...
