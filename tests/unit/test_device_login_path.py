"""Where the device flow's verify page sends a logged-out browser: straight to the one
login the server offers, or to the page listing them when it offers several."""

from __future__ import annotations

import pytest

from parsec import Options
from parsec.api.accounts_device import _login_path
from parsec.options import AccountsOptions, GitHubLoginOptions, OIDCLoginOptions
from parsec.services.accounts import AccountsService

GITHUB = GitHubLoginOptions(client_id="id", client_secret="secret")
OIDC = OIDCLoginOptions(issuer="https://sso.example.com", client_id="parsec")


@pytest.mark.parametrize(
    ("github", "oidc", "path"),
    [
        (GITHUB, None, "/auth/github/start"),
        (None, OIDC, "/auth/oidc/start"),
        (GITHUB, OIDC, "/auth/login"),
        (None, None, "/auth/login"),
    ],
)
def test_the_login_a_stranger_is_sent_to(
    github: GitHubLoginOptions | None, oidc: OIDCLoginOptions | None, path: str
) -> None:
    accounts = AccountsOptions(
        session_key="k" * 40, base_url="http://parsec.test", github=github, oidc=oidc
    )
    assert _login_path(AccountsService(Options(accounts=accounts))) == path
