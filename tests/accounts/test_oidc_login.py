"""Log in with an OpenID Connect provider (``[accounts.oidc]``), through the test
provider over real HTTP, on SQLite and PostgreSQL: the whole login, the identity it
makes, the ID token checks, the provider's refusals, and the login page.

The test plays the browser: it follows each redirect itself, to Parsec (in process,
over ASGI) or to the provider (a real HTTP server), and carries the cookie.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from db_targets import BACKENDS, database_url
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub
from oidc_login_provider import TamperingProvider
from oidc_provider import (
    CONFIDENTIAL_CLIENT,
    CONFIDENTIAL_SECRET,
    PUBLIC_CLIENT,
    SigningKey,
    running_provider,
    s256,
)

from parsec import AuthOptions, Options, Parsec
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.auth.oidc import DiscoveryError
from parsec.options import AccountsOptions, DatabaseOptions, GitHubLoginOptions, OIDCLoginOptions

BASE_URL: Final = "http://127.0.0.1:8000"
"""Loopback: the test provider redirects nowhere else. Parsec itself is in process."""
CALLBACK: Final = f"{BASE_URL}/auth/oidc/callback"
SESSION_KEY: Final = "o" * 40


class Site:
    """A Parsec with ``[accounts]`` whose browsers log in at the provider."""

    def __init__(self, parsec: Parsec, stack: contextlib.AsyncExitStack) -> None:
        self.parsec = parsec
        self._stack = stack

    def browser(self) -> httpx.AsyncClient:
        """A client with no cookie, closed after the test."""
        transport = httpx.ASGITransport(app=self.parsec.asgi_app())
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        self._stack.push_async_callback(client.aclose)
        return client

    async def authorize(self, browser: httpx.AsyncClient, next_path: str = "/dashboard") -> str:
        """Parsec's start → the provider's authorization endpoint: the callback's path
        and query the provider sends the browser back to."""
        start = await browser.get("/auth/oidc/start", params={"next": next_path})
        assert start.status_code == 302, start.text
        async with httpx.AsyncClient(trust_env=False) as user_agent:
            approved = await user_agent.get(start.headers["location"])
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
        return f"{back.path}?{back.query}"

    async def log_in(
        self, browser: httpx.AsyncClient, next_path: str = "/dashboard"
    ) -> httpx.Response:
        """The whole login; the callback's answer."""
        return await browser.get(await self.authorize(browser, next_path))

    def user_of(self, browser: httpx.AsyncClient) -> str:
        """The user id the browser's session cookie names."""
        accounts = self.parsec.accounts
        assert accounts is not None
        return accounts.cookies.verify(browser.cookies[COOKIE_NAME]).user_id


def oidc_options(provider: TamperingProvider, **changes: Any) -> OIDCLoginOptions:
    """The confidential client of ``provider`` (HTTP Basic), with ``changes``."""
    settings: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": CONFIDENTIAL_CLIENT,
        "client_secret": CONFIDENTIAL_SECRET,
        "name": "Corp SSO",
        **changes,
    }
    return OIDCLoginOptions(**settings)


def github_options(github: FakeGitHub) -> GitHubLoginOptions:
    return GitHubLoginOptions(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=github.authorize_url,
        token_url=github.token_url,
        user_url=github.user_url,
    )


@contextlib.asynccontextmanager
async def open_site(
    backend: str,
    tmp_path: Path,
    *,
    oidc: OIDCLoginOptions | None,
    github: GitHubLoginOptions | None = None,
) -> AsyncIterator[Site]:
    async with database_url(backend, tmp_path) as url:
        options = Options(
            auth=AuthOptions(state_dir=tmp_path / "state"),
            database=DatabaseOptions(url=url),
            accounts=AccountsOptions(
                session_key=SESSION_KEY, base_url=BASE_URL, github=github, oidc=oidc
            ),
        )
        async with Parsec(options) as parsec, contextlib.AsyncExitStack() as stack:
            yield Site(parsec, stack)


@pytest.fixture(scope="module")
def sso_served() -> Iterator[TamperingProvider]:
    """The module's provider, served on a loopback port until the module ends."""
    provider = TamperingProvider()
    with running_provider(provider):
        yield provider


