"""parsec.config: TOML file < PARSEC_* environment < overrides, with errors naming the key."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.channels.options import ChannelOptions, Namespace
from parsec.config import ConfigError, load_options, parse_duration
from parsec.options import (
    ApiOptions,
    AuthOptions,
    BrokerOptions,
    ClientOptions,
    OIDCGrant,
    OIDCOptions,
    Options,
    ServerOptions,
)

CONTRACT_TOML = """
[server]
addr = "127.0.0.1:8000"
allowed_origins = []
[auth]
state_dir = ".parsec"
token_hmac_secret = "s3cret"
allow_anonymous = false
[api]
key = "apikey"
[[namespaces]]
name = "chat"
history_size = 100
history_ttl = "300s"
presence = true
join_leave = true
force_recovery = true
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_history_for_subscriber = true
allow_presence_for_subscriber = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, **kwargs: Any) -> Options:
    return load_options(write(tmp_path, text), env=kwargs.pop("env", {}), **kwargs)


def config_error(tmp_path: Path, text: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, **kwargs)
    return caught.value


# -- loading --------------------------------------------------------------------------------


def test_nothing_configured_gives_the_defaults() -> None:
    """With no file, no environment and no overrides, the Options defaults apply."""
    assert load_options(env={}) == Options()


def test_contract_example_loads(tmp_path: Path) -> None:
    """The documented TOML example loads into the matching options."""
    options = load_text(tmp_path, CONTRACT_TOML)
    assert options.server.addr == "127.0.0.1:8000"
    assert options.server.allowed_origins == []
    assert options.auth.state_dir == Path(".parsec")
    assert options.auth.token_hmac_secret == "s3cret"
    assert options.api.key == "apikey"
    (chat,) = options.namespaces
    assert chat == Namespace(
        name="chat",
        history_size=100,
        history_ttl=300.0,
        presence=True,
        join_leave=True,
        force_recovery=True,
        allow_subscribe_for_client=True,
        allow_publish_for_subscriber=True,
        allow_history_for_subscriber=True,
        allow_presence_for_subscriber=True,
    )


def _toml_value(hint: Any, default: object) -> tuple[str, object]:
    """A TOML literal different from ``default`` for a field of type ``hint``, and the
    value it must load as."""
    if isinstance(default, bool):
        return ("false" if default else "true"), not default
    if hint is int:
        return str(typing.cast(int, default) + 7), typing.cast(int, default) + 7
    if hint is float:
        return f'"{typing.cast(float, default) + 90}s"', typing.cast(float, default) + 90
    if typing.get_origin(hint) is list:
        return '["https://a.example", "*"]', ["https://a.example", "*"]
    if "Path" in str(hint):
        return '"/srv/parsec-state"', Path("/srv/parsec-state")
    return '"custom-value"', "custom-value"


def _all_fields_table(cls: type[Any], header: str) -> tuple[str, dict[str, object]]:
    hints = typing.get_type_hints(cls)
    lines = [header]
    expected: dict[str, object] = {}
    instance = cls(name="chat") if cls is Namespace else cls()
    for field in dataclasses.fields(cls):
        if field.name == "oidc":  # a table of its own: see the [auth.oidc] tests
            continue
        if field.name == "name":
            lines.append('name = "chat"')
            expected["name"] = "chat"
            continue
        default = getattr(instance, field.name)
        value: object
        if field.name == "addr":
            literal, value = '"0.0.0.0:9999"', "0.0.0.0:9999"
        elif field.name == "channel_regex":
            literal, value = '"^[a-z]+$"', "^[a-z]+$"
        elif field.name == "jwks_url":
            literal, value = '"https://sso.example/certs"', "https://sso.example/certs"
        else:
            literal, value = _toml_value(hints[field.name], default)
        lines.append(f"{field.name} = {literal}")
        expected[field.name] = value
    return "\n".join(lines), expected


