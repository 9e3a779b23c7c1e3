"""``parsec serve`` with ``[accounts.oidc]``: a real HTTP client following redirects
logs in through the test OpenID provider (discovered at start) and lists its orgs; the
login page links to it."""

from __future__ import annotations

import httpx
import pytest
from oidc_provider import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, OIDCProvider

from .parsec_process import ParsecServer, ServerFactory

pytestmark = pytest.mark.compat

ACCOUNTS = """
[accounts]
session_key = "0123456789abcdef0123456789abcdef-tests"
base_url = "BASE_URL"

[accounts.oidc]
issuer = "ISSUER"
client_id = "CLIENT_ID"
client_secret = "CLIENT_SECRET"
name = "Corp SSO"
"""


def test_a_browser_logs_in_with_openid_connect_and_lists_its_orgs(
    server_factory: ServerFactory, idp: OIDCProvider
) -> None:
    def config(server: ParsecServer) -> str:
        return (
            ACCOUNTS.replace("BASE_URL", server.http_url)
            .replace("ISSUER", idp.issuer)
            .replace("CLIENT_ID", CONFIDENTIAL_CLIENT)
            .replace("CLIENT_SECRET", CONFIDENTIAL_SECRET)
        )

    idp.login_as = ("grace", ())
    server = server_factory.start(extra_toml=config)
    with httpx.Client(base_url=server.http_url, follow_redirects=True, trust_env=False) as browser:
        page = browser.get("/auth/login", params={"next": "/api/v1/orgs"})
        assert page.status_code == 200
        assert "Log in with Corp SSO" in page.text
        landed = browser.get("/auth/oidc/start", params={"next": "/api/v1/orgs"})
        assert landed.status_code == 200, landed.text
        assert str(landed.url) == f"{server.http_url}/api/v1/orgs"
        assert [org["slug"] for org in landed.json()] == ["grace"]
        assert browser.get("/api/v1/orgs/grace").json()["role"] == "owner"
    assert idp.token_requests == ["authorization_code"]
