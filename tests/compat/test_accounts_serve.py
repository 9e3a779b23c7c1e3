"""``parsec serve`` with ``[accounts]`` (issue 14's contract): the database is migrated
at start (SQLite in the state directory by default), and a real HTTP client following
redirects logs in through a local fake GitHub and lists its orgs."""

from __future__ import annotations

import httpx
import pytest
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub

from .parsec_process import ParsecServer, ServerFactory

pytestmark = pytest.mark.compat

ACCOUNTS = """
[accounts]
session_key = "0123456789abcdef0123456789abcdef-tests"
base_url = "BASE_URL"

[accounts.github]
client_id = "CLIENT_ID"
client_secret = "CLIENT_SECRET"
authorize_url = "GITHUB/login/oauth/authorize"
token_url = "GITHUB/login/oauth/access_token"
user_url = "GITHUB/user"
"""


def test_a_browser_logs_in_with_github_and_lists_its_orgs(
    server_factory: ServerFactory, fake_github: FakeGitHub
) -> None:
    def config(server: ParsecServer) -> str:
        return (
            ACCOUNTS.replace("BASE_URL", server.http_url)
            .replace("CLIENT_ID", CLIENT_ID)
            .replace("CLIENT_SECRET", CLIENT_SECRET)
            .replace("GITHUB", fake_github.base_url)
        )

    server = server_factory.start(extra_toml=config)
    assert (server.state_dir / "parsec.db").exists()  # migrated at start

    with httpx.Client(base_url=server.http_url, follow_redirects=True, trust_env=False) as browser:
        landed = browser.get("/auth/github/start", params={"next": "/api/v1/orgs"})
        assert landed.status_code == 200, landed.text
        assert str(landed.url) == f"{server.http_url}/api/v1/orgs"
        assert [org["slug"] for org in landed.json()] == ["alice"]
        assert browser.get("/api/v1/orgs/alice").json()["role"] == "owner"
        assert browser.get("/api/v1/orgs/bob").status_code == 404