@pytest.mark.parametrize(
    ("cls", "header", "attribute"),
    [
        (ServerOptions, "[server]", "server"),
        (AuthOptions, "[auth]", "auth"),
        (ApiOptions, "[api]", "api"),
        (BrokerOptions, "[broker]", "broker"),
        (ClientOptions, "[client]", "client"),
        (ChannelOptions, "[without_namespace]", "without_namespace"),
        (Namespace, "[[namespaces]]", "namespaces"),
    ],
)
def test_every_option_field_is_settable_under_its_own_name(
    tmp_path: Path, cls: type[Any], header: str, attribute: str
) -> None:
    """Each field of each options class can be set from TOML with the field's name."""
    table, expected = _all_fields_table(cls, header)
    loaded = getattr(load_text(tmp_path, table), attribute)
    if attribute == "namespaces":
        loaded = loaded[0]
    for name, value in expected.items():
        assert getattr(loaded, name) == value, name


def test_publication_size_limits_load_per_server_and_per_namespace(tmp_path: Path) -> None:
    """``server.max_publication_size`` is the default; a namespace may set its own, up to
    half of the client queue; 0 (the default) in a namespace uses the server's."""
    options = load_text(
        tmp_path,
        "[server]\nmax_publication_size = 1000\nmax_request_body_size = 4096\n"
        "[client]\nqueue_max_size = 8000\n"
        '[[namespaces]]\nname = "docs"\nmax_publication_size = 4000\n'
        '[[namespaces]]\nname = "chat"\n',
    )
    assert options.server.max_publication_size == 1000
    assert options.server.max_request_body_size == 4096
    docs, chat = options.namespaces
    assert (docs.max_publication_size, chat.max_publication_size) == (4000, 0)


def test_node_name_is_a_top_level_key(tmp_path: Path) -> None:
    """node_name is set at the top of the file."""
    assert load_text(tmp_path, 'node_name = "edge-1"').node_name == "edge-1"


def test_state_dir_expands_the_home_directory(tmp_path: Path) -> None:
    """A state_dir starting with ~ is expanded."""
    options = load_text(tmp_path, '[auth]\nstate_dir = "~/parsec"')
    assert options.auth.state_dir == Path.home() / "parsec"


@pytest.mark.parametrize(
    ("state_dir", "words"),
    [("~no-such-user-here/x", "cannot expand"), ("a\0b", "NUL")],
)
def test_unusable_state_dir_paths_are_config_errors(state_dir: str, words: str) -> None:
    """A state_dir naming an unknown user's home or holding NUL is a ConfigError."""
    with pytest.raises(ConfigError, match=words) as caught:
        load_options(env={}, overrides={"auth.state_dir": state_dir})
    assert caught.value.key == "auth.state_dir"


# -- precedence -----------------------------------------------------------------------------


def test_environment_beats_the_file(tmp_path: Path) -> None:
    """A PARSEC_* variable overrides the same option from the file."""
    options = load_text(
        tmp_path,
        CONTRACT_TOML,
        env={"PARSEC_ADDR": "0.0.0.0:9000", "PARSEC_API_KEY": "from-env"},
    )
    assert options.server.addr == "0.0.0.0:9000"
    assert options.api.key == "from-env"
    assert options.auth.token_hmac_secret == "s3cret"


def test_overrides_beat_the_environment(tmp_path: Path) -> None:
    """A flag override wins over the environment and the file."""
    options = load_text(
        tmp_path,
        CONTRACT_TOML,
        env={"PARSEC_ADDR": "0.0.0.0:9000", "PARSEC_STATE_DIR": "/from/env"},
        overrides={"server.addr": "127.0.0.1:7000", "auth.state_dir": Path("/from/flag")},
    )
    assert options.server.addr == "127.0.0.1:7000"
    assert options.auth.state_dir == Path("/from/flag")


def test_none_overrides_and_empty_environment_values_count_as_unset(tmp_path: Path) -> None:
    """An override of None and an empty variable leave the file's value in place."""
    options = load_text(
        tmp_path,
        CONTRACT_TOML,
        env={"PARSEC_ADDR": "", "PARSEC_API_KEY": ""},
        overrides={"server.addr": None, "api.key": None},
    )
    assert options.server.addr == "127.0.0.1:8000"
    assert options.api.key == "apikey"