@pytest.fixture
def sso(sso_served: TamperingProvider) -> TamperingProvider:
    """The module's provider, reset: one fresh key, alice approved at once."""
    sso_served.reset()
    return sso_served


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def site(
    backend: str, tmp_path: Path, sso: TamperingProvider, fake_github: FakeGitHub
) -> AsyncIterator[Site]:
    """A Parsec offering the provider (confidential client) and GitHub."""
    async with open_site(
        backend, tmp_path, oidc=oidc_options(sso), github=github_options(fake_github)
    ) as opened:
        yield opened


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def error_of(reply: httpx.Response) -> str:
    code: str = reply.json()["error"]["code"]
    return code


# --- the login ---------------------------------------------------------------------


async def test_the_start_redirects_with_pkce_and_a_nonce(
    site: Site, sso: TamperingProvider
) -> None:
    """The authorization request asks for a code with PKCE S256 and a nonce; neither
    the verifier nor anything secret is in the URL."""
    start = await site.browser().get("/auth/oidc/start", params={"next": "/x"})
    assert start.status_code == 302
    assert start.headers["cache-control"] == "no-store"
    location = start.headers["location"]
    assert location.startswith(f"{sso.issuer}/protocol/openid-connect/auth?")
    query = query_of(location)
    assert query["response_type"] == "code"
    assert query["client_id"] == CONFIDENTIAL_CLIENT
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "openid profile email"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["state"]
    assert query["nonce"]
    assert CONFIDENTIAL_SECRET not in location
    assert SESSION_KEY not in location


async def test_two_starts_bind_different_nonces_and_challenges(site: Site) -> None:
    browser = site.browser()
    first, second = [
        query_of((await browser.get("/auth/oidc/start")).headers["location"]) for _ in range(2)
    ]
    assert first["state"] != second["state"]
    assert first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]


async def test_a_first_login_sets_the_cookie_and_makes_a_personal_org(site: Site) -> None:
    browser = site.browser()
    done = await site.log_in(browser, "/dashboard?tab=keys")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/dashboard?tab=keys"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    orgs = await browser.get("/api/v1/orgs")
    assert orgs.status_code == 200
    assert orgs.json() == [{"slug": "alice", "name": "Alice", "personal": True, "role": "owner"}]


async def test_the_same_identity_is_the_same_user(site: Site, sso: TamperingProvider) -> None:
    """The second login finds the user by (issuer, sub), whatever its username says now."""
    first = site.browser()
    assert (await site.log_in(first)).status_code == 303
    sso.id_token_claims = {"preferred_username": "alice-renamed", "name": "Alice R."}
    second = site.browser()
    assert (await site.log_in(second)).status_code == 303
    assert site.user_of(first) == site.user_of(second)
    assert [org["slug"] for org in (await second.get("/api/v1/orgs")).json()] == ["alice"]


async def test_another_identity_is_another_user(site: Site, sso: TamperingProvider) -> None:
    alice = site.browser()
    await site.log_in(alice)
    sso.login_as = ("bob", ())
    bob = site.browser()
    await site.log_in(bob)
    assert site.user_of(alice) != site.user_of(bob)
    assert [org["slug"] for org in (await bob.get("/api/v1/orgs")).json()] == ["bob"]
    assert (await bob.get("/api/v1/orgs/alice")).status_code == 404


@pytest.mark.parametrize(
    ("claims", "slug"),
    [
        pytest.param({"preferred_username": "dana.q"}, "dana.q", id="preferred_username"),
        pytest.param(
            {"preferred_username": None, "email": "erin@corp.example"}, "erin", id="email"
        ),
        pytest.param({"preferred_username": None, "email": None}, "user", id="neither"),
    ],
)
async def test_the_personal_orgs_slug_comes_from_the_username_claim(
    site: Site, sso: TamperingProvider, claims: dict[str, Any], slug: str
) -> None:
    """preferred_username, else the email's local part, else "user"."""
    sso.id_token_claims = claims
    browser = site.browser()
    assert (await site.log_in(browser)).status_code == 303
    assert [org["slug"] for org in (await browser.get("/api/v1/orgs")).json()] == [slug]


async def test_a_username_claim_at_a_dotted_path(
    backend: str, tmp_path: Path, sso: TamperingProvider
) -> None:
    sso.id_token_claims = {"ext": {"handle": "frank"}}
    async with open_site(
        backend, tmp_path, oidc=oidc_options(sso, username_claim="ext.handle")
    ) as site:
        browser = site.browser()
        assert (await site.log_in(browser)).status_code == 303
        assert [org["slug"] for org in (await browser.get("/api/v1/orgs")).json()] == ["frank"]


