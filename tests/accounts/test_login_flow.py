"""The primitives wired into login routes (tests/accounts/login_app.py) and driven by a
real HTTP client following redirects through the fake GitHub: what a browser sees.

Two workers (two servers) share one state ledger, as workers of one node share the
database: a callback used on one is refused on the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub, serving_in_thread

from parsec.accounts.github import GitHubOAuth
from parsec.accounts.oauth_state import MemoryStateLedger
from parsec.testing import free_port

from .conftest import KEY
from .login_app import login_app


@dataclass(frozen=True, slots=True)
class Workers:
    """Two login servers sharing the session key and the state ledger."""

    a: str
    b: str


@pytest.fixture(scope="module")
def workers(github_served: FakeGitHub) -> Iterator[Workers]:
    """Two servers of the login app, on loopback ports, for the module."""
    ledger = MemoryStateLedger()

    def github() -> GitHubOAuth:
        return GitHubOAuth(
            CLIENT_ID,
            CLIENT_SECRET,
            authorize_url=github_served.authorize_url,
            token_url=github_served.token_url,
            user_url=github_served.user_url,
        )

    urls = []
    with contextlib.ExitStack() as stack:
        for name in ("login-a", "login-b"):
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            app = login_app(base_url=base_url, session_key=KEY, ledger=ledger, github=github)
            urls.append(stack.enter_context(serving_in_thread(app, name, lifespan=True, port=port)))
        yield Workers(*urls)


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """A browser: follows redirects, keeps cookies."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as client:
        yield client


async def test_login_lands_on_next_with_a_session(
    workers: Workers, fake_github: FakeGitHub, browser: httpx.AsyncClient
) -> None:
    """start → GitHub → callback → the page asked for, logged in as the GitHub user."""
    response = await browser.get(f"{workers.a}/auth/github/start", params={"next": "/orgs?x=1"})
    assert response.status_code == 200
    assert response.json() == {"page": "/orgs", "query": "x=1"}
    hops = [str(r.url).split("?")[0] for r in response.history]
    assert hops == [
        f"{workers.a}/auth/github/start",
        fake_github.authorize_url,
        f"{workers.a}/auth/github/callback",
    ]
    set_cookie = response.history[-1].headers["set-cookie"]
    assert set_cookie.startswith("parsec_session=")
    assert "HttpOnly" in set_cookie
    assert "samesite=lax" in set_cookie.lower()
    assert "Secure" not in set_cookie
    assert (await browser.get(f"{workers.a}/me")).json() == {"user_id": "1001"}
    assert (await browser.get(f"{workers.b}/me")).json() == {"user_id": "1001"}


async def test_an_open_redirect_attempt_lands_home(
    workers: Workers, fake_github: FakeGitHub, browser: httpx.AsyncClient
) -> None:
    """next=//evil.com logs in all the same and lands on this site's home page."""
    for evil in ["//evil.com", "https://evil.com/", "/\\evil.com", "/%2F%2Fevil.com"]:
        response = await browser.get(f"{workers.a}/auth/github/start", params={"next": evil})
        assert str(response.url) == f"{workers.a}/", evil


async def callback_url(workers: Workers, next_path: str = "/") -> str:
    """Where GitHub sends the browser back to, captured without following it."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        start = await client.get(f"{workers.a}/auth/github/start", params={"next": next_path})
        authorize = await client.get(start.headers["location"])
    return str(authorize.headers["location"])


async def test_a_replayed_callback_is_refused_on_every_worker(
    workers: Workers, fake_github: FakeGitHub, browser: httpx.AsyncClient
) -> None:
    """The callback URL works once; replayed to the same or the other worker it is 400
    PARSEC_OAUTH_STATE_INVALID, and GitHub is not asked again."""
    url = await callback_url(workers, "/once")
    assert (await browser.get(url)).json()["page"] == "/once"
    other_worker = url.replace(workers.a, workers.b)
    for replay in (url, other_worker):
        response = await browser.get(replay)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "PARSEC_OAUTH_STATE_INVALID"
    assert fake_github.hits["token"] == 1


async def test_a_forged_state_is_refused(workers: Workers, browser: httpx.AsyncClient) -> None:
    """A callback with a made-up state is 400, whatever the code."""
    response = await browser.get(
        f"{workers.a}/auth/github/callback", params={"code": "c", "state": "forged"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PARSEC_OAUTH_STATE_INVALID"
    assert "forged" not in response.text


async def test_declining_on_github_is_403(
    workers: Workers, fake_github: FakeGitHub, browser: httpx.AsyncClient
) -> None:
    """The user declines on GitHub: 403 PARSEC_GITHUB_DENIED and no session."""
    fake_github.deny = True
    response = await browser.get(f"{workers.a}/auth/github/start")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PARSEC_GITHUB_DENIED"
    assert "parsec_session" not in browser.cookies
    assert (await browser.get(f"{workers.a}/me")).status_code == 401


async def test_a_tampered_cookie_is_one_clean_401(
    workers: Workers, fake_github: FakeGitHub, browser: httpx.AsyncClient
) -> None:
    """A session cookie changed by one character is 401 PARSEC_SESSION_INVALID, and the
    answer does not echo it."""
    await browser.get(f"{workers.a}/auth/github/start")
    value = browser.cookies["parsec_session"]
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    browser.cookies.clear()
    browser.cookies.set("parsec_session", tampered)
    response = await browser.get(f"{workers.a}/me")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "PARSEC_SESSION_INVALID", "message": "invalid session"}
    }
    assert tampered not in response.text