def test_every_environment_variable_sets_its_option(tmp_path: Path) -> None:
    """Each documented PARSEC_* variable sets its option, parsed to the option's type."""
    options = load_options(
        env={
            "PARSEC_ADDR": "10.0.0.1:8080",
            "PARSEC_STATE_DIR": str(tmp_path),
            "PARSEC_TOKEN_HMAC_SECRET": "hmac",
            "PARSEC_ALLOW_ANONYMOUS": "yes",
            "PARSEC_ALLOWED_ORIGINS": "https://a.example, https://b.example,,",
            "PARSEC_API_KEY": "key",
            "PARSEC_API_INSECURE": "1",
            "PARSEC_AUTH_JWKS_URL": "http://127.0.0.1:8080/realms/chat/certs",
            "PARSEC_AUTH_USER_ID_CLAIM": "preferred_username",
        }
    )
    assert options.auth.jwks_url == "http://127.0.0.1:8080/realms/chat/certs"
    assert options.auth.user_id_claim == "preferred_username"
    assert options.server.addr == "10.0.0.1:8080"
    assert options.server.allowed_origins == ["https://a.example", "https://b.example"]
    assert options.auth.state_dir == tmp_path
    assert options.auth.token_hmac_secret == "hmac"
    assert options.auth.allow_anonymous is True
    assert options.api.key == "key"
    assert options.api.insecure is True


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("OFF", False), ("0", False)])
def test_boolean_environment_values(text: str, expected: bool) -> None:
    """Boolean variables accept true/false, on/off, yes/no and 1/0 in any case."""
    options = load_options(env={"PARSEC_API_INSECURE": text})
    assert options.api.insecure is expected


def test_parsec_config_names_the_file(tmp_path: Path) -> None:
    """Without a path argument, PARSEC_CONFIG names the file to read."""
    path = write(tmp_path, '[api]\nkey = "from-file"')
    assert load_options(env={"PARSEC_CONFIG": str(path)}).api.key == "from-file"


def test_explicit_path_beats_parsec_config(tmp_path: Path) -> None:
    """A path passed in is read instead of the one PARSEC_CONFIG names."""
    path = write(tmp_path, '[api]\nkey = "explicit"')
    options = load_options(path, env={"PARSEC_CONFIG": str(tmp_path / "missing.toml")})
    assert options.api.key == "explicit"


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("300s", 300.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("2m30s500ms", 150.5),
        ("90", 90.0),
        (" 10s ", 10.0),
        (42, 42.0),
        (0.5, 0.5),
        (0, 0.0),
    ],
)
def test_durations_parse(value: object, seconds: float) -> None:
    """Durations accept unit strings, combinations and plain numbers of seconds."""
    assert parse_duration(value, "k") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["5x", "", "s", "-5s", "1h 30m", "5S", "1d", "h1", -1, math.inf, math.nan, True, None, []],
)
def test_bad_durations_name_the_key(value: object) -> None:
    """A bad duration raises ConfigError with code bad_duration, naming the key."""
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, "client.ping_interval")
    assert caught.value.code == "bad_duration"
    assert str(caught.value).startswith("client.ping_interval: ")
    assert caught.value.key == "client.ping_interval"


@given(
    hours=st.integers(0, 99),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(0, 999),
)
def test_composite_durations_add_up(hours: int, minutes: int, seconds: int, millis: int) -> None:
    """Any h/m/s/ms combination parses to the sum of its parts."""
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    expected = hours * 3600 + minutes * 60 + seconds + millis / 1000
    assert parse_duration(text, "k") == pytest.approx(expected)


