"""The commented sample configuration ``parsec config init`` writes.

Every section of :class:`parsec.options.Options` appears with its defaults and a comment
per key (docs/configuration.md's "A complete file" is the reference; a test keeps the
two in agreement). The file is written so that it loads unchanged, and so that it still
loads when every disabled setting is enabled:

- an active line (``key = value``, ``[table]``) is a default, or a fresh secret;
- a disabled setting is a line ``# key = value`` or ``# [table]`` (one ``#``, one
  space; a disabled array's items are lines ``# {…},`` and ``# ]``): removing those
  two characters enables it;
- everything else after a ``#`` is prose.

Secrets are never fixed examples: :func:`sample_config` puts a fresh random value
(``secrets.token_urlsafe``) wherever a secret is required, so a copy deployed unchanged
still holds secrets nobody else knows.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

__all__ = ["SECRET_BYTES", "TEMPLATE", "sample_config"]

SECRET_BYTES: Final = 32
"""Random bytes in each generated secret (43 URL-safe characters)."""

TEMPLATE: Final = """\
# Parsec configuration, written by `parsec config init`.
#
# `parsec serve --config parsec.toml` reads it. Flags win over PARSEC_* environment
# variables, which win over this file, which wins over the defaults shown here
# (docs/configuration.md lists every key and variable). Durations: "250ms", "30s",
# "5m", "1h30m" or a number of seconds. Unknown keys are errors.
#
# A line "# key = value" or "# [table]" is a setting you may enable by deleting its
# "# ". Secrets below were generated for this file only: keep it readable by the
# server's user alone (it was written with mode 0600), or move them to the
# environment (PARSEC_API_KEY, PARSEC_TOKEN_HMAC_SECRET, ...).

node_name = "parsec"           # this node's name in the manifest and the cluster
region = ""                    # where this node runs ("eu-west-1"): labels metrics, logs, traces

[server]
addr = "127.0.0.1:8000"        # host:port; in a container "0.0.0.0:8000"
allowed_origins = []           # [] = same host only; ["*"] = any; "https://*.example.com"
max_frame_size = 65536         # inbound WebSocket message limit; larger closes with 1009
max_publication_size = 65536   # largest publication (data + tags, bytes), every publish path;
                               # at most client.queue_max_size / 2
max_request_body_size = 1048576  # largest HTTP request body on any route; larger -> 413
native_websocket = true        # serve /connection/websocket natively (picows), not through ASGI
shutdown_timeout = "5s"        # SIGTERM/SIGINT: how long draining may take before exiting

[log]
level = "info"                 # debug | info | warning | error (--log-level)
format = "text"                # text | json: one JSON object per line (--log-format)

[observability]
metrics = true                 # Prometheus metrics at GET /metrics
# metrics_bearer_token = "@metrics_bearer_token@"  # /metrics needs this bearer
# metrics_addr = "127.0.0.1:9100"  # serve /metrics on its own address instead
# otlp_endpoint = "http://127.0.0.1:4318"  # OTLP/HTTP traces to <endpoint>/v1/traces; unset: none
trusted_proxies = []           # CIDRs whose X-Forwarded-For the access log believes

[auth]
state_dir = ".parsec"          # keyring.json, revocations.json, operator.token (dir 0700);
                               # relative to the directory parsec serve runs in
# token_hmac_secret = "@token_hmac_secret@"  # shared HS256 secret for tokens without a kid header
allow_anonymous = false        # accept connect without a token (user "")
# token_audience = "realtime.example.com"  # when set, tokens must carry this aud
# token_issuer = "auth.example.com"        # when set, tokens must carry this iss
keyring_poll = "5s"            # reload keyring.json changed by another process; 0 = off
# jwks_url = "https://sso.example.com/realms/chat/protocol/openid-connect/certs"
                               # when set, tokens signed by this identity provider's keys
                               # are accepted too
user_id_claim = "sub"          # the identity provider token's claim that names the user

# [auth.oidc]                  # the management API accepts this OpenID provider's tokens
# issuer = "https://sso.example.com/realms/ops"  # discovered at start
# audience = "parsec-cli"      # required: the aud its tokens carry (the CLI's client id)
# subject_claim = "sub"        # who the caller is (audit, revocation by user)
# scopes_claim = "groups"      # dotted path of the caller's groups ("realm_access.roles")
# grants = [                 # group -> scope; deny wins; a token with no grant is refused
# { if_group = "parsec-admins", scope = "public:**", verbs = ["subscribe", "publish", "manage"] },
# { if_group = "parsec-admins", scope = "private:**", verbs = ["subscribe", "publish", "manage"] },
# { if_group = "interns", scope = "private:**", verbs = ["manage"], deny = true },
# ]

[api]
key = "@api_key@"  # server API key (X-API-Key or Authorization: apikey)
insecure = false               # serve /api without a key (trusted networks only)

[broker]
url = "memory://"              # one process; or redis://host:6379/0, or nats://host:4222
                               # (fan-out only, no history), shared by every node
key_prefix = "parsec"          # Redis key prefix / NATS subject prefix
pool_size = 50                 # Redis: commands at once, each on its own connection
pool_timeout = "5s"            # Redis: how long a command waits for its turn

[database]                     # the accounts database (used with [accounts])
# url = "postgresql+asyncpg://parsec@127.0.0.1:5432/parsec"
                               # unset: sqlite parsec.db in auth.state_dir

