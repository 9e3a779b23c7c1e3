"""``parsec config init`` and ``parsec config check``: the sample configuration is a file
``parsec serve`` starts with unchanged, it holds fresh secrets only, and it agrees with
Options and with docs/configuration.md's complete file."""

from __future__ import annotations

import dataclasses
import re
import stat
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cli_runs import Proc, assert_clean_error, invoke

from parsec.channels.options import ChannelOptions, Namespace
from parsec.cli.config_sample import sample_config
from parsec.config import load_options
from parsec.options import (
    AccountsOptions,
    ApiOptions,
    AuthOptions,
    BrokerOptions,
    ClientOptions,
    DatabaseOptions,
    GitHubLoginOptions,
    LogOptions,
    ObservabilityOptions,
    OIDCLoginOptions,
    OIDCOptions,
    Options,
    ServerOptions,
    TokenBrokerOptions,
    TokenBrokerRole,
)
from parsec.sinks.retry import RetryPolicy
from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")

REPO = Path(__file__).resolve().parents[2]
DISABLED = re.compile(r"^# (?=[\[{\]]|[A-Za-z_]+ = )")
"""A disabled setting of the sample: ``# key = value``, ``# [table]``, or an array's
``# {item},`` and ``# ]``."""
NOT_TOML_KEYS = {"sink_retry_overrides"}
"""Fields of Options with no table of their own (``[sinks.<name>.retry]`` sets it)."""


def enabled(sample: str) -> str:
    """The sample with every disabled setting enabled."""
    return "".join(DISABLED.sub("", line) for line in sample.splitlines(keepends=True))


