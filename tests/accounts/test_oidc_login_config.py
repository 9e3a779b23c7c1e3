"""``[accounts.oidc]`` in the configuration file: what it loads into, and what it
refuses (the key named, a stable code, never the secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsec.config import ConfigError, load_options
from parsec.options import OIDCLoginOptions

ACCOUNTS = """
[accounts]
session_key = "0123456789abcdef0123456789abcdef"
base_url = "https://parsec.example.com"
"""


def load(tmp_path: Path, oidc: str) -> OIDCLoginOptions | None:
    path = tmp_path / "parsec.toml"
    path.write_text(ACCOUNTS + "[accounts.oidc]\n" + oidc)
    accounts = load_options(path, env={}).accounts
    assert accounts is not None
    return accounts.oidc


def refused(tmp_path: Path, oidc: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, oidc)
    return caught.value


def test_the_defaults(tmp_path: Path) -> None:
    loaded = load(tmp_path, 'issuer = "https://sso.example.com/realms/x"\nclient_id = "parsec"\n')
    assert loaded == OIDCLoginOptions(
        issuer="https://sso.example.com/realms/x",
        client_id="parsec",
        client_secret=None,
        scopes=["openid", "profile", "email"],
        username_claim="preferred_username",
        name="Single sign-on",
    )


def test_every_key(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        'issuer = "https://sso.example.com"\nclient_id = "parsec"\nclient_secret = "s3cret"\n'
        'scopes = ["openid", "email"]\nusername_claim = "ext.login"\nname = "Acme SSO"\n',
    )
    assert loaded is not None
    assert loaded.client_secret == "s3cret"
    assert loaded.scopes == ["openid", "email"]
    assert loaded.username_claim == "ext.login"
    assert loaded.name == "Acme SSO"


def test_not_configured_is_none(tmp_path: Path) -> None:
    path = tmp_path / "parsec.toml"
    path.write_text(ACCOUNTS)
    accounts = load_options(path, env={}).accounts
    assert accounts is not None
    assert accounts.oidc is None


@pytest.mark.parametrize(
    ("text", "key", "code"),
    [
        pytest.param('client_id = "p"\n', "accounts.oidc.issuer", "missing_key", id="no-issuer"),
        pytest.param(
            'issuer = "https://sso.example.com"\n',
            "accounts.oidc.client_id",
            "missing_key",
            id="no-client-id",
        ),
        pytest.param(
            'issuer = "ftp://sso"\nclient_id = "p"\n',
            "accounts.oidc.issuer",
            "invalid_value",
            id="not-http",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = "p"\nclient_sekret = "x"\n',
            "accounts.oidc.client_sekret",
            "unknown_key",
            id="unknown-key",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = "p"\nscopes = "openid"\n',
            "accounts.oidc.scopes",
            "wrong_type",
            id="scopes-not-a-list",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = "p"\nscopes = ["profile"]\n',
            "accounts.oidc.scopes",
            "invalid_value",
            id="scopes-without-openid",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = 7\n',
            "accounts.oidc.client_id",
            "wrong_type",
            id="client-id-not-a-string",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = "p"\nname = ""\n',
            "accounts.oidc.name",
            "invalid_value",
            id="empty-name",
        ),
        pytest.param(
            'issuer = "https://sso"\nclient_id = "p"\nusername_claim = " "\n',
            "accounts.oidc.username_claim",
            "invalid_value",
            id="empty-claim",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_key(
    tmp_path: Path, text: str, key: str, code: str
) -> None:
    error = refused(tmp_path, text)
    assert error.key == key
    assert error.code == code


def test_a_name_is_a_label_not_a_namespace_name(tmp_path: Path) -> None:
    """Spaces and punctuation are fine in the login page's label."""
    loaded = load(tmp_path, 'issuer = "https://sso"\nclient_id = "p"\nname = "Acme: Staff & Co"\n')
    assert loaded is not None
    assert loaded.name == "Acme: Staff & Co"


def test_a_bad_secret_is_not_shown(tmp_path: Path) -> None:
    error = refused(tmp_path, 'issuer = "https://sso"\nclient_id = "p"\nclient_secret = ""\n')
    assert error.key == "accounts.oidc.client_secret"
