"""Choosing NATS by URL: what ``backends_for`` builds, which URLs it refuses, and the
configurations refused up front because they need history NATS does not keep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parsec.backends.factory import backends_for
from parsec.backends.nats import NatsBroker, NatsController
from parsec.backends.nats.urls import parse_url, redacted
from parsec.channels.namespaces import ChannelRules
from parsec.cli import app
from parsec.config import ConfigError, load_options
from parsec.errors import ParsecError

NATS = {"PARSEC_BROKER_URL": "nats://127.0.0.1:4222"}
REDIS = {"PARSEC_BROKER_URL": "redis://127.0.0.1:6379/0"}
NO_HISTORY_BUILTINS = """
[[namespaces]]
name = "public"
presence = true
allow_subscribe_for_client = true

[[namespaces]]
name = "private"
require_subscription_token = true
"""


def _load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "parsec.toml"
    path.write_text(toml)
    load_options(path, env=NATS if env is None else env)


async def test_a_nats_url_builds_the_nats_broker_and_controller() -> None:
    """nats:// (and tls://) give the NATS broker and controller; presence and every
    store stay in memory (None: the in-memory defaults)."""
    for url in ("nats://127.0.0.1:4222", "tls://nats.example:4443"):
        backends = backends_for(url, key_prefix="parsec", node_id="n1")
        assert backends.persistence == "nats"
        assert isinstance(backends.broker, NatsBroker)
        assert isinstance(backends.controller, NatsController)
        assert (backends.presence, backends.channel_store, backends.dlq) == (None, None, None)
        assert (backends.refresh_store, backends.revocations) == (None, None)
        await backends.aclose()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nats://", "has no host"),
        ("nats://host:99999", "malformed"),
        ("nats://host:4222/path", "nothing after"),
        ("nats://a:4222,tls://b:4222", "mixes"),
        ("nats://a:4222,redis://b", "must start with"),
    ],
)
def test_malformed_nats_urls_are_refused(url: str, problem: str) -> None:
    """A malformed NATS URL fails with PARSEC_INVALID_ARGUMENT saying what is wrong."""
    with pytest.raises(ParsecError) as failure:
        backends_for(url, key_prefix="parsec", node_id="n1")
    assert failure.value.code == "PARSEC_INVALID_ARGUMENT"
    assert problem in failure.value.message


@pytest.mark.parametrize("prefix", ["", "a..b", ".a", "a.", "has space", "wild*", "gt>"])
def test_prefixes_that_are_no_subject_tokens_are_refused(prefix: str) -> None:
    """The key prefix becomes the subject prefix; one NATS cannot route is refused."""
    with pytest.raises(ParsecError) as failure:
        backends_for("nats://127.0.0.1:4222", key_prefix=prefix, node_id="n1")
    assert failure.value.code == "PARSEC_INVALID_ARGUMENT"


def test_several_servers_and_hidden_credentials() -> None:
    """Comma-separated servers form one pool; credentials never show in messages."""
    parsed = parse_url("nats://u:secret@a:4222, nats://b")
    assert parsed.servers == ("nats://u:secret@a:4222", "nats://b")
    assert not parsed.tls
    assert parse_url("tls://a").tls
    assert redacted("nats://u:secret@a:4222,nats://token@b") == "nats://***@a:4222,nats://***@b"
    with pytest.raises(ParsecError) as failure:
        parse_url("nats://u:secret@a:4222/x")
    assert "secret" not in str(failure.value)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        (
            '[[namespaces]]\nname = "chat"\nhistory_size = 10\nhistory_ttl = "60s"\n',
            "namespaces[2].history_size",
        ),
        ('[[namespaces]]\nname = "chat"\nforce_recovery = true\n', "namespaces[2].force_recovery"),
        ("[without_namespace]\nallow_positioning = true\n", "without_namespace.allow_positioning"),
    ],
    ids=["history", "recovery", "positioning"],
)
def test_history_options_are_refused_with_a_nats_broker(
    tmp_path: Path, toml: str, key: str
) -> None:
    """Options an operator wrote that need history fail loading with the NATS broker,
    naming the key."""
    with pytest.raises(ConfigError) as failure:
        _load(tmp_path, NO_HISTORY_BUILTINS + toml)
    assert failure.value.key == key
    assert failure.value.code == "unsupported_by_broker"
    assert "Redis broker" in failure.value.problem


def test_a_history_free_config_loads_and_history_stays_fine_on_redis(tmp_path: Path) -> None:
    """With both built-ins replaced NATS loads; the same history options load on Redis."""
    _load(tmp_path, NO_HISTORY_BUILTINS + '[[namespaces]]\nname = "chat"\npresence = true\n')
    _load(
        tmp_path,
        '[[namespaces]]\nname = "chat"\nhistory_size = 10\nhistory_ttl = "60s"\n',
        env={"PARSEC_BROKER_URL": "redis://127.0.0.1:6379/0"},
    )


def test_builtin_namespaces_keep_no_history_on_nats(tmp_path: Path) -> None:
    """With no configuration, a NATS broker loads: the built-in ``public`` and
    ``private`` namespaces keep no history and force no recovery there, while on Redis
    they keep 100 publications for 5 minutes."""
    path = tmp_path / "parsec.toml"
    path.write_text("")
    for env, size, recovery in ((NATS, 0, False), (REDIS, 100, True)):
        rules = ChannelRules.from_options(load_options(path, env=env))
        for name in ("public", "private"):
            namespace = rules.namespace(name)
            assert namespace is not None
            assert (namespace.history_size, namespace.force_recovery) == (size, recovery)


def test_serve_refuses_a_nats_broker_with_a_history_namespace(tmp_path: Path) -> None:
    """`parsec serve --broker nats://…` with a namespace that keeps history exits 2
    before starting, naming the key."""
    config = tmp_path / "parsec.toml"
    config.write_text('[[namespaces]]\nname = "chat"\nhistory_size = 10\nhistory_ttl = "60s"\n')
    result = CliRunner().invoke(
        app,
        ["serve", "--broker", "nats://127.0.0.1:4222", "--config", str(config)],
        env={"PARSEC_CONFIG": ""},
    )

    assert result.exit_code == 2
    assert "namespaces[0].history_size" in result.output


def test_nats_modules_load_only_for_a_nats_url() -> None:
    """memory:// and redis:// never import nats-py (it stays an optional extra)."""
    code = (
        "import sys\n"
        "from parsec.backends.factory import backends_for\n"
        "backends_for('memory://', key_prefix='p', node_id='n')\n"
        "backends_for('redis://127.0.0.1:6379/0', key_prefix='p', node_id='n')\n"
        "assert 'nats' not in sys.modules, sorted(m for m in sys.modules if 'nats' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