# [accounts]                   # users, organisations, logins; unset: single-tenant
# session_key = "@session_key@"  # signs cookies and OAuth states (32+ bytes)
# base_url = "https://parsec.example.com"  # where browsers reach this server
# session_ttl = "168h"         # how long a login lasts (7 days)
# token_ttl = "720h"           # how long a `parsec login` access token lasts (30 days)
# org_max_connections = 0      # connections per org across the cluster; 0: no cap
# org_max_publications_per_second = 0  # an org's publications per node per second; 0: no cap

# [accounts.github]            # "Log in with GitHub"; unset: not offered
# client_id = "Iv1.0123456789abcdef"  # your GitHub OAuth app's
# client_secret = "from-your-github-oauth-app"
# authorize_url = "https://github.com/login/oauth/authorize"
# token_url = "https://github.com/login/oauth/access_token"
# user_url = "https://api.github.com/user"

# [accounts.oidc]              # "Log in with OpenID Connect"; unset: not offered
# issuer = "https://sso.example.com/realms/acme"  # discovered at start; must match exactly
# client_id = "parsec"
# client_secret = "from-your-identity-provider"  # unset: a public client (PKCE only)
# scopes = ["openid", "profile", "email"]
# username_claim = "preferred_username"  # dotted path; else the email's local part
# name = "Single sign-on"      # the label on /auth/login

# Per-org NATS accounts, [nats]: url, operator_seed, operator_jwt, system_account_jwt and
# system_account_seed (seeds are secrets); docs/nats-accounts.md makes these values.

[client]
ping_interval = "25s"          # server ping; 0 disables
pong_timeout = "10s"           # no pong in time -> 3012 (must be < ping_interval)
stale_close_delay = "10s"      # no connect in time -> 3502
expired_close_delay = "25s"    # grace after the connection token expires -> 3005
expired_sub_close_delay = "25s"  # the same for a subscription token
channel_limit = 128            # subscriptions per connection -> 106 beyond
queue_max_size = 1048576       # bytes queued for one client -> 3008 beyond
presence_update_interval = "25s"  # how often a connection refreshes its presence
presence_ttl = "60s"           # presence not refreshed for this long expires
history_max_publication_limit = 300   # most publications one history call returns
recovery_max_publication_limit = 300  # most publications one recovery returns
channel_max_length = 255       # longest channel name

[token_broker]                 # POST /parsec/token, /token/delegate, /revoke
enabled = false                # mount the routes
prefix = "/parsec"             # where they are mounted
roles_claim = "roles"          # dotted path of the bearer's roles claim
default_ttl = "1h"             # lifetime of a token when the request gives no ttl
max_ttl = "24h"                # a longer ttl is clamped to this
max_channels = 100             # most channels one request may ask for
delegators = []                # user ids that may mint tokens on behalf of other users

# [[token_broker.roles]]       # with no roles, only operator bearers are granted channels
# name = "member"
# patterns = ["chat:*"]        # globs over the whole channel name

[without_namespace]            # channels with no ":" (all options off by default)
                               # it takes every key of [[namespaces]] below but name
allow_subscribe_for_client = false

# [[namespaces]]               # one table per namespace ("chat:room"); public and
                               # private are built in
# name = "chat"
# history_size = 100           # history is on when size and ttl are both > 0
# history_ttl = "300s"
# history_meta_ttl = "720h"    # how long a stream position survives idle
# presence = true
# join_leave = true
# force_push_join_leave = false
# force_recovery = true        # every subscription recoverable
# allow_recovery = false       # clients may ask for recovery
# force_positioning = false
# allow_positioning = false
# allow_subscribe_for_client = true
# allow_subscribe_for_anonymous = false
# allow_publish_for_client = false
# allow_publish_for_subscriber = true
# allow_publish_for_anonymous = false
# allow_history_for_client = false
# allow_history_for_subscriber = true
# allow_history_for_anonymous = false
# allow_presence_for_client = false
# allow_presence_for_subscriber = true
# allow_presence_for_anonymous = false
# allow_user_limited_channels = false  # "news#42,43": listed users subscribe without a token
# channel_regex = ""           # the part after "chat:" must fullmatch it
# require_subscription_token = false
# max_publication_size = 0     # this namespace's own limit; 0 = server.max_publication_size

# [sink_retry]                 # out-of-band delivery retries (docs/sinks.md)
# max_attempts = 5
# base_backoff = "1s"
# max_backoff = "30s"
# jitter = 0.2

# [sinks.team]                 # a sink: kind email, slack or webhook (docs/sinks.md)
# kind = "slack"
# webhook_url = "${SLACK_WEBHOOK_URL}"  # ${VAR}: read from the environment
"""
"""The sample, with ``@name@`` placeholders for the generated secrets."""

_SECRETS: Final = ("api_key", "token_hmac_secret", "metrics_bearer_token", "session_key")


def sample_config(secret: Callable[[], str] | None = None) -> str:
    """The sample configuration with a fresh secret from ``secret()`` (default: 32
    random bytes, URL-safe) for each of its secrets, each drawn anew."""
    draw = secret or (lambda: secrets.token_urlsafe(SECRET_BYTES))
    text = TEMPLATE
    for name in _SECRETS:
        text = text.replace(f"@{name}@", draw())
    return text