async def test_a_public_client_logs_in_with_pkce_alone(
    backend: str, tmp_path: Path, sso: TamperingProvider
) -> None:
    """No client secret: the code exchange sends client_id and the PKCE verifier."""
    async with open_site(
        backend, tmp_path, oidc=oidc_options(sso, client_id=PUBLIC_CLIENT, client_secret=None)
    ) as site:
        browser = site.browser()
        assert (await site.log_in(browser)).status_code == 303
        assert sso.token_requests == ["authorization_code"]
        assert (await browser.get("/api/v1/orgs")).status_code == 200


@pytest.mark.parametrize(
    "next_path", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_an_unsafe_next_lands_on_the_root(site: Site, next_path: str) -> None:
    done = await site.log_in(site.browser(), next_path)
    assert done.status_code == 303
    assert done.headers["location"] == "/"


# --- refusals ----------------------------------------------------------------------


async def test_a_replayed_callback_is_refused(site: Site, sso: TamperingProvider) -> None:
    browser = site.browser()
    callback = await site.authorize(browser)
    assert (await browser.get(callback)).status_code == 303
    browser.cookies.clear()
    again = await browser.get(callback)
    assert again.status_code == 400
    assert error_of(again) == "PARSEC_OAUTH_STATE_INVALID"
    assert COOKIE_NAME not in browser.cookies
    assert sso.token_requests == ["authorization_code"]  # the provider is not asked again


async def test_a_state_minted_for_another_login_is_refused(site: Site) -> None:
    """A state Parsec never minted (here: a made-up one) is the one 400."""
    reply = await site.browser().get("/auth/oidc/callback", params={"code": "c", "state": "x.y.z"})
    assert reply.status_code == 400
    assert error_of(reply) == "PARSEC_OAUTH_STATE_INVALID"


async def test_a_code_swapped_into_another_login_fails_pkce(site: Site) -> None:
    """The code of one login presented with the state of another: the provider refuses
    it (the PKCE verifier is the other login's)."""
    browser = site.browser()
    first = query_of(await site.authorize(browser))
    second = query_of(await site.authorize(browser))
    swapped = await browser.get(
        "/auth/oidc/callback", params={"code": first["code"], "state": second["state"]}
    )
    assert swapped.status_code == 400
    assert error_of(swapped) == "PARSEC_OIDC_BAD_CODE"
    assert first["code"] not in swapped.text
    assert COOKIE_NAME not in browser.cookies


async def test_a_declined_login_is_403(site: Site, sso: TamperingProvider) -> None:
    sso.deny_authorization = True
    browser = site.browser()
    callback = await site.authorize(browser)
    declined = await browser.get(callback)
    assert declined.status_code == 403
    assert error_of(declined) == "PARSEC_OIDC_DENIED"
    assert COOKIE_NAME not in browser.cookies
    again = await browser.get(callback)  # the declined login used its state up
    assert error_of(again) == "PARSEC_OAUTH_STATE_INVALID"


async def test_another_provider_error_is_502(site: Site) -> None:
    browser = site.browser()
    callback = query_of(await site.authorize(browser))
    reply = await browser.get(
        "/auth/oidc/callback",
        params={"state": callback["state"], "error": "<script>", "error_description": "boom"},
    )
    assert reply.status_code == 502
    assert error_of(reply) == "PARSEC_OIDC_OAUTH_ERROR"
    assert "<script>" not in reply.text
    assert "boom" not in reply.text


async def test_a_provider_failing_at_the_token_endpoint_is_503(
    site: Site, sso: TamperingProvider
) -> None:
    def fail(grant_type: str) -> None:
        raise RuntimeError("the provider is down")

    browser = site.browser()
    callback = await site.authorize(browser)
    sso.on_token_request = fail
    reply = await browser.get(callback)
    assert reply.status_code == 503
    assert error_of(reply) == "PARSEC_OIDC_UNAVAILABLE"


async def test_a_refused_client_secret_is_502_and_not_shown(
    backend: str, tmp_path: Path, sso: TamperingProvider
) -> None:
    """The provider refuses the client's credentials: this server's configuration is
    wrong, the browser is told so without the secret."""
    wrong = "not-the-secret:/+"
    async with open_site(backend, tmp_path, oidc=oidc_options(sso, client_secret=wrong)) as site:
        browser = site.browser()
        reply = await site.log_in(browser)
        assert reply.status_code == 502
        assert error_of(reply) == "PARSEC_OIDC_BAD_CLIENT"
        assert wrong not in reply.text
        assert COOKIE_NAME not in browser.cookies


def _unpublished(claims: dict[str, Any]) -> str:
    return SigningKey.generate().sign(claims)


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        pytest.param({"nonce": "not-this-logins"}, "nonce", id="wrong-nonce"),
        pytest.param({"nonce": None}, "nonce", id="no-nonce"),
        pytest.param({"aud": "someone-else"}, "aud", id="wrong-audience"),
        pytest.param({"iss": "https://evil.example"}, "iss", id="wrong-issuer"),
        pytest.param({"exp": 1_000_000_000}, "expired", id="expired"),
        pytest.param({"exp": None}, "exp", id="no-exp"),
        pytest.param({"iat": 4_000_000_000}, "iat", id="issued-in-the-future"),
        pytest.param({"sub": ""}, "sub", id="empty-sub"),
        pytest.param(
            {"aud": [CONFIDENTIAL_CLIENT, "other"], "azp": "other"}, "azp", id="other-azp"
        ),
    ],
)
async def test_an_id_token_with_bad_claims_is_refused(
    site: Site, sso: TamperingProvider, claims: dict[str, Any], why: str
) -> None:
    sso.id_token_claims = claims
    browser = site.browser()
    reply = await site.log_in(browser)
    assert reply.status_code == 502
    assert error_of(reply) == "PARSEC_OIDC_ID_TOKEN_INVALID"
    assert why in reply.json()["error"]["message"]
    assert COOKIE_NAME not in browser.cookies
    assert (await browser.get("/api/v1/orgs")).status_code == 401


