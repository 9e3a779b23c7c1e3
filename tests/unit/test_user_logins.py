"""The logins ``parsec login`` stores, one per server (``logins.json``, 0600), and how
the accounts commands and ``parsec logout --server`` read and forget them."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from cli_runs import assert_clean_error, invoke

from parsec.client import user_logins
from parsec.client.credentials import CredentialsError
from parsec.client.user_logins import ServerLogin

pytestmark = pytest.mark.usefixtures("hermetic")

LATER = int(time.time()) + 3600


def login_at(server: str, token: str = "psu_token", expires_at: int = LATER) -> ServerLogin:
    return ServerLogin(server=server, access_token=token, expires_at=expires_at)


def test_logins_of_several_servers_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "logins.json"
    user_logins.remember(path, login_at("https://a.example.com/", "psu_a"))
    user_logins.remember(path, login_at("https://b.example.com", "psu_b"))
    user_logins.remember(path, login_at("https://a.example.com", "psu_a2"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["logins.json"]  # no temporary file
    found = user_logins.lookup(path, "https://a.example.com/")
    assert found is not None
    assert found.access_token == "psu_a2"
    assert set(json.loads(path.read_text())["logins"]) == {
        "https://a.example.com",
        "https://b.example.com",
    }
    assert user_logins.forget(path, "https://a.example.com")
    assert not user_logins.forget(path, "https://a.example.com")
    assert user_logins.lookup(path, "https://a.example.com") is None
    assert user_logins.forget(path, "https://b.example.com")
    assert not path.exists()


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "logins.json"
    path.write_text('{"logins": {"x": {"server": 1}}}')
    with pytest.raises(CredentialsError, match="not a Parsec logins file"):
        user_logins.load(path)


def test_the_accounts_commands_use_the_stored_unexpired_login(tmp_path: Path) -> None:
    creds = tmp_path / "secrets" / "credentials.json"
    env = {"PARSEC_CREDENTIALS": str(creds)}
    path = creds.parent / "logins.json"
    user_logins.remember(path, login_at("http://127.0.0.1:1", expires_at=int(time.time()) - 1))
    expired = invoke("orgs", "list", "--server", "http://127.0.0.1:1", env=env)
    assert_clean_error(expired, 2, "not logged in", "parsec login --server http://127.0.0.1:1")
    user_logins.remember(path, login_at("http://127.0.0.1:1"))
    unreachable = invoke("orgs", "list", "--server", "http://127.0.0.1:1", env=env)
    assert unreachable.exit_code == 1  # it got as far as asking the server
    assert "not logged in" not in unreachable.output
    path.write_text("not json")
    broken = invoke("orgs", "list", "--server", "http://127.0.0.1:1", env=env)
    assert_clean_error(broken, 2, "not a Parsec logins file")


def test_logout_of_a_server_not_logged_in(tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    result = invoke(
        "logout", "--server", "http://127.0.0.1:1", env={"PARSEC_CREDENTIALS": str(creds)}
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == "not logged in to http://127.0.0.1:1"
