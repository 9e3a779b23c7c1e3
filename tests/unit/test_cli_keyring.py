"""The local keyring of the commands that mint tokens or export keys: never created by
accident, and tokens minted with a server's config carry the audience and issuer that
server requires."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runs import Proc, assert_clean_error, invoke

from parsec.auth.keyring import KeyRing
from parsec.auth.tokens import InvalidToken, TokenVerifier
from parsec.testing import free_port

AUTH_CONFIG = """
[auth]
state_dir = "server-state"
token_audience = "chat-app"
token_issuer = "https://auth.example.com"

[[namespaces]]
name = "room"
allow_subscribe_for_client = true
require_subscription_token = true
"""
"""A server that requires an audience, an issuer, and a subscription token in room:."""


pytestmark = pytest.mark.usefixtures("hermetic")


# -- no keyring: exit 2, never a new one ---------------------------------------------------

MINTING = [
    pytest.param(["tokens", "connect", "--sub", "u"], "--create", id="tokens-connect"),
    pytest.param(
        ["tokens", "subscription", "--sub", "u", "--channel", "c"], "--create", id="tokens-sub"
    ),
    pytest.param(["subscribe", "c", "--server", "http://127.0.0.1:1"], "--token", id="subscribe"),
]


@pytest.mark.parametrize(("args", "way_out"), MINTING)
@pytest.mark.parametrize(
    ("where", "flags", "env"),
    [
        pytest.param(".parsec", [], {}, id="default"),
        pytest.param("flag-dir", ["--state-dir", "flag-dir"], {}, id="flag"),
        pytest.param("env-dir", [], {"PARSEC_STATE_DIR": "env-dir"}, id="env"),
    ],
)
def test_minting_without_a_keyring_exits_2_saying_where_it_looked(
    tmp_path: Path, args: list[str], way_out: str, where: str, flags: list[str], env: dict[str, str]
) -> None:
    """A state directory without keyring.json: exit 2 naming the absolute path, how to
    point at the server's state directory and the way out; nothing is created."""
    result = invoke(*args, *flags, env=env)
    path = tmp_path / where / "keyring.json"
    assert_clean_error(result, 2, f"there is no keyring at {path}:")
    message = result.stderr.splitlines()[-1]
    for words in ("--state-dir DIR or PARSEC_STATE_DIR", way_out):
        assert words in message
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / where).exists()


def test_minting_with_a_config_without_a_keyring_names_its_state_dir(tmp_path: Path) -> None:
    """The state directory a config names is where the command looks."""
    config = tmp_path / "parsec.toml"
    config.write_text(AUTH_CONFIG)
    result = invoke("tokens", "connect", "--sub", "u", "-c", str(config))
    assert_clean_error(result, 2, f"no keyring at {tmp_path / 'server-state' / 'keyring.json'}")
    assert not (tmp_path / "server-state").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["tokens", "mgmt", "--state-dir", "keys"], id="tokens-mgmt"),
        pytest.param(["keys", "export", "--state-dir", "keys"], id="keys-export"),
    ],
)
def test_reading_keys_without_a_keyring_exits_2(tmp_path: Path, args: list[str]) -> None:
    """tokens mgmt --state-dir and keys export refuse a directory without a keyring."""
    result = invoke(*args)
    assert_clean_error(result, 2, f"there is no keyring at {tmp_path / 'keys' / 'keyring.json'}")
    assert "--state-dir DIR or PARSEC_STATE_DIR" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_keys_export_reads_the_state_dir_from_the_environment(tmp_path: Path) -> None:
    """keys export takes --state-dir from PARSEC_STATE_DIR, as the tokens commands do."""
    ring = KeyRing.open(tmp_path / "keys")
    result = invoke("keys", "export", env={"PARSEC_STATE_DIR": str(tmp_path / "keys")})
    assert result.exit_code == 0, result.output
    assert ring.active.id in result.stdout


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["tokens", "connect", "--sub", "u"], "connection"),
        (["tokens", "subscription", "--sub", "u", "--channel", "c"], "subscription"),
        (["tokens", "mgmt", "--state-dir", ".parsec"], "mgmt"),
    ],
)
def test_create_starts_a_keyring_and_mints_with_it(
    tmp_path: Path, args: list[str], kind: str
) -> None:
    """--create makes the keyring when there is none, and the token verifies with it."""
    result = invoke(*args, "--create")
    assert result.exit_code == 0, result.output
    ring = KeyRing.open(tmp_path / ".parsec")
    token = result.stdout.splitlines()[0]
    if kind == "connection":
        assert TokenVerifier(ring).verify_connection(token).user == "u"
    elif kind == "subscription":
        assert TokenVerifier(ring).verify_subscription(token).channel == "c"
    else:
        assert ring.active.id in result.stderr


def test_tokens_mgmt_create_needs_state_dir() -> None:
    """--create without --state-dir (minting through a server) is a usage error."""
    assert_clean_error(invoke("tokens", "mgmt", "--create"), 2, "--create needs --state-dir")


# -- the server's audience and issuer -------------------------------------------------------


def test_tokens_minted_with_a_config_carry_its_audience_and_issuer(tmp_path: Path) -> None:
    """Connection and subscription tokens minted with --config carry its token_audience
    and token_issuer: a verifier requiring both accepts them, one requiring others not."""
    config = tmp_path / "parsec.toml"
    config.write_text(AUTH_CONFIG)
    ring = KeyRing.open(tmp_path / "server-state")
    strict = TokenVerifier(ring, audience="chat-app", issuer="https://auth.example.com")
    connect = invoke("tokens", "connect", "--sub", "alice", "-c", str(config))
    assert strict.verify_connection(connect.stdout.strip()).user == "alice"
    sub = invoke(
        "tokens", "subscription", "--sub", "alice", "--channel", "room:a", "-c", str(config)
    )
    assert strict.verify_subscription(sub.stdout.strip()).channel == "room:a"
    with pytest.raises(InvalidToken):
        TokenVerifier(ring, audience="other-app").verify_connection(connect.stdout.strip())


def test_a_server_with_an_audience_and_issuer_accepts_cli_minted_tokens(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """A real server whose config requires an audience, an issuer and a subscription
    token accepts the connection and subscription tokens minted with that config."""
    config = tmp_path / "parsec.toml"
    config.write_text(AUTH_CONFIG)
    addr = f"127.0.0.1:{free_port()}"
    server = spawn("serve", "-c", str(config), "--addr", addr, cwd=tmp_path)
    server.wait_for("err", "parsec listening on")
    mint = ["--sub", "alice", "-c", str(config)]
    token = invoke("tokens", "connect", *mint).stdout.strip()
    sub_token = invoke("tokens", "subscription", *mint, "--channel", "room:a").stdout.strip()
    args = ["--server", f"http://{addr}", "--token", token, "--sub-token", sub_token]
    subscriber = spawn("subscribe", "room:a", *args, cwd=tmp_path)
    subscriber.wait_for("err", "subscribed to room:a")
    assert subscriber.stop(signal.SIGINT) == 0