async def test_an_expired_id_token_is_refused(site: Site, sso: TamperingProvider) -> None:
    """The provider's own token, issued already expired."""
    sso.id_token_ttl = -1
    reply = await site.log_in(site.browser())
    assert reply.status_code == 502
    assert error_of(reply) == "PARSEC_OIDC_ID_TOKEN_INVALID"


def _hs256_with_the_public_kid(provider: TamperingProvider) -> Any:
    def forge(claims: dict[str, Any]) -> str:
        headers = {"kid": provider.active.kid}
        return jwt.encode(claims, "s" * 32, algorithm="HS256", headers=headers)

    return forge


def _none_with_the_public_kid(provider: TamperingProvider) -> Any:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    def forge(claims: dict[str, Any]) -> str:
        header = {"alg": "none", "typ": "JWT", "kid": provider.active.kid}
        return f"{part(header)}.{part(claims)}."

    return forge


def _other_key_with_the_public_kid(provider: TamperingProvider) -> Any:
    def forge(claims: dict[str, Any]) -> str:
        impostor = SigningKey(provider.active.kid, "RS256", SigningKey.generate().private)
        return impostor.sign(claims)

    return forge


@pytest.mark.parametrize(
    ("forger", "why"),
    [
        pytest.param(lambda provider: _unpublished, "does not publish", id="unknown-key"),
        pytest.param(_other_key_with_the_public_kid, "signature", id="forged-signature"),
        pytest.param(_hs256_with_the_public_kid, "signature", id="hs256"),
        pytest.param(_none_with_the_public_kid, "signature", id="alg-none"),
    ],
)
async def test_an_id_token_not_signed_by_the_provider_is_refused(
    site: Site, sso: TamperingProvider, forger: Any, why: str
) -> None:
    sso.id_token_forge = forger(sso)
    browser = site.browser()
    reply = await site.log_in(browser)
    assert reply.status_code == 502
    assert error_of(reply) == "PARSEC_OIDC_ID_TOKEN_INVALID"
    assert why in reply.json()["error"]["message"]
    assert COOKIE_NAME not in browser.cookies


