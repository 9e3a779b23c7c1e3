"""Sinks and retry policies from the TOML tables ``[sinks.<name>]`` and ``[sink_retry]``.

::

    [sink_retry]                  # every key optional; defaults: 5, "1s", "30s", 0.2
    max_attempts = 5
    base_backoff = "1s"
    max_backoff = "30s"
    jitter = 0.2

    [sinks.mail]                  # the table name is the sink name
    kind = "email"                # "email" | "slack" | "webhook"
    host = "smtp.example.com"     # required
    port = 587                    # default 465 with tls, 587 with starttls = true, else 25
    from = "noreply@example.com"  # required
    username = "parsec"           # optional, with password
    password = "${SMTP_PASSWORD}"
    starttls = true               # optional: true requires it, false never; unset: if offered
    tls = false                   # optional: TLS from the first byte
    timeout = "30s"               # every kind; optional
    [sinks.mail.retry]            # every kind; overrides [sink_retry] key by key
    max_attempts = 3

    [sinks.team]
    kind = "slack"
    webhook_url = "${SLACK_WEBHOOK_URL}"   # required

    [sinks.hook]
    kind = "webhook"
    url = "https://example.com/hook"       # required
    secret = "${HOOK_SECRET}"              # optional: signs each request
    headers = { Authorization = "Bearer ${HOOK_TOKEN}" }

Every string value (header values included) may hold ``${VAR}`` references, replaced by
the environment variable's value; an unset variable is an error. Durations take the
forms of :func:`parsec.config.parse_duration`.

Guarantees: bad input raises :class:`parsec.config.ConfigError` naming the key path
(``sinks.mail.host``) with a stable code (``missing_key``, ``unknown_key``,
``unknown_kind``, ``wrong_type``, ``invalid_value``, ``out_of_range``, ``bad_duration``,
``bad_name``, ``missing_env``); nothing else is raised. Messages never repeat a value
that may be secret.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from parsec.errors import ParsecError
from parsec.sinks import _checks
from parsec.sinks.base import Sink, SinkRegistry, validate_sink_name
from parsec.sinks.email import EmailSink
from parsec.sinks.retry import RetryPolicy
from parsec.sinks.slack import SlackSink
from parsec.sinks.webhook import WebhookSink
from parsec.tomlfile import ConfigError, expect_table, parse_duration, reject_unknown, wrong_type

__all__ = ["DEFAULT_RETRY", "KINDS", "build_retry", "build_sinks"]

_RETRY_KEYS: Final = ("max_attempts", "base_backoff", "max_backoff", "jitter")
_COMMON_KEYS: Final = ("kind", "timeout", "retry")
_VAR_RE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_RETRY: Final = RetryPolicy()
"""The policy when ``[sink_retry]`` is absent: 5 attempts, 1s doubling to 30s, 20 % jitter."""


def build_retry(
    table: Mapping[str, object],
    key: str,
    *,
    base: RetryPolicy = DEFAULT_RETRY,
) -> RetryPolicy:
    """The policy in ``table`` (at key path ``key``): ``base`` with the keys the table
    sets replaced. Raises ConfigError for unknown keys and bad values."""
    table = expect_table(table, key)
    reject_unknown(table, _RETRY_KEYS, key)
    changes: dict[str, Any] = {}
    if "max_attempts" in table:
        changes["max_attempts"] = _integer(table["max_attempts"], f"{key}.max_attempts", least=1)
    for name in ("base_backoff", "max_backoff"):
        if name in table:
            changes[name] = parse_duration(table[name], f"{key}.{name}")
    if "jitter" in table:
        changes["jitter"] = _fraction(table["jitter"], f"{key}.jitter")
    try:
        return dataclasses.replace(base, **changes)
    except ValueError:  # the only check left: base_backoff <= max_backoff
        policy_key = f"{key}.max_backoff" if "max_backoff" in table else f"{key}.base_backoff"
        base_backoff = changes.get("base_backoff", base.base_backoff)
        max_backoff = changes.get("max_backoff", base.max_backoff)
        raise ConfigError(
            policy_key,
            f"base_backoff ({base_backoff:g}s) must not exceed max_backoff ({max_backoff:g}s)",
            code="out_of_range",
        ) from None


def build_sinks(
    table: Mapping[str, object],
    env: Mapping[str, str],
    *,
    base: RetryPolicy = DEFAULT_RETRY,
) -> tuple[SinkRegistry, dict[str, RetryPolicy]]:
    """The sinks of the ``[sinks]`` table, and the retry policy of every sink that has a
    ``retry`` table (``base`` with its overrides). ``env`` feeds ``${VAR}`` references."""
    table = expect_table(table, "sinks")
    registry = SinkRegistry()
    policies: dict[str, RetryPolicy] = {}
    for name, spec in table.items():
        key = f"sinks.{name}"
        try:
            validate_sink_name(name)
        except ParsecError:
            raise ConfigError(
                key, "a sink name is 1-64 letters, digits, '_', '-' or '.'", code="bad_name"
            ) from None
        spec = expect_table(spec, key)
        registry.add(_build_sink(name, spec, key, env))
        if "retry" in spec:
            policies[name] = build_retry(spec["retry"], f"{key}.retry", base=base)
    return registry, policies


def _build_sink(name: str, spec: Mapping[str, object], key: str, env: Mapping[str, str]) -> Sink:
    if "kind" not in spec:
        raise ConfigError(f"{key}.kind", "missing required key", code="missing_key")
    kind = spec["kind"]
    if not isinstance(kind, str):
        raise wrong_type(f"{key}.kind", "a string", kind)
    if kind not in KINDS:
        expected = ", ".join(f'"{k}"' for k in KINDS)
        raise ConfigError(
            f"{key}.kind", f"unknown sink kind {kind!r} (expected {expected})", code="unknown_kind"
        )
    keys, build = KINDS[kind]
    reject_unknown(spec, (*_COMMON_KEYS, *keys), key)
    reader = _Reader(spec, key, kind, env)
    kwargs = build(reader)
    if "timeout" in spec:
        kwargs["timeout"] = reader.timeout()
    try:
        return _CONSTRUCTORS[kind](name, **kwargs)
    except ParsecError as e:
        problem = e.message.split(": ", 1)[-1]
        raise ConfigError(key, problem, code="invalid_value") from None


class _Reader:
    """Typed, interpolated access to one ``[sinks.<name>]`` table."""

    def __init__(
        self, spec: Mapping[str, object], key: str, kind: str, env: Mapping[str, str]
    ) -> None:
        self._spec = spec
        self._key = key
        self._kind = kind
        self._env = env

    def string(self, name: str) -> str | None:
        """The interpolated, non-empty string at ``name``, or None when absent."""
        return self._text(name, None) if name in self._spec else None

    def required(self, name: str, check: _Check | None = None) -> str:
        """The interpolated, non-empty string at ``name``, which must be present and
        pass ``check``."""
        if name not in self._spec:
            raise ConfigError(
                f"{self._key}.{name}", f'required for kind "{self._kind}"', code="missing_key"
            )
        return self._text(name, check)

    def _text(self, name: str, check: _Check | None) -> str:
        key = f"{self._key}.{name}"
        text = _interpolate(self._spec[name], key, self._env)
        if not text.strip():
            raise ConfigError(key, "must not be empty", code="invalid_value")
        return str(_checked(check, text, key)) if check else text

    def boolean(self, name: str) -> bool | None:
        """The boolean at ``name``, or None when absent."""
        if name not in self._spec:
            return None
        value = self._spec[name]
        if not isinstance(value, bool):
            raise wrong_type(f"{self._key}.{name}", "a boolean (true or false)", value)
        return value

    def port(self) -> int | None:
        """The TCP port at ``port``, or None when absent."""
        if "port" not in self._spec:
            return None
        key = f"{self._key}.port"
        port = _integer(self._spec["port"], key, least=1)
        return int(_checked(_checks.port, port, key))

    def timeout(self) -> float:
        """The positive duration at ``timeout``."""
        key = f"{self._key}.timeout"
        seconds = parse_duration(self._spec["timeout"], key)
        if seconds <= 0:
            raise ConfigError(key, "must be more than 0s", code="out_of_range")
        return seconds

    def headers(self) -> dict[str, str]:
        """The table of header names to interpolated values at ``headers``."""
        if "headers" not in self._spec:
            return {}
        key = f"{self._key}.headers"
        table = expect_table(self._spec["headers"], key)
        headers: dict[str, str] = {}
        for name, value in table.items():
            _checked(_checks.header_name, name, f"{key}.{name}")
            text = _interpolate(value, f"{key}.{name}", self._env)
            headers[name] = _checked(_checks.header_value, text, f"{key}.{name}")
        return headers


def _email(reader: _Reader) -> dict[str, Any]:
    return {
        "host": reader.required("host", _checks.host),
        "port": reader.port(),
        "sender": reader.required("from", _checks.email_address),
        "username": reader.string("username"),
        "password": reader.string("password"),
        "starttls": reader.boolean("starttls"),
        "tls": bool(reader.boolean("tls")),
    }


def _slack(reader: _Reader) -> dict[str, Any]:
    return {"webhook_url": reader.required("webhook_url", _checks.http_url)}


def _webhook(reader: _Reader) -> dict[str, Any]:
    return {
        "url": reader.required("url", _checks.http_url),
        "headers": reader.headers(),
        "secret": reader.string("secret"),
    }


_Check = Callable[[Any], Any]
KINDS: Final[Mapping[str, tuple[tuple[str, ...], Callable[[_Reader], dict[str, Any]]]]] = {
    "email": (("host", "port", "from", "username", "password", "starttls", "tls"), _email),
    "slack": (("webhook_url",), _slack),
    "webhook": (("url", "headers", "secret"), _webhook),
}
"""Sink kinds: the keys each accepts (besides ``kind``, ``timeout``, ``retry``)."""
_CONSTRUCTORS: Final[Mapping[str, Callable[..., Sink]]] = {
    "email": EmailSink,
    "slack": SlackSink,
    "webhook": WebhookSink,
}


def _interpolate(value: object, key: str, env: Mapping[str, str]) -> str:
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(key, f"environment variable {name!r} is not set", code="missing_env")
        return env[name]

    return _VAR_RE.sub(substitute, value)


def _checked(check: _Check, value: Any, key: str) -> Any:
    try:
        return check(value)
    except ValueError as e:
        raise ConfigError(key, str(e), code="invalid_value") from None


def _integer(value: object, key: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(key, "an integer", value)
    if value < least:
        raise ConfigError(key, f"must be at least {least}, got {value}", code="out_of_range")
    return value


def _fraction(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number between 0 and 1", value)
    if not 0 <= value <= 1:
        raise ConfigError(key, f"must be between 0 and 1, got {value}", code="out_of_range")
    return float(value)
