"""Build :class:`parsec.options.Options` from a TOML file, ``PARSEC_*`` variables and flags.

Precedence, highest first: ``overrides`` (command-line flags) > environment > file >
the defaults of :mod:`parsec.options`. Every field of ``ServerOptions`` (``[server]``),
``AuthOptions`` (``[auth]``), ``ApiOptions`` (``[api]``), ``ClientOptions`` (``[client]``),
``ChannelOptions`` (``[[namespaces]]`` with ``name``, and ``[without_namespace]``),
``DatabaseOptions`` (``[database]``) and the top-level ``node_name`` is settable under
its own name. ``[sinks.<name>]`` and
``[sink_retry]`` configure out-of-band delivery (:mod:`parsec.sinks.config`; their
``${VAR}`` references read the same environment).

Guarantees: a value either converts exactly to its field's type or loading fails with a
:class:`ConfigError` naming the key path (``namespaces[0].history_ttl``, an environment
variable name, or a dotted override key) and the problem. Nothing is coerced silently:
a float is never truncated to an integer and a string is never read as a boolean in a
file. Loading never raises anything but ``ConfigError`` for bad input.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from parsec.auth.scopes import Scope
from parsec.backends.capabilities import history_conflict
from parsec.channels.namespaces import validate_namespace_name
from parsec.channels.options import ChannelOptions, Namespace
from parsec.db import url as database_urls
from parsec.errors import ParsecError
from parsec.options import (
    LOG_FORMATS,
    LOG_LEVELS,
    AccountsOptions,
    ApiOptions,
    AuthOptions,
    BrokerOptions,
    ClientOptions,
    DatabaseOptions,
    GitHubLoginOptions,
    LogOptions,
    NatsAccountsOptions,
    ObservabilityOptions,
    OIDCGrant,
    OIDCLoginOptions,
    OIDCOptions,
    Options,
    ServerOptions,
    TokenBrokerOptions,
    TokenBrokerRole,
)
from parsec.sinks.config import DEFAULT_RETRY, build_retry, build_sinks
from parsec.tomlfile import (
    ConfigError,
    expect_table,
    parse_duration,
    reject_unknown,
    type_name,
    wrong_type,
)

__all__ = ["ENV_VARS", "ConfigError", "build_org_namespaces", "load_options", "parse_duration"]


ENV_VARS: Final[Mapping[str, str]] = {
    "PARSEC_ADDR": "server.addr",
    "PARSEC_ALLOWED_ORIGINS": "server.allowed_origins",
    "PARSEC_STATE_DIR": "auth.state_dir",
    "PARSEC_TOKEN_HMAC_SECRET": "auth.token_hmac_secret",
    "PARSEC_ALLOW_ANONYMOUS": "auth.allow_anonymous",
    "PARSEC_AUTH_JWKS_URL": "auth.jwks_url",
    "PARSEC_AUTH_USER_ID_CLAIM": "auth.user_id_claim",
    "PARSEC_API_KEY": "api.key",
    "PARSEC_API_INSECURE": "api.insecure",
    "PARSEC_BROKER_URL": "broker.url",
    "PARSEC_BROKER_KEY_PREFIX": "broker.key_prefix",
    "PARSEC_DATABASE_URL": "database.url",
    "PARSEC_NATS_URL": "nats.url",
    "PARSEC_NATS_OPERATOR_SEED": "nats.operator_seed",
    "PARSEC_NATS_OPERATOR_JWT": "nats.operator_jwt",
    "PARSEC_NATS_SYSTEM_ACCOUNT_JWT": "nats.system_account_jwt",
    "PARSEC_NATS_SYSTEM_ACCOUNT_SEED": "nats.system_account_seed",
    "PARSEC_REGION": "region",
    "PARSEC_LOG_LEVEL": "log.level",
    "PARSEC_LOG_FORMAT": "log.format",
    "PARSEC_SHUTDOWN_TIMEOUT": "server.shutdown_timeout",
    "PARSEC_METRICS": "observability.metrics",
    "PARSEC_METRICS_BEARER_TOKEN": "observability.metrics_bearer_token",
    "PARSEC_METRICS_ADDR": "observability.metrics_addr",
    "PARSEC_OTLP_ENDPOINT": "observability.otlp_endpoint",
    "PARSEC_TRUSTED_PROXIES": "observability.trusted_proxies",
}
"""Environment variables and the option each one sets. ``PARSEC_CONFIG`` names the file."""

_SECTIONS: Final[Mapping[str, type[Any]]] = {
    "server": ServerOptions,
    "auth": AuthOptions,
    "api": ApiOptions,
    "broker": BrokerOptions,
    "client": ClientOptions,
    "database": DatabaseOptions,
    "without_namespace": ChannelOptions,
    "observability": ObservabilityOptions,
    "log": LogOptions,
}
_TOP_LEVEL: Final = (
    *_SECTIONS,
    "namespaces",
    "node_name",
    "region",
    "sinks",
    "sink_retry",
    "token_broker",
    "accounts",
    "nats",
)

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def load_options(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Options:
    """Options from the TOML file at ``path`` (else ``$PARSEC_CONFIG``, else none), the
    ``PARSEC_*`` variables of ``env`` (default ``os.environ``; empty values count as
    unset) and ``overrides``: dotted keys such as ``"server.addr"`` whose ``None`` values
    count as unset. Raises :class:`ConfigError` for any bad file, key or value."""
    environ = os.environ if env is None else env
    if path is None and environ.get("PARSEC_CONFIG"):
        path = Path(environ["PARSEC_CONFIG"])
    raw: dict[str, Any] = _read_file(path) if path is not None else {}
    labels: dict[str, str] = {}
    for name, dotted in ENV_VARS.items():
        text = environ.get(name, "")
        if text:
            _assign(raw, dotted, _from_env(name, dotted, text))
            labels[dotted] = name
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _check_override_key(dotted)
            _assign(raw, dotted, value)
            labels[dotted] = dotted
    return _build(raw, labels, environ)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found", code="file_not_found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), f"invalid TOML: {e}", code="bad_toml") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot read config file: {e}", code="unreadable") from None


def _from_env(name: str, dotted: str, text: str) -> object:
    if dotted in ("server.allowed_origins", "observability.trusted_proxies"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if dotted in ("auth.allow_anonymous", "api.insecure", "observability.metrics"):
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(
            name,
            f"expected a boolean (true/false, 1/0, yes/no, on/off), got {text!r}",
            code="wrong_type",
        )
    return text


def _check_override_key(dotted: str) -> None:
    section, _, field = dotted.partition(".")
    if section in ("node_name", "region") and not field:
        return
    cls = _SECTIONS.get(section)
    if cls is None or field not in _field_types(cls):
        raise ConfigError(dotted, "unknown option", code="unknown_key")


def _assign(raw: dict[str, Any], dotted: str, value: object) -> None:
    *tables, last = dotted.split(".")
    node = raw
    for table in tables:
        child = node.setdefault(table, {})
        if not isinstance(child, dict):
            return  # the file's bad value for ``table`` is reported when building
        node = child
    node[last] = value


def _build(raw: Mapping[str, Any], labels: Mapping[str, str], env: Mapping[str, str]) -> Options:
    reject_unknown(raw, _TOP_LEVEL, "")
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        if section in raw:
            table = dict(expect_table(raw[section], section))
            oidc = _build_oidc(table.pop("oidc"), labels) if "oidc" in table else None
            kwargs[section] = _build_struct(cls, table, section, labels)
            if oidc is not None:
                kwargs[section].oidc = oidc
    if "namespaces" in raw:
        kwargs["namespaces"] = _build_namespaces(raw["namespaces"], labels)
    if "node_name" in raw:
        kwargs["node_name"] = _non_empty_str(raw["node_name"], labels.get("node_name", "node_name"))
    if "region" in raw:
        kwargs["region"] = _check_region(raw["region"], labels.get("region", "region"))
    if "token_broker" in raw:
        kwargs["token_broker"] = _build_token_broker(raw["token_broker"], labels)
    if "accounts" in raw:
        kwargs["accounts"] = _build_accounts(raw["accounts"], labels)
    if "nats" in raw:
        broker = kwargs.get("broker", BrokerOptions())
        kwargs["nats"] = _build_nats(raw["nats"], labels, broker.url)
    if "database" in raw and "url" in raw["database"]:
        database = kwargs["database"]
        key = labels.get("database.url", "database.url")
        _check_database_url(database.url, key)
    kwargs.update(_build_sinks(raw, env))
    options = Options(**kwargs)
    _check_client(options.client, labels)
    _check_publication_sizes(options, labels)
    _check_broker_features(options)
    return options


def _build_sinks(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    retry = build_retry(raw["sink_retry"], "sink_retry") if "sink_retry" in raw else DEFAULT_RETRY
    if "sink_retry" in raw:
        kwargs["sink_retry"] = retry
    if "sinks" in raw:
        kwargs["sinks"], kwargs["sink_retry_overrides"] = build_sinks(raw["sinks"], env, base=retry)
    return kwargs


def _build_namespaces(value: object, labels: Mapping[str, str]) -> list[Namespace]:
    if not isinstance(value, list):
        raise ConfigError(
            "namespaces",
            f"expected an array of tables ([[namespaces]]), got {type_name(value)}",
            code="wrong_type",
        )
    namespaces: list[Namespace] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        path = f"namespaces[{index}]"
        table = expect_table(item, path)
        if "name" not in table:
            raise ConfigError(f"{path}.name", "missing required key", code="missing_key")
        namespace = _build_struct(Namespace, table, path, labels)
        if namespace.name in seen:
            raise ConfigError(
                f"{path}.name", f"duplicate namespace {namespace.name!r}", code="duplicate"
            )
        seen.add(namespace.name)
        namespaces.append(namespace)
    return namespaces


ORG_MAX_NAMESPACES: Final = 50
ORG_MAX_HISTORY_SIZE: Final = 1000
ORG_MAX_HISTORY_TTL: Final = 7 * 86400.0
_ORG_FORBIDDEN_KEYS: Final = frozenset({"channel_regex"})
"""Keys an org may not set: a regular expression of an org's choosing would run on the
shared server (a catastrophic one is a denial of service)."""


def build_org_namespaces(value: object, base: Options) -> list[Namespace]:
    """An organisation's own namespaces (``PUT /api/v1/orgs/{slug}/namespaces``), as
    ``[[namespaces]]`` tables are read, and held to what the shared server allows: at
    most 50, no ``channel_regex``, ``history_size`` ≤ 1000 and ``history_ttl`` ≤ 7 days,
    publication sizes within ``base``'s client queue, history only where ``base``'s
    broker keeps it.

    Raises:
        ConfigError: naming the first key that is wrong (``namespaces[2].history_size``).
    """
    if isinstance(value, list) and len(value) > ORG_MAX_NAMESPACES:
        raise ConfigError(
            "namespaces", f"at most {ORG_MAX_NAMESPACES} namespaces", code="out_of_range"
        )
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                for key in _ORG_FORBIDDEN_KEYS.intersection(item):
                    raise ConfigError(
                        f"namespaces[{index}].{key}",
                        "not allowed in an organisation's namespaces",
                        code="not_allowed",
                    )
    namespaces = _build_namespaces(value, {})
    for index, namespace in enumerate(namespaces):
        if namespace.history_size > ORG_MAX_HISTORY_SIZE:
            raise ConfigError(
                f"namespaces[{index}].history_size",
                f"at most {ORG_MAX_HISTORY_SIZE} for an organisation",
                code="out_of_range",
            )
        if namespace.history_ttl > ORG_MAX_HISTORY_TTL:
            raise ConfigError(
                f"namespaces[{index}].history_ttl",
                f"at most {ORG_MAX_HISTORY_TTL / 3600:g}h for an organisation",
                code="out_of_range",
            )
    candidate = dataclasses.replace(base, namespaces=namespaces)
    _check_publication_sizes(candidate, {})
    _check_broker_features(candidate)
    return namespaces


def _build_token_broker(value: object, labels: Mapping[str, str]) -> TokenBrokerOptions:
    """``[token_broker]``: its scalar keys, and ``[[token_broker.roles]]`` tables of
    ``name`` and ``patterns``."""
    table = dict(expect_table(value, "token_broker"))
    roles = _build_roles(table.pop("roles")) if "roles" in table else []
    options: TokenBrokerOptions = _build_struct(TokenBrokerOptions, table, "token_broker", labels)
    options.roles = roles
    for name in ("default_ttl", "max_ttl"):
        if name in table:
            _positive(getattr(options, name), f"token_broker.{name}")
    if "max_channels" in table:
        _at_least(1)(options.max_channels, "token_broker.max_channels")
    if not options.prefix.startswith("/") or options.prefix.rstrip("/") == "":
        raise ConfigError(
            "token_broker.prefix",
            f'must be a path like "/parsec", got {options.prefix!r}',
            code="invalid_value",
        )
    if not options.roles_claim.strip():
        raise ConfigError("token_broker.roles_claim", "must not be empty", code="invalid_value")
    return options


def _build_oidc(value: object, labels: Mapping[str, str]) -> OIDCOptions:
    """``[auth.oidc]``: ``issuer`` and ``audience`` (required), the claims, and at least
    one grant (``grants = [{if_group, scope, verbs, deny}]``)."""
    path = "auth.oidc"
    table = dict(expect_table(value, path))
    grants = _build_grants(table.pop("grants", None))
    for required in ("issuer", "audience"):
        if required not in table:
            raise ConfigError(f"{path}.{required}", "missing required key", code="missing_key")
    options: OIDCOptions = _build_struct(OIDCOptions, table, path, labels)
    _check_http_url(options.issuer, f"{path}.issuer")
    for name in ("audience", "subject_claim", "scopes_claim"):
        _non_empty_str(getattr(options, name), f"{path}.{name}")
    options.grants = grants
    return options


MIN_SESSION_KEY: Final = 32
"""Bytes an ``[accounts] session_key`` has at least (HMAC-SHA256's block of entropy)."""


def _build_accounts(value: object, labels: Mapping[str, str]) -> AccountsOptions:
    """``[accounts]``: ``session_key`` (32+ bytes) and ``base_url`` (required), the
    session's lifetime, ``[accounts.github]`` and ``[accounts.oidc]``."""
    table = dict(expect_table(value, "accounts"))
    github = _build_github(table.pop("github")) if "github" in table else None
    oidc = _build_oidc_login(table.pop("oidc")) if "oidc" in table else None
    for required in ("session_key", "base_url"):
        if required not in table:
            raise ConfigError(f"accounts.{required}", "missing required key", code="missing_key")
    options: AccountsOptions = _build_struct(AccountsOptions, table, "accounts", labels)
    if len(options.session_key.encode()) < MIN_SESSION_KEY:
        raise ConfigError(
            "accounts.session_key",
            f"must be at least {MIN_SESSION_KEY} bytes (got {len(options.session_key.encode())}); "
            'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            code="invalid_value",
        )
    _check_http_url(options.base_url, "accounts.base_url")
    for ttl in ("session_ttl", "token_ttl"):
        if ttl in table:
            _positive(getattr(options, ttl), f"accounts.{ttl}")
    for quota in ("org_max_connections", "org_max_publications_per_second"):
        if getattr(options, quota) < 0:
            raise ConfigError(
                f"accounts.{quota}", "must be 0 (no limit) or more", code="invalid_value"
            )
    options.github = github
    options.oidc = oidc
    return options


_NATS_REQUIRED: Final = (
    "operator_seed",
    "operator_jwt",
    "system_account_jwt",
    "system_account_seed",
)


def _build_nats(value: object, labels: Mapping[str, str], broker_url: str) -> NatsAccountsOptions:
    """``[nats]``: per-org NATS accounts. The operator's and the system account's seeds
    and JWTs (required, checked to fit together; a seed is never repeated in an error)
    and ``url`` (default: ``broker.url`` when the broker is NATS)."""
    table = expect_table(value, "nats")
    for required in _NATS_REQUIRED:
        if required not in table:
            key = f"nats.{required}"
            raise ConfigError(key, "missing required key", code="missing_key")
    options: NatsAccountsOptions = _build_struct(NatsAccountsOptions, table, "nats", labels)
    try:
        from parsec.backends.nats.operator import problem
        from parsec.backends.nats.urls import parse_url
    except ImportError as exc:
        raise ConfigError(
            "nats",
            f"per-org NATS accounts need the nats extra ({exc.name} is missing): "
            "pip install 'parsec-realtime[nats]'",
            code="invalid_value",
        ) from None
    if options.url is None:
        if not broker_url.startswith(("nats://", "tls://")):
            raise ConfigError(
                "nats.url",
                "missing required key: the broker is not NATS (broker.url), so [nats] "
                "needs the url of its NATS",
                code="missing_key",
            )
        options.url = broker_url
    key = labels.get("nats.url", "nats.url")
    try:
        parse_url(options.url)
    except ParsecError as exc:
        raise ConfigError(key, exc.message, code="invalid_value") from None
    found = problem(options)
    if found is not None:
        name, message = found
        key = f"nats.{name}"
        raise ConfigError(labels.get(key, key), message, code="invalid_value")
    return options


def _build_github(value: object) -> GitHubLoginOptions:
    path = "accounts.github"
    table = expect_table(value, path)
    for required in ("client_id", "client_secret"):
        if required not in table:
            raise ConfigError(f"{path}.{required}", "missing required key", code="missing_key")
    options: GitHubLoginOptions = _build_struct(GitHubLoginOptions, table, path, {})
    for name in ("client_id", "client_secret"):
        _non_empty_str(getattr(options, name), f"{path}.{name}")
    for name in ("authorize_url", "token_url", "user_url"):
        _check_http_url(getattr(options, name), f"{path}.{name}")
    return options


def _build_oidc_login(value: object) -> OIDCLoginOptions:
    """``[accounts.oidc]``: ``issuer`` and ``client_id`` (required), an optional
    ``client_secret``, ``scopes`` (holding ``openid``), ``username_claim`` and ``name``."""
    path = "accounts.oidc"
    table = dict(expect_table(value, path))
    for required in ("issuer", "client_id"):
        if required not in table:
            raise ConfigError(f"{path}.{required}", "missing required key", code="missing_key")
    # "name" is a label here, not a namespace name: checked apart from _FIELD_CHECKS
    name = _non_empty_str(table.pop("name"), f"{path}.name") if "name" in table else None
    options: OIDCLoginOptions = _build_struct(OIDCLoginOptions, table, path, {})
    if name is not None:
        options.name = name
    _check_http_url(options.issuer, f"{path}.issuer")
    for field_name in ("client_id", "username_claim"):
        _non_empty_str(getattr(options, field_name), f"{path}.{field_name}")
    if "openid" not in options.scopes:
        raise ConfigError(
            f"{path}.scopes", 'must hold "openid" (an OpenID Connect login)', code="invalid_value"
        )
    return options


def _build_grants(value: object) -> list[OIDCGrant]:
    path = "auth.oidc.grants"
    if value is None:
        raise ConfigError(
            path,
            "missing required key: without a grant no token of the provider is accepted",
            code="missing_key",
        )
    if not isinstance(value, list) or not value:
        raise wrong_type(path, "a non-empty array of tables", value)
    return [_build_grant(item, f"{path}[{index}]") for index, item in enumerate(value)]


def _build_grant(value: object, path: str) -> OIDCGrant:
    table = expect_table(value, path)
    reject_unknown(table, ("if_group", "scope", "verbs", "deny"), path)
    for required in ("if_group", "scope", "verbs"):
        if required not in table:
            raise ConfigError(f"{path}.{required}", "missing required key", code="missing_key")
    verbs = typing.cast(list[str], _convert(list[str], table["verbs"], f"{path}.verbs"))
    deny = table.get("deny", False)
    if not isinstance(deny, bool):
        raise wrong_type(f"{path}.deny", "a boolean", deny)
    grant = OIDCGrant(
        _non_empty_str(table["if_group"], f"{path}.if_group"),
        _non_empty_str(table["scope"], f"{path}.scope"),
        tuple(verbs),
        deny,
    )
    try:
        Scope(grant.scope, grant.verbs, deny=grant.deny).validate()
    except ParsecError as exc:
        raise ConfigError(path, exc.message, code="invalid_value") from None
    return grant


def _build_roles(value: object) -> list[TokenBrokerRole]:
    if not isinstance(value, list):
        raise wrong_type("token_broker.roles", "an array of tables ([[token_broker.roles]])", value)
    roles: list[TokenBrokerRole] = []
    for index, item in enumerate(value):
        path = f"token_broker.roles[{index}]"
        table = expect_table(item, path)
        reject_unknown(table, ("name", "patterns"), path)
        for required in ("name", "patterns"):
            if required not in table:
                raise ConfigError(f"{path}.{required}", "missing required key", code="missing_key")
        name = _non_empty_str(table["name"], f"{path}.name")
        patterns = typing.cast(
            list[str], _convert(list[str], table["patterns"], f"{path}.patterns")
        )
        if name in {role.name for role in roles}:
            raise ConfigError(f"{path}.name", f"duplicate role {name!r}", code="duplicate")
        roles.append(TokenBrokerRole(name, tuple(patterns)))
    return roles


def _build_struct(
    cls: type[Any], table: Mapping[str, Any], path: str, labels: Mapping[str, str]
) -> Any:
    hints = _field_types(cls)
    reject_unknown(table, tuple(hints), path)
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        key = labels.get(f"{path}.{name}", f"{path}.{name}")
        converted = _convert(hints[name], value, key)
        check = _FIELD_CHECKS.get(name)
        kwargs[name] = check(converted, key) if check else converted
    return cls(**kwargs)


def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(hint: Any, value: object, key: str) -> object:
    """``value`` as the field type ``hint``, or ConfigError(key, …)."""
    if isinstance(hint, types.UnionType):
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return _non_empty_str(value, key) if inner is str else _convert(inner, value, key)
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise wrong_type(key, "an array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise wrong_type(f"{key}[{index}]", "a string", item)
        return list(value)
    if hint is float:
        return parse_duration(value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong_type(key, "a boolean (true or false)", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type(key, "an integer", value)
        return _at_least(0)(value, key)
    if hint is Path:
        return _path(_non_empty_str(value, key), key)
    if isinstance(value, Path):
        raise wrong_type(key, "a string", value)
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    return value


def _path(text: str, key: str) -> Path:
    if "\0" in text:
        raise ConfigError(key, "a path must not contain NUL characters", code="invalid_value")
    try:
        return Path(text).expanduser()
    except RuntimeError as e:  # ~user that does not exist, or no home directory
        raise ConfigError(key, f"cannot expand {text!r}: {e}", code="invalid_value") from None


def _check_addr(value: object, key: str) -> object:
    host, sep, port = str(value).rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(
            key,
            f'expected "host:port" with a port from 1 to 65535, got {value!r}',
            code="bad_addr",
        )
    if host.startswith("[") != host.endswith("]"):
        raise ConfigError(key, f"unbalanced brackets in IPv6 host {host!r}", code="bad_addr")
    return value


def _check_namespace_name(value: object, key: str) -> object:
    try:
        validate_namespace_name(str(value))
    except ValueError as e:
        raise ConfigError(key, str(e), code="bad_name") from None
    return value


def _check_regex(value: object, key: str) -> object:
    try:
        re.compile(str(value))
    except re.error as e:
        raise ConfigError(key, f"invalid regular expression: {e}", code="bad_regex") from None
    return value


def _check_origins(value: object, key: str) -> object:
    for index, origin in enumerate(typing.cast(list[str], value)):
        if not origin.strip():
            raise ConfigError(f"{key}[{index}]", "empty origin", code="invalid_value")
    return value


def _check_http_url(value: object, key: str) -> object:
    url = str(value)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ConfigError(
            key, f"expected an http:// or https:// URL, got {url!r}", code="invalid_value"
        )
    return value


def _check_database_url(value: object, key: str) -> object:
    """An accepted database URL (:mod:`parsec.db.url`); the message never shows a
    password."""
    problem = database_urls.problem(str(value))
    if problem is not None:
        raise ConfigError(key, problem, code="bad_database_url")
    return value


def _positive(value: object, key: str) -> object:
    if typing.cast(float, value) <= 0:
        raise ConfigError(key, f"must be more than 0, got {value}", code="out_of_range")
    return value


def _at_least(least: int) -> Callable[[object, str], object]:
    def check(value: object, key: str) -> object:
        if typing.cast(int, value) < least:
            raise ConfigError(key, f"must be at least {least}, got {value}", code="out_of_range")
        return value

    return check


def _check_region(value: object, key: str) -> str:
    """A region labels metrics and logs: short, and plain (letters, digits, ``-_.``)."""
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", value):
        raise ConfigError(
            key,
            f"must be up to 63 letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {value!r}",
            code="invalid_value",
        )
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[object, str], object]:
    def check(value: object, key: str) -> object:
        lowered = str(value).strip().lower()
        if lowered not in choices:
            raise ConfigError(
                key, f"must be one of {', '.join(choices)}, got {value!r}", code="invalid_value"
            )
        return lowered

    return check


def _check_cidrs(value: object, key: str) -> object:
    assert isinstance(value, list)
    for index, item in enumerate(value):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{key}[{index}]",
                f"not an IP address or CIDR (10.0.0.0/8, ::1): {item!r}",
                code="invalid_value",
            ) from None
    return value


_FIELD_CHECKS: Final[Mapping[str, Callable[[object, str], object]]] = {
    "max_frame_size": _at_least(1),
    "max_request_body_size": _at_least(1),
    "channel_max_length": _at_least(1),
    "pool_size": _at_least(1),
    "pool_timeout": _positive,
    "addr": _check_addr,
    "name": _check_namespace_name,
    "channel_regex": _check_regex,
    "allowed_origins": _check_origins,
    "jwks_url": _check_http_url,
    "user_id_claim": lambda value, key: _non_empty_str(value, key),
    "level": _one_of(LOG_LEVELS),
    "format": _one_of(LOG_FORMATS),
    "metrics_addr": _check_addr,
    "otlp_endpoint": _check_http_url,
    "trusted_proxies": _check_cidrs,
    "shutdown_timeout": _positive,
}


def _check_client(client: ClientOptions, labels: Mapping[str, str]) -> None:
    if 0 < client.ping_interval <= client.pong_timeout:
        raise ConfigError(
            labels.get("client.pong_timeout", "client.pong_timeout"),
            f"must be less than client.ping_interval ({client.ping_interval:g}s), "
            f"got {client.pong_timeout:g}s",
            code="out_of_range",
        )


def _check_publication_sizes(options: Options, labels: Mapping[str, str]) -> None:
    """Every publication size limit is at least 1 (0 in channel options: the server's)
    and at most half the client queue: one publication must never be able to fill a
    subscriber's queue, which disconnects every subscriber of its channel (3008)."""
    queue = options.client.queue_max_size
    tables: list[tuple[str, int]] = [
        ("server", options.server.max_publication_size),
        ("without_namespace", options.without_namespace.max_publication_size),
        *(
            (f"namespaces[{index}]", namespace.max_publication_size)
            for index, namespace in enumerate(options.namespaces)
        ),
    ]
    for table, limit in tables:
        key = f"{table}.max_publication_size"
        if table == "server" and limit < 1:
            raise ConfigError(
                labels.get(key, key), f"must be at least 1, got {limit}", code="out_of_range"
            )
        if limit * 2 > queue:
            raise ConfigError(
                labels.get(key, key),
                f"must be at most half of client.queue_max_size ({queue}), got {limit}: "
                "a publication that fills a subscriber's queue disconnects every "
                "subscriber of its channel (3008)",
                code="out_of_range",
            )


def _check_broker_features(options: Options) -> None:
    """Channel options the broker cannot serve (history on NATS) are refused here."""
    conflict = history_conflict(options)
    if conflict is not None:
        raise ConfigError(*conflict, code="unsupported_by_broker")


def _non_empty_str(value: object, key: str) -> str:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    if not value.strip():
        raise ConfigError(key, "must not be empty", code="invalid_value")
    return value
