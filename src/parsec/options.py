"""Options: everything a Parsec instance is configured with.

``parsec.config`` builds these from a TOML file, ``PARSEC_*`` environment variables and
command-line flags; an embedder builds them in code. Defaults follow the Go Parsec,
then Centrifugo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parsec.channels.options import ChannelOptions, Namespace
from parsec.sinks.base import SinkRegistry
from parsec.sinks.retry import RetryPolicy

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POOL_TIMEOUT",
    "ApiOptions",
    "AuthOptions",
    "BrokerOptions",
    "ClientOptions",
    "Options",
    "ServerOptions",
]


@dataclass(slots=True, kw_only=True)
class ServerOptions:
    addr: str = "127.0.0.1:8000"
    """Where ``parsec serve`` listens, ``host:port``."""
    allowed_origins: list[str] = field(default_factory=list)
    """Origins allowed to open a WebSocket. A request without an Origin header is always
    allowed; an empty list allows only same-host origins; ``"*"`` allows any."""
    max_frame_size: int = 65536
    """Largest inbound WebSocket message in bytes; larger closes with 1009."""
    max_publication_size: int = 65536
    """Largest publication in bytes: its data (compact JSON, as stored) plus its tags
    (encoded as JSON). A larger one is refused on every publish path before anything
    is stored or sent. A namespace may set its own (``max_publication_size`` there).
    At most half of ``client.queue_max_size``, so one publication can never fill a
    subscriber's queue (3008)."""
    max_request_body_size: int = 1024 * 1024
    """Largest HTTP request body in bytes, on every route of the ASGI app: a larger one
    is answered 413 as soon as its size is known, and no more of it reaches the app."""
    native_websocket: bool = True
    """``Parsec.run`` (``parsec serve``) serves ``/connection/websocket`` with the native
    transport (picows on the server socket, no ASGI); False sends it through the ASGI
    app like every other route. A mounted ``asgi_app()`` always uses ASGI."""

    @property
    def host(self) -> str:
        return self.addr.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.addr.rsplit(":", 1)[1])


@dataclass(slots=True, kw_only=True)
class AuthOptions:
    state_dir: Path | None = None
    """Where ``keyring.json`` lives. None keeps an ephemeral keyring (with a warning)."""
    token_hmac_secret: str | None = None
    """Shared HS256 secret for tokens that carry no ``kid`` header."""
    allow_anonymous: bool = False
    """Accept connect commands without a token (user ``""``)."""
    token_audience: str | None = None
    """When set, connection and subscription tokens must carry this ``aud``."""
    token_issuer: str | None = None
    """When set, connection and subscription tokens must carry this ``iss``."""
    keyring_poll: float = 5.0
    """How often (seconds) to look for changes to ``keyring.json`` made by another
    process (``parsec keys …``) and reload; 0 disables polling (SIGHUP still reloads)."""


@dataclass(slots=True, kw_only=True)
class ApiOptions:
    key: str | None = None
    """Server API key (``X-API-Key`` or ``Authorization: apikey <key>``). None
    disables ``/api`` unless ``insecure`` is set."""
    insecure: bool = False
    """Serve ``/api`` without a key. Only for trusted networks and tests."""


DEFAULT_POOL_SIZE = 50
"""Redis commands one node runs at once (``broker.pool_size``)."""
DEFAULT_POOL_TIMEOUT = 5.0
"""Seconds a Redis command waits for its turn (``broker.pool_timeout``)."""


@dataclass(slots=True, kw_only=True)
class BrokerOptions:
    url: str = "memory://"
    """Where shared state lives: ``memory://`` (one process) or a Redis URL
    (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
    ``redis+cluster://``) shared by every node of the cluster."""
    key_prefix: str = "parsec"
    """Prefix of every Redis key, so deployments can share one Redis."""
    pool_size: int = DEFAULT_POOL_SIZE
    """Redis only: how many of the node's commands run at once, each on a connection of
    its own (per master on Redis Cluster); a command beyond them waits its turn. The
    node's pub/sub listeners hold 5 connections more. By Little's law 50 connections
    at 1 ms a command carry 50,000 commands/s, more than one Python process issues; a
    bigger pool only costs sockets on Redis (``maxclients``, 10,000 by default, is
    shared by every node). docs/scaling.md says how to size it."""
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    """Redis only: how long (seconds, > 0) a command waits for its turn before it fails
    with ``PARSEC_BROKER_NOT_READY``. The default is one socket timeout: long enough
    for every busy connection to finish or time out once."""


@dataclass(slots=True, kw_only=True)
class ClientOptions:
    """Per-connection rules and limits (Centrifugo ``client.*``)."""

    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    stale_close_delay: float = 10.0
    expired_close_delay: float = 25.0
    expired_sub_close_delay: float = 25.0
    channel_limit: int = 128
    queue_max_size: int = 1024 * 1024
    presence_update_interval: float = 25.0
    presence_ttl: float = 60.0
    history_max_publication_limit: int = 300
    recovery_max_publication_limit: int = 300
    channel_max_length: int = 255


def _public(history: bool) -> Namespace:
    return Namespace(
        name="public",
        presence=True,
        history_size=100 if history else 0,
        history_ttl=300.0 if history else 0.0,
        force_recovery=history,
        allow_subscribe_for_client=True,
        allow_subscribe_for_anonymous=True,
    )


def _private(history: bool) -> Namespace:
    return Namespace(
        name="private",
        presence=True,
        history_size=100 if history else 0,
        history_ttl=300.0 if history else 0.0,
        force_recovery=history,
        require_subscription_token=True,
    )


def builtin_namespaces(*, history: bool = True) -> list[Namespace]:
    """Parsec's two namespaces: ``public`` (anyone may subscribe) and ``private``
    (a subscription token is always needed); both keep 100 publications for 5 min and
    force recovery — unless ``history`` is False (a broker that keeps no history,
    NATS), when they keep none and subscriptions are not recoverable."""
    return [_public(history), _private(history)]


@dataclass(slots=True, kw_only=True)
class Options:
    server: ServerOptions = field(default_factory=ServerOptions)
    auth: AuthOptions = field(default_factory=AuthOptions)
    api: ApiOptions = field(default_factory=ApiOptions)
    broker: BrokerOptions = field(default_factory=BrokerOptions)
    client: ClientOptions = field(default_factory=ClientOptions)
    namespaces: list[Namespace] = field(default_factory=list)
    """Operator namespaces. A namespace named ``public`` or ``private`` replaces the
    built-in options of that namespace; its name grammar stays enforced."""
    without_namespace: ChannelOptions = field(default_factory=ChannelOptions)
    """Options for channels with no ``:`` in their name."""
    node_name: str = "parsec"
    sinks: SinkRegistry | None = None
    """Out-of-band delivery sinks by name (``[sinks.<name>]``, see
    :mod:`parsec.sinks.config`), ready to send through. None: no sinks are configured,
    so handing a message to any sink fails with ``PARSEC_SINK_CONFIG_INVALID``."""
    sink_retry: RetryPolicy = field(default_factory=RetryPolicy)
    """The retry policy of every sink without its own (``[sink_retry]``)."""
    sink_retry_overrides: dict[str, RetryPolicy] = field(default_factory=dict)
    """Per-sink policies by sink name (``[sinks.<name>.retry]``, already merged over
    ``sink_retry``). A :class:`parsec.sinks.retry.RetryingSender` takes ``sinks``,
    ``policy=sink_retry`` and ``per_sink=sink_retry_overrides``."""