def keys(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path of a parsed TOML document (``namespaces[].name``)."""
    for name, value in table.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from keys(value, f"{path}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                yield from keys(item, f"{path}[].")
        else:
            yield path


def complete_file_of_the_docs() -> str:
    page = (REPO / "docs" / "configuration.md").read_text()
    section = page.split("## A complete file", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


# -- init writes a file serve starts with -------------------------------------------------


def test_init_writes_a_private_file_serve_starts_with_unchanged(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """`parsec config init` writes parsec.toml (0600); `parsec serve --config parsec.toml`
    starts with it as it is and answers /healthz, and the file stays as written."""
    result = invoke("config", "init")
    assert result.exit_code == 0, result.output
    assert "wrote parsec.toml" in result.stderr
    written = (tmp_path / "parsec.toml").read_bytes()
    assert stat.S_IMODE((tmp_path / "parsec.toml").stat().st_mode) == 0o600
    port = free_port()
    proc = spawn("serve", "--config", "parsec.toml", "--addr", f"127.0.0.1:{port}", cwd=tmp_path)
    proc.wait_for("err", "parsec listening on")
    assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok")
    assert (tmp_path / ".parsec" / "operator.token").exists()  # the sample's state_dir
    assert (tmp_path / "parsec.toml").read_bytes() == written


def test_init_writes_to_the_path_given(tmp_path: Path) -> None:
    """`parsec config init etc/parsec.toml` writes there, 0600 whatever the umask."""
    (tmp_path / "etc").mkdir()
    result = invoke("config", "init", "etc/parsec.toml")
    assert result.exit_code == 0, result.output
    target = tmp_path / "etc" / "parsec.toml"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    load_options(target, env={})


def test_init_refuses_to_replace_a_file_unless_forced(tmp_path: Path) -> None:
    """An existing file is kept (exit 2, one error line) unless --force, which replaces
    it and makes it 0600."""
    target = tmp_path / "parsec.toml"
    target.write_text("node_name = 'mine'\n")
    target.chmod(0o644)
    assert_clean_error(invoke("config", "init"), 2, "parsec.toml exists", "--force")
    assert target.read_text() == "node_name = 'mine'\n"
    result = invoke("config", "init", "--force")
    assert result.exit_code == 0, result.output
    assert "[server]" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_init_into_a_missing_directory_is_a_clean_error(tmp_path: Path) -> None:
    result = invoke("config", "init", "nowhere/parsec.toml")
    assert_clean_error(result, 2, "cannot write nowhere/parsec.toml")


def test_init_dash_prints_the_sample_and_writes_nothing(tmp_path: Path) -> None:
    result = invoke("config", "init", "-")
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.stdout)["server"]["addr"] == "127.0.0.1:8000"
    assert list(tmp_path.rglob("*.toml")) == []


# -- secrets ----------------------------------------------------------------------------------


def secret_values(sample: str) -> dict[str, str]:
    """The generated secrets of a sample, by key (enabled or not)."""
    parsed = tomllib.loads(enabled(sample))
    return {
        "api.key": parsed["api"]["key"],
        "auth.token_hmac_secret": parsed["auth"]["token_hmac_secret"],
        "observability.metrics_bearer_token": parsed["observability"]["metrics_bearer_token"],
        "accounts.session_key": parsed["accounts"]["session_key"],
    }


def test_every_sample_holds_fresh_secrets_of_its_own() -> None:
    """Two samples share no secret, no secret is used twice in one sample, and each is
    at least 32 random bytes' worth (43 URL-safe characters)."""
    first, second = secret_values(sample_config()), secret_values(sample_config())
    assert not set(first.values()) & set(second.values())
    assert len(set(first.values())) == len(first)
    for value in [*first.values(), *second.values()]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", value), value


def test_the_api_key_of_the_sample_is_its_secret() -> None:
    """The one secret enabled by default is the server API key: /api is protected."""
    options = load_options_of(sample_config())
    assert options.api.key is not None
    assert not options.api.insecure
    assert options.auth.token_hmac_secret is None
    assert options.observability.metrics_bearer_token is None


def load_options_of(text: str, env: Mapping[str, str] | None = None) -> Options:
    """``text`` loaded as a configuration file, with ``env`` as the environment."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "parsec.toml"
        path.write_text(text)
        return load_options(path, env=env or {})


# -- agreement with Options and the docs ------------------------------------------------------


def test_the_sample_sets_the_defaults() -> None:
    """Loaded unchanged, the sample is the defaults, but for its state directory and
    its API key."""
    options = load_options_of(sample_config())
    assert options.server == ServerOptions()
    assert options.client == ClientOptions()
    assert options.broker == BrokerOptions()
    assert options.database == DatabaseOptions()
    assert options.log == LogOptions()
    assert options.observability == ObservabilityOptions()
    assert options.token_broker == TokenBrokerOptions()
    assert options.without_namespace == ChannelOptions()
    assert options.auth == AuthOptions(state_dir=Path(".parsec"))
    assert (options.node_name, options.region) == ("parsec", "")
    assert (options.accounts, options.nats, options.namespaces, options.sinks) == (
        None,
        None,
        [],
        None,
    )


def test_every_disabled_setting_is_a_real_option() -> None:
    """With every `# key = value` and `# [table]` line enabled, the sample still loads:
    each key it names exists and its example value is valid."""
    options = load_options_of(
        enabled(sample_config()), {"SLACK_WEBHOOK_URL": "https://hooks.example.com/x"}
    )
    assert options.accounts is not None
    assert options.accounts.github is not None
    assert options.accounts.oidc is not None
    assert options.auth.oidc is not None
    assert options.auth.jwks_url is not None
    assert options.database.url is not None
    assert options.observability.otlp_endpoint == "http://127.0.0.1:4318"
    assert [n.name for n in options.namespaces] == ["chat"]
    assert [r.name for r in options.token_broker.roles] == ["member"]
    assert options.sinks is not None


def test_the_sample_and_the_docs_complete_file_name_the_same_keys() -> None:
    """Every key of docs/configuration.md's "A complete file" is in the sample (set, or
    a disabled setting), and every key of the sample is in the complete file (set, or
    shown commented out) but for the sinks, which docs/sinks.md describes."""
    docs_text = complete_file_of_the_docs()
    docs = set(keys(tomllib.loads(docs_text)))
    sample = set(keys(tomllib.loads(enabled(sample_config()))))
    assert docs - sample == set()
    missing = {
        key
        for key in sample - docs
        if key.split(".")[0] not in ("sinks", "sink_retry")
        and f"# {key.rsplit('.', 1)[-1]} = " not in docs_text
    }
    assert missing == set()


def test_every_section_of_options_appears_in_the_sample() -> None:
    """Each top-level field of Options is in the sample: as a table or a key, enabled
    or not, or (nats, whose values must be made) named in a comment."""
    sample = sample_config()
    for field in dataclasses.fields(Options):
        if field.name in NOT_TOML_KEYS:
            continue
        pattern = rf"^(# )?(\[\[?{field.name}[\].]|{field.name} = )|\[{field.name}\]"
        assert re.search(pattern, sample, re.MULTILINE), field.name


OPTION_TABLES: Mapping[str, type[Any]] = {
    "server": ServerOptions,
    "log": LogOptions,
    "observability": ObservabilityOptions,
    "auth": AuthOptions,
    "auth.oidc": OIDCOptions,
    "api": ApiOptions,
    "broker": BrokerOptions,
    "database": DatabaseOptions,
    "accounts": AccountsOptions,
    "accounts.github": GitHubLoginOptions,
    "accounts.oidc": OIDCLoginOptions,
    "client": ClientOptions,
    "token_broker": TokenBrokerOptions,
    "token_broker.roles[]": TokenBrokerRole,
    "namespaces[]": Namespace,
    "sink_retry": RetryPolicy,
}
"""The sample's tables and the options each one sets ([without_namespace] takes the keys
of [[namespaces]] but ``name``, as the sample says; [nats] is named in a comment)."""


def test_the_sample_names_every_option() -> None:
    """Every field of every options table is a key of the sample, set or disabled."""
    sample = set(keys(tomllib.loads(enabled(sample_config()))))
    named = {key.split(".")[0].split("[")[0] for key in sample} | {
        key.rsplit(".", 1)[0] for key in sample
    }
    missing = [
        f"{table}.{option.name}"
        for table, cls in OPTION_TABLES.items()
        for option in dataclasses.fields(cls)
        if f"{table}.{option.name}" not in sample | named
        and not any(key.startswith(f"{table}.{option.name}[]") for key in sample)
    ]
    assert missing == []


# -- config check -----------------------------------------------------------------------------


def test_check_accepts_the_sample(tmp_path: Path) -> None:
    assert invoke("config", "init").exit_code == 0
    result = invoke("config", "check", "parsec.toml")
    assert result.exit_code == 0, result.output
    assert "parsec.toml: ok" in result.stderr


def test_check_names_the_bad_key(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[client]\nping_interval = "soon"\n')
    assert_clean_error(invoke("config", "check", "bad.toml"), 2, "client.ping_interval")
    (tmp_path / "typo.toml").write_text("[server]\nadress = '127.0.0.1:1'\n")
    assert_clean_error(invoke("config", "check", "typo.toml"), 2, "server.adress")
