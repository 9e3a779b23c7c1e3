"""The credentials file of ``parsec login oidc`` (parsec.client.credentials): owner-only,
written atomically, and read back exactly."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import msgspec
import pytest

from parsec.client import credentials
from parsec.client.credentials import CredentialsError, StoredLogin

LOGIN = StoredLogin(
    issuer="https://sso.example.org/realms/acme",
    client_id="parsec-cli",
    token_endpoint="https://sso.example.org/realms/acme/protocol/openid-connect/token",
    id_token="header.payload.signature",
    refresh_token="refresh",
    expires_at=1_767_225_600,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "credentials.json"
    credentials.save(path, LOGIN)
    assert credentials.load(path) == LOGIN
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert json.loads(path.read_text()) == {
        "issuer": LOGIN.issuer,
        "client_id": "parsec-cli",
        "client_secret": None,
        "token_endpoint": LOGIN.token_endpoint,
        "id_token": "header.payload.signature",
        "refresh_token": "refresh",
        "expires_at": 1_767_225_600,
    }


def test_save_replaces_a_readable_file_with_an_owner_only_one(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "credentials.json"
    path.write_text("old")
    path.chmod(0o644)
    credentials.save(path, LOGIN)
    assert mode(path) == 0o600
    assert mode(tmp_path) == 0o755  # a directory it did not create is left as it is
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


def test_a_missing_file_is_no_login(tmp_path: Path) -> None:
    assert credentials.load(tmp_path / "none.json") is None
    assert credentials.delete(tmp_path / "none.json") is False


@pytest.mark.parametrize("content", ["", "{}", '{"issuer": 1}', "[]", "not json"])
def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=r"credentials\.json is not a Parsec credentials"):
        credentials.load(path)


def test_delete(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    credentials.save(path, LOGIN)
    assert credentials.delete(path) is True
    assert not path.exists()


def test_expiring_within_the_leeway() -> None:
    now = time.time()
    assert not msgspec.structs.replace(LOGIN, expires_at=int(now) + 60).expiring(now=now)
    assert msgspec.structs.replace(LOGIN, expires_at=int(now) + 30).expiring(now=now)
    assert msgspec.structs.replace(LOGIN, expires_at=int(now) - 1).expiring(now=now)
