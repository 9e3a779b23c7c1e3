"""Options: everything a Parsec instance is configured with.

``parsec.config`` builds these from a TOML file, ``PARSEC_*`` environment variables and
command-line flags; an embedder builds them in code. Defaults follow the Go Parsec,
then Centrifugo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from parsec.channels.options import ChannelOptions, Namespace
from parsec.sinks.base import SinkRegistry
from parsec.sinks.retry import RetryPolicy

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POOL_TIMEOUT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "AccountsOptions",
    "ApiOptions",
    "AuthOptions",
    "BrokerOptions",
    "ClientOptions",
    "DatabaseOptions",
    "GitHubLoginOptions",
    "LogOptions",
    "NatsAccountsOptions",
    "OIDCGrant",
    "OIDCLoginOptions",
    "OIDCOptions",
    "ObservabilityOptions",
    "Options",
    "ServerOptions",
    "TokenBrokerOptions",
    "TokenBrokerRole",
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
    shutdown_timeout: float = 5.0
    """On SIGTERM / SIGINT: how long draining (clients told to reconnect elsewhere, the
    sink queue and in-flight API calls finished) may take before Parsec exits anyway."""
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


@dataclass(frozen=True, slots=True)
class OIDCGrant:
    """What members of one identity-provider group may do through the management API:
    ``verbs`` on the channels ``scope`` matches (a scope pattern such as ``public:**``),
    or, with ``deny``, may not (deny wins over every grant)."""

    if_group: str
    scope: str
    verbs: tuple[str, ...]
    deny: bool = False


@dataclass(slots=True, kw_only=True)
class OIDCOptions:
    """The OIDC bridge (``[auth.oidc]``): the management API accepts tokens of this
    OpenID provider (typically the ID tokens ``parsec login oidc`` stores), mapped to
    Parsec scopes by ``grants``."""

    issuer: str
    """The provider's issuer URL; its ``/.well-known/openid-configuration`` names the
    JWKS. Discovered when the server starts: a provider that cannot be discovered stops
    the start."""
    audience: str
    """The ``aud`` the tokens must carry (for ID tokens: the CLI's client id)."""
    subject_claim: str = "sub"
    """The claim naming the caller (audit logs, revocation by user)."""
    scopes_claim: str = "groups"
    """The dotted path of the claim holding the caller's groups (``realm_access.roles``)."""
    grants: list[OIDCGrant] = field(default_factory=list)
    """Group → scope; a token none of whose groups has a grant is refused."""


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
    jwks_url: str | None = None
    """An identity provider's JWKS URL (``http(s)://``; Keycloak:
    ``<base>/realms/<realm>/protocol/openid-connect/certs``). When set, connection and
    subscription tokens signed by its keys are accepted too (with the ``token_issuer``
    / ``token_audience`` checks); its keys are refetched on an unknown ``kid`` (at most
    every 10 s) and hourly. Centrifugo's ``token_jwks_public_endpoint``."""
    user_id_claim: str = "sub"
    """The claim of an identity provider's token that names the user (a top-level claim
    such as ``preferred_username``); tokens Parsec signs always use ``sub``."""
    oidc: OIDCOptions | None = None
    """The OIDC bridge for the management API (``[auth.oidc]``); None: off."""


@dataclass(slots=True, kw_only=True)
class ApiOptions:
    key: str | None = None
    """Server API key (``X-API-Key`` or ``Authorization: apikey <key>``). None
    disables ``/api`` unless ``insecure`` is set."""
    insecure: bool = False
    """Serve ``/api`` without a key. Only for trusted networks and tests."""


@dataclass(frozen=True, slots=True)
class TokenBrokerRole:
    """A role of the token broker's role authorizer and the channel globs it grants."""

    name: str
    patterns: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class TokenBrokerOptions:
    """The token broker (``[token_broker]``, :mod:`parsec.services.token_broker`)."""

    enabled: bool = False
    """Mount ``POST <prefix>/token``, ``<prefix>/token/delegate`` and ``<prefix>/revoke``."""
    prefix: str = "/parsec"
    """Where the routes are mounted."""
    roles_claim: str = "roles"
    """The dotted path of the claim holding the bearer's roles (``realm_access.roles``)."""
    roles: list[TokenBrokerRole] = field(default_factory=list)
    """Role → channel patterns (``[[token_broker.roles]]``). With none, only an
    administrator bearer (an operator management token) is granted channels."""
    default_ttl: float = 3600.0
    """Lifetime of a token whose request gives none (the Go Parsec's access TTL, 1 h)."""
    max_ttl: float = 86400.0
    """Longest lifetime a request may ask for; longer is clamped (the Go Parsec's 24 h
    ceiling)."""
    max_channels: int = 100
    """Most channels one request may name."""
    delegators: list[str] = field(default_factory=list)
    """User ids of the services that may mint tokens on behalf of any user
    (``POST <prefix>/token/delegate``); empty: delegation is refused."""


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
class DatabaseOptions:
    """The accounts database (``[database]``, :mod:`parsec.db`)."""

    url: str | None = None
    """``sqlite+aiosqlite:///FILE`` or ``postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB``.
    None: ``parsec.db`` in the state directory (``auth.state_dir``)."""


@dataclass(slots=True, kw_only=True)
class GitHubLoginOptions:
    """Login with GitHub (``[accounts.github]``): the OAuth app's credentials, and its
    endpoints (GitHub's by default; tests point them at a local fake)."""

    client_id: str
    client_secret: str
    authorize_url: str = "https://github.com/login/oauth/authorize"
    token_url: str = "https://github.com/login/oauth/access_token"
    user_url: str = "https://api.github.com/user"


@dataclass(slots=True, kw_only=True)
class OIDCLoginOptions:
    """Login with any OpenID Connect provider (``[accounts.oidc]``): authorization code
    flow with PKCE, discovered from ``issuer`` when the service starts."""

    issuer: str
    """The provider's issuer URL exactly as its discovery document names it."""
    client_id: str
    client_secret: str | None = None
    """None: a public client (PKCE only); else sent with HTTP Basic."""
    scopes: list[str] = field(default_factory=lambda: ["openid", "profile", "email"])
    username_claim: str = "preferred_username"
    """Dotted path of the claim a first login's username (and personal org slug) comes
    from; without it, the email's local part, then ``"user"``."""
    name: str = "Single sign-on"
    """The login page's label for this provider."""


@dataclass(slots=True, kw_only=True)
class AccountsOptions:
    """Accounts and tenancy (``[accounts]``, :mod:`parsec.services.accounts`): users,
    organisations, logins. Present: the node opens the database (``[database]``) and
    serves the login routes and ``/api/v1``."""

    session_key: str
    """Signs session cookies and OAuth states (HMAC); at least 32 bytes."""
    base_url: str
    """Where browsers reach this server (``https://parsec.example.com``): the OAuth
    redirect URI is built on it, and cookies are ``Secure`` when it is https."""
    session_ttl: float = 7 * 86400.0
    """How long a login lasts (the session cookie's lifetime)."""
    token_ttl: float = 30 * 86400.0
    """How long a user access token (``parsec login``'s device flow) lasts."""
    org_max_connections: int = 0
    """Connections one org may hold across the cluster (``/orgs/{slug}/…``; the other
    nodes' counts as they last reported them, a few seconds old at most); 0: no
    limit."""
    org_max_publications_per_second: float = 0.0
    """Publications one org may make a second on one node (clients and APIs together;
    bursts up to the same number); 0: no limit."""
    github: GitHubLoginOptions | None = None
    """Login with GitHub; None: not offered."""
    oidc: OIDCLoginOptions | None = None
    """Login with an OpenID Connect provider; None: not offered."""


@dataclass(slots=True, kw_only=True)
class NatsAccountsOptions:
    """Per-org NATS accounts (``[nats]``, :mod:`parsec.backends.nats.accounts`): the
    NATS server runs in operator mode and every org gets an account of its own, signed
    by this operator. The seeds are secrets: they are never logged nor shown."""

    operator_seed: str = field(repr=False)
    """The operator's nkey seed (``SO…``): signs each org's account JWT."""
    operator_jwt: str
    """The operator's JWT, as the server's ``operator`` setting has it."""
    system_account_jwt: str
    """The system account's JWT (signed by the operator; the server's
    ``system_account``)."""
    system_account_seed: str = field(repr=False)
    """The system account's nkey seed (``SA…``): signs the user through which account
    JWTs are pushed to the server's resolver (``$SYS.REQ.CLAIMS.UPDATE``)."""
    url: str | None = None
    """The NATS the accounts live on; None: ``broker.url`` when the broker is NATS."""


@dataclass(slots=True, kw_only=True)
class ObservabilityOptions:
    """Metrics, traces and the access log's trust (``[observability]``)."""

    metrics: bool = True
    """Serve Prometheus metrics at ``GET /metrics``."""
    metrics_bearer_token: str | None = field(default=None, repr=False)
    """When set, ``/metrics`` answers 401 without ``Authorization: Bearer <it>``."""
    metrics_addr: str | None = None
    """``host:port`` to serve ``/metrics`` on, apart from the main address; None: on
    the main address."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP collector (``http://host:4318``): spans go to ``<it>/v1/traces``.
    None: no tracing (a no-op that costs nothing)."""
    trusted_proxies: list[str] = field(default_factory=list)
    """CIDRs whose ``X-Forwarded-For`` is believed (the access log's ``remote_addr``)."""


LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")


@dataclass(slots=True, kw_only=True)
class LogOptions:
    """Logging (``[log]``)."""

    level: str = "info"
    """One of :data:`LOG_LEVELS`."""
    format: str = "text"
    """``text`` (human lines) or ``json`` (one JSON object per line)."""


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
    token_broker: TokenBrokerOptions = field(default_factory=TokenBrokerOptions)
    database: DatabaseOptions = field(default_factory=DatabaseOptions)
    accounts: AccountsOptions | None = None
    """Accounts and tenancy (``[accounts]``); None: single-tenant, no database."""
    nats: NatsAccountsOptions | None = None
    """Per-org NATS accounts (``[nats]``); None: one NATS account for all traffic."""
    namespaces: list[Namespace] = field(default_factory=list)
    """Operator namespaces. A namespace named ``public`` or ``private`` replaces the
    built-in options of that namespace; its name grammar stays enforced."""
    without_namespace: ChannelOptions = field(default_factory=ChannelOptions)
    """Options for channels with no ``:`` in their name."""
    node_name: str = "parsec"
    region: str = ""
    """Where this node runs (``eu-west-1``…): labels metrics, logs, traces and the
    manifest; empty: none."""
    observability: ObservabilityOptions = field(default_factory=ObservabilityOptions)
    log: LogOptions = field(default_factory=LogOptions)
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