def test_bad_duration_in_a_namespace_names_its_path(tmp_path: Path) -> None:
    """A bad history_ttl in the first namespace is reported as namespaces[0].history_ttl."""
    error = config_error(tmp_path, '[[namespaces]]\nname = "chat"\nhistory_ttl = "5 minutes"')
    assert error.key == "namespaces[0].history_ttl"
    assert "invalid duration '5 minutes'" in str(error)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "code", "words"),
    [
        ("bogus = 1", "bogus", "unknown_key", "unknown key"),
        ('[server]\naddres = "x:1"', "server.addres", "unknown_key", "did you mean 'addr'"),
        (
            '[[namespaces]]\nname = "ab"\nhistory_sise = 1',
            "namespaces[0].history_sise",
            "unknown_key",
            "did you mean 'history_size'",
        ),
        ('[without_namespace]\nname = "x"', "without_namespace.name", "unknown_key", "unknown key"),
        ("[server]\naddr = 8000", "server.addr", "wrong_type", "expected a string, got integer"),
        (
            '[auth]\nallow_anonymous = "yes"',
            "auth.allow_anonymous",
            "wrong_type",
            "expected a boolean",
        ),
        (
            "[client]\nchannel_limit = 1.5",
            "client.channel_limit",
            "wrong_type",
            "expected an integer, got float",
        ),
        (
            "[client]\nchannel_limit = true",
            "client.channel_limit",
            "wrong_type",
            "expected an integer, got boolean",
        ),
        (
            '[[namespaces]]\nname = "ab"\nhistory_size = -1',
            "namespaces[0].history_size",
            "out_of_range",
            "at least 0",
        ),
        ("[server]\nmax_frame_size = 0", "server.max_frame_size", "out_of_range", "at least 1"),
        (
            "[server]\nmax_publication_size = 0",
            "server.max_publication_size",
            "out_of_range",
            "at least 1",
        ),
        (
            "[server]\nmax_publication_size = 600000",
            "server.max_publication_size",
            "out_of_range",
            "at most half of client.queue_max_size (1048576)",
        ),
        (
            "[client]\nqueue_max_size = 100000",
            "server.max_publication_size",
            "out_of_range",
            "at most half of client.queue_max_size (100000), got 65536",
        ),
        (
            '[[namespaces]]\nname = "ab"\nmax_publication_size = 524289',
            "namespaces[0].max_publication_size",
            "out_of_range",
            "disconnects every subscriber of its channel (3008)",
        ),
        (
            "[server]\nmax_request_body_size = 0",
            "server.max_request_body_size",
            "out_of_range",
            "at least 1",
        ),
        (
            "[without_namespace]\nmax_publication_size = -1",
            "without_namespace.max_publication_size",
            "out_of_range",
            "at least 0",
        ),
        ("[broker]\npool_size = 0", "broker.pool_size", "out_of_range", "at least 1"),
        ('[broker]\npool_timeout = "0s"', "broker.pool_timeout", "out_of_range", "more than 0"),
        ('server = "x"', "server", "wrong_type", "expected a table, got string"),
        ('[namespaces]\nname = "ab"', "namespaces", "wrong_type", "array of tables"),
        (
            '[server]\nallowed_origins = "*"',
            "server.allowed_origins",
            "wrong_type",
            "array of strings",
        ),
        (
            "[server]\nallowed_origins = [1]",
            "server.allowed_origins[0]",
            "wrong_type",
            "expected a string",
        ),
        (
            '[server]\nallowed_origins = [" "]',
            "server.allowed_origins[0]",
            "invalid_value",
            "empty origin",
        ),
        ('[api]\nkey = ""', "api.key", "invalid_value", "must not be empty"),
        ('[auth]\nstate_dir = ""', "auth.state_dir", "invalid_value", "must not be empty"),
        ("node_name = 3", "node_name", "wrong_type", "expected a string"),
        (
            "[[namespaces]]\nhistory_size = 1",
            "namespaces[0].name",
            "missing_key",
            "missing required key",
        ),
        (
            '[[namespaces]]\nname = "a:b"',
            "namespaces[0].name",
            "bad_name",
            "invalid namespace name 'a:b'",
        ),
        ('[[namespaces]]\nname = "x"', "namespaces[0].name", "bad_name", "invalid namespace"),
        (
            '[[namespaces]]\nname = "chat"\n[[namespaces]]\nname = "chat"',
            "namespaces[1].name",
            "duplicate",
            "duplicate namespace 'chat'",
        ),
        (
            '[without_namespace]\nchannel_regex = "("',
            "without_namespace.channel_regex",
            "bad_regex",
            "invalid regular expression",
        ),
        (
            '[client]\npong_timeout = "30s"',
            "client.pong_timeout",
            "out_of_range",
            "less than client.ping_interval",
        ),
        ("namespaces = [1]", "namespaces[0]", "wrong_type", "expected a table, got integer"),
        (
            "[client]\nping_interval = 1979-05-27",
            "client.ping_interval",
            "bad_duration",
            "expected a duration, got date",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, code: str, words: str
) -> None:
    """Every bad key or value raises ConfigError naming the key path and the problem."""
    error = config_error(tmp_path, text)
    assert (error.key, error.code) == (key, code)
    assert str(error).startswith(f"{key}: ")
    assert words in str(error)


@pytest.mark.parametrize(
    "text",
    [
        'jwks_url = "ftp://sso.example/certs"',
        'jwks_url = "sso.example/certs"',
        'jwks_url = "https://"',
        'jwks_url = ""',
        'user_id_claim = ""',
        'user_id_claim = " "',
    ],
)
def test_bad_identity_provider_settings_name_the_key(tmp_path: Path, text: str) -> None:
    """auth.jwks_url must be an http(s) URL, auth.user_id_claim a non-empty claim name."""
    error = config_error(tmp_path, f"[auth]\n{text}")
    assert error.key == f"auth.{text.split()[0]}"
    assert error.code == "invalid_value"


@pytest.mark.parametrize(
    "addr", ["8000", "host", "host:", "host:0", "host:65536", "host:http", "[::1:80", ""]
)
def test_bad_addresses_are_rejected(tmp_path: Path, addr: str) -> None:
    """server.addr must be host:port with a port from 1 to 65535."""
    error = config_error(tmp_path, f'[server]\naddr = "{addr}"')
    assert error.code in ("bad_addr", "invalid_value")
    assert error.key == "server.addr"


@pytest.mark.parametrize("addr", [":8000", "0.0.0.0:1", "[::1]:65535", "example.com:80"])
def test_good_addresses_are_accepted(tmp_path: Path, addr: str) -> None:
    """Hosts may be empty, IPv4, bracketed IPv6 or names."""
    assert load_text(tmp_path, f'[server]\naddr = "{addr}"').server.addr == addr


def test_bad_environment_values_name_the_variable() -> None:
    """A bad PARSEC_* value is reported under the variable's name."""
    with pytest.raises(ConfigError) as caught:
        load_options(env={"PARSEC_ALLOW_ANONYMOUS": "maybe"})
    assert caught.value.key == "PARSEC_ALLOW_ANONYMOUS"
    with pytest.raises(ConfigError) as caught:
        load_options(env={"PARSEC_ADDR": "nowhere"})
    assert caught.value.key == "PARSEC_ADDR"
    assert caught.value.code == "bad_addr"


def test_bad_override_values_name_the_dotted_key() -> None:
    """A bad override value is reported under its dotted key."""
    with pytest.raises(ConfigError) as caught:
        load_options(env={}, overrides={"server.addr": "nope"})
    assert caught.value.key == "server.addr"


def test_unknown_override_keys_are_rejected() -> None:
    """An override for an option that does not exist is a ConfigError, not ignored."""
    with pytest.raises(ConfigError) as caught:
        load_options(env={}, overrides={"server.port": 1})
    assert caught.value.code == "unknown_key"


def test_environment_does_not_hide_a_bad_table_in_the_file(tmp_path: Path) -> None:
    """A variable for a section the file spelled wrongly still reports the file's error."""
    error = config_error(tmp_path, 'server = "x"', env={"PARSEC_ADDR": "127.0.0.1:1"})
    assert error.key == "server"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A syntax error names the file and the TOML problem."""
    path = write(tmp_path, "[server\naddr = 1")
    with pytest.raises(ConfigError) as caught:
        load_options(path, env={})
    assert caught.value.code == "bad_toml"
    assert str(path) in str(caught.value)
    assert "invalid TOML" in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported, not ignored."""
    with pytest.raises(ConfigError) as caught:
        load_options(tmp_path / "absent.toml", env={})
    assert caught.value.code == "file_not_found"


def test_a_directory_as_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that cannot be read as a file is a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        load_options(tmp_path, env={})
    assert caught.value.code == "unreadable"


def test_binary_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 TOML is a ConfigError."""
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe\x00key = 1")
    with pytest.raises(ConfigError):
        load_options(path, env={})


_OVERRIDE_KEYS = [
    f"{section}.{field.name}"
    for section, cls in (
        ("server", ServerOptions),
        ("auth", AuthOptions),
        ("api", ApiOptions),
        ("client", ClientOptions),
        ("without_namespace", ChannelOptions),
    )
    for field in dataclasses.fields(cls)
] + ["node_name"]
_ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@given(st.dictionaries(st.sampled_from(_OVERRIDE_KEYS), _ANY_VALUE, max_size=4))
def test_any_value_loads_or_raises_config_error(overrides: dict[str, object]) -> None:
    """Whatever values the options get, loading succeeds or raises ConfigError only."""
    with contextlib.suppress(ConfigError):
        load_options(env={}, overrides=overrides)


# -- [auth.oidc] ----------------------------------------------------------------------------

OIDC = """
[auth.oidc]
issuer = "https://sso.example/realms/acme"
audience = "parsec-cli"
scopes_claim = "realm_access.roles"
subject_claim = "email"
grants = [
  {if_group = "admins", scope = "public:**", verbs = ["manage", "publish"]},
  {if_group = "interns", scope = "public:news.**", verbs = ["manage"], deny = true},
]
"""


def test_the_oidc_bridge_loads(tmp_path: Path) -> None:
    oidc = load_text(tmp_path, OIDC).auth.oidc
    assert oidc == OIDCOptions(
        issuer="https://sso.example/realms/acme",
        audience="parsec-cli",
        subject_claim="email",
        scopes_claim="realm_access.roles",
        grants=[
            OIDCGrant("admins", "public:**", ("manage", "publish")),
            OIDCGrant("interns", "public:news.**", ("manage",), deny=True),
        ],
    )


def test_grants_may_be_an_array_of_tables(tmp_path: Path) -> None:
    text = """
[auth.oidc]
issuer = "https://sso.example"
audience = "parsec-cli"

[[auth.oidc.grants]]
if_group = "ops"
scope = "private:**"
verbs = ["subscribe"]
"""
    oidc = load_text(tmp_path, text).auth.oidc
    assert oidc is not None
    assert oidc.grants == [OIDCGrant("ops", "private:**", ("subscribe",))]
    assert (oidc.subject_claim, oidc.scopes_claim) == ("sub", "groups")


_BASE = {
    "issuer": '"https://i"',
    "audience": '"x"',
    "grants": '[{if_group = "a", scope = "public:**", verbs = ["manage"]}]',
}


def _grant(**fields: str | None) -> dict[str, str | None]:
    """``grants`` holding one grant: ``a`` may manage ``public:**``, with ``fields``
    changed (TOML literals; None removes one)."""
    grant = {"if_group": '"a"', "scope": '"public:**"', "verbs": '["manage"]', **fields}
    inline = ", ".join(f"{name} = {value}" for name, value in grant.items() if value is not None)
    return {"grants": f"[{{{inline}}}]"}


@pytest.mark.parametrize(
    ("changes", "key", "code"),
    [
        ({"issuer": None}, "auth.oidc.issuer", "missing_key"),
        ({"audience": None}, "auth.oidc.audience", "missing_key"),
        ({"grants": None}, "auth.oidc.grants", "missing_key"),
        ({"grants": "[]"}, "auth.oidc.grants", "wrong_type"),
        ({"grants": '["admins"]'}, "auth.oidc.grants[0]", "wrong_type"),
        ({"issuer": '"ftp://i"'}, "auth.oidc.issuer", "invalid_value"),
        ({"audience": '" "'}, "auth.oidc.audience", "invalid_value"),
        ({"scopes_claim": '""'}, "auth.oidc.scopes_claim", "invalid_value"),
        ({"client_id": '"y"'}, "auth.oidc.client_id", "unknown_key"),
        (_grant(if_group=None), "auth.oidc.grants[0].if_group", "missing_key"),
        (_grant(verbs='["fly"]'), "auth.oidc.grants[0]", "invalid_value"),
        (_grant(scope='"*:**"'), "auth.oidc.grants[0]", "invalid_value"),
        (_grant(verbs="[]"), "auth.oidc.grants[0]", "invalid_value"),
        (_grant(deny='"yes"'), "auth.oidc.grants[0].deny", "wrong_type"),
        (_grant(when="1"), "auth.oidc.grants[0].when", "unknown_key"),
    ],
)
def test_a_bad_oidc_bridge_names_the_key(
    tmp_path: Path, changes: dict[str, str | None], key: str, code: str
) -> None:
    table = {name: value for name, value in {**_BASE, **changes}.items() if value is not None}
    body = "\n".join(f"{name} = {value}" for name, value in table.items())
    error = config_error(tmp_path, f"[auth.oidc]\n{body}\n")
    assert (error.key, error.code) == (key, code), str(error)