async def test_a_refused_login_logs_no_secret(
    site: Site, sso: TamperingProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the answer nor Parsec's logs carry the code, the ID token, the client
    secret or the PKCE verifier."""
    tokens: list[str] = []

    def keep(claims: dict[str, Any]) -> str:
        tokens.append(sso.active.sign({**claims, "nonce": "wrong"}))
        return tokens[-1]

    sso.id_token_forge = keep
    browser = site.browser()
    caplog.set_level(logging.DEBUG)
    callback = await site.authorize(browser)
    code = query_of(callback)["code"]
    reply = await browser.get(callback)
    assert error_of(reply) == "PARSEC_OIDC_ID_TOKEN_INVALID"
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("parsec")
    )
    assert "PARSEC_OIDC_ID_TOKEN_INVALID" in logged
    for secret in (code, tokens[0], CONFIDENTIAL_SECRET, SESSION_KEY):
        assert secret not in reply.text
        assert secret not in logged


async def test_the_challenge_is_the_s256_of_the_verifier_sent(
    site: Site, sso: TamperingProvider
) -> None:
    """The provider checks S256(code_verifier) == code_challenge: a login that succeeds
    proves it; the recorded grant holds the challenge the start sent."""
    browser = site.browser()
    start = await browser.get("/auth/oidc/start")
    challenge = query_of(start.headers["location"])["code_challenge"]
    async with httpx.AsyncClient(trust_env=False) as user_agent:
        approved = await user_agent.get(start.headers["location"])
    (grant,) = sso.flows.codes.values()
    assert grant.challenge == challenge
    assert grant.challenge != s256("")
    back = urlsplit(approved.headers["location"])
    assert (await browser.get(f"{back.path}?{back.query}")).status_code == 303


# --- not configured, and the login page ---------------------------------------------


async def test_without_oidc_the_routes_are_404(
    backend: str, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    async with open_site(backend, tmp_path, oidc=None, github=github_options(fake_github)) as site:
        browser = site.browser()
        for path in ("/auth/oidc/start", "/auth/oidc/callback?code=c&state=s"):
            reply = await browser.get(path)
            assert reply.status_code == 404
            assert error_of(reply) == "PARSEC_OIDC_NOT_CONFIGURED"
        page = await browser.get("/auth/login")
        assert page.status_code == 200
        assert "/auth/github/start?next=%2F" in page.text
        assert "/auth/oidc/start" not in page.text


async def test_the_login_page_lists_every_method_with_the_same_next(site: Site) -> None:
    page = await site.browser().get("/auth/login", params={"next": "/orgs/acme?tab=keys"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<a href="/auth/github/start?next=%2Forgs%2Facme%3Ftab%3Dkeys">' in page.text
    assert "Log in with GitHub</a>" in page.text
    assert '<a href="/auth/oidc/start?next=%2Forgs%2Facme%3Ftab%3Dkeys">' in page.text
    assert "Log in with Corp SSO</a>" in page.text
    assert "<script" not in page.text
    assert "http" not in page.text.split("<body>")[1]  # no external asset, no absolute link


async def test_the_login_page_links_lead_to_a_login(site: Site) -> None:
    """Following the page's OIDC link logs in and lands on ``next``."""
    browser = site.browser()
    await browser.get("/auth/login", params={"next": "/orgs"})
    done = await site.log_in(browser, "/orgs")
    assert done.headers["location"] == "/orgs"


@pytest.mark.parametrize("next_path", ["//evil.example", "https://evil.example/", '/"><script>'])
async def test_the_login_page_makes_next_safe(site: Site, next_path: str) -> None:
    page = await site.browser().get("/auth/login", params={"next": next_path})
    assert page.status_code == 200
    assert "evil" not in page.text
    assert "<script>" not in page.text
    assert "/auth/oidc/start?next=%2F" in page.text


async def test_the_login_page_escapes_the_providers_name(
    backend: str, tmp_path: Path, sso: TamperingProvider
) -> None:
    async with open_site(
        backend, tmp_path, oidc=oidc_options(sso, name='<b>"Acme" & Co</b>')
    ) as site:
        page = await site.browser().get("/auth/login")
        assert "Log in with &lt;b&gt;&quot;Acme&quot; &amp; Co&lt;/b&gt;</a>" in page.text
        assert "<b>" not in page.text
        assert "github" not in page.text


async def test_the_login_page_is_404_without_a_login_method(backend: str, tmp_path: Path) -> None:
    async with open_site(backend, tmp_path, oidc=None) as site:
        reply = await site.browser().get("/auth/login")
        assert reply.status_code == 404
        assert error_of(reply) == "PARSEC_LOGIN_NOT_CONFIGURED"


async def test_an_undiscoverable_provider_stops_the_start(
    backend: str, tmp_path: Path, sso: TamperingProvider
) -> None:
    """The instance does not start half-configured; the error names the setting."""
    oidc = oidc_options(sso, issuer=f"{sso.issuer}-missing")
    with pytest.raises(DiscoveryError) as failure:
        async with open_site(backend, tmp_path, oidc=oidc):
            pass
    assert failure.value.setting == "accounts.oidc.issuer"
    assert "HTTP 404" in str(failure.value)
