"""Accounts in a Parsec instance (``[accounts]``, issue 14): the GitHub login through
the fake GitHub, the session cookie, and the caller's orgs — on SQLite and PostgreSQL.

The test plays the browser: it follows each redirect itself, to Parsec (in process,
over ASGI) or to the fake GitHub (a real HTTP server), and carries the cookie.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from accounts_fixtures import BASE_URL, accounts_options
from db_targets import BACKENDS, database_url
from fake_github import BOB, CLIENT_ID, FakeGitHub
from sqlalchemy import select

from parsec import Parsec
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.db.schema import AuditEvent


@pytest.fixture(params=BACKENDS)
async def parsec(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub
) -> AsyncIterator[Parsec]:
    async with database_url(request.param, tmp_path) as url:
        options = accounts_options(url, tmp_path, fake_github)
        async with Parsec(options) as instance:
            yield instance


@pytest.fixture
async def browser(parsec: Parsec) -> AsyncIterator[httpx.AsyncClient]:
    """The browser's view of Parsec (its cookie jar included)."""
    transport = httpx.ASGITransport(app=parsec.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def log_in(browser: httpx.AsyncClient, next_path: str = "/dashboard") -> httpx.Response:
    """The whole login: Parsec's start → GitHub's authorize → Parsec's callback; the
    callback's answer."""
    start = await browser.get("/auth/github/start", params={"next": next_path})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient(trust_env=False) as github:
        approved = await github.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == BASE_URL
    return await browser.get(f"{back.path}?{back.query}")


async def test_the_start_redirects_to_github_with_the_contract_parameters(
    browser: httpx.AsyncClient, fake_github: FakeGitHub
) -> None:
    start = await browser.get("/auth/github/start", params={"next": "/x"})
    assert start.status_code == 302
    target = urlsplit(start.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == fake_github.authorize_url
    query = {name: values[0] for name, values in parse_qs(target.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{BASE_URL}/auth/github/callback"
    assert query["scope"] == "read:user user:email"
    assert query["state"]


async def test_a_first_login_sets_the_cookie_and_makes_a_personal_org(
    browser: httpx.AsyncClient,
) -> None:
    done = await log_in(browser, "/dashboard?tab=keys")
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard?tab=keys"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # base_url is http

    orgs = await browser.get("/api/v1/orgs")
    assert orgs.status_code == 200
    assert orgs.json() == [
        {"slug": "alice", "name": "Alice Liddell", "personal": True, "role": "owner"}
    ]
    one = await browser.get("/api/v1/orgs/alice")
    assert one.status_code == 200
    assert one.json()["slug"] == "alice"


async def test_a_second_login_is_the_same_user(browser: httpx.AsyncClient) -> None:
    await log_in(browser)
    browser.cookies.clear()
    await log_in(browser)
    orgs = (await browser.get("/api/v1/orgs")).json()
    assert [org["slug"] for org in orgs] == ["alice"]


async def test_another_users_org_is_not_found(
    browser: httpx.AsyncClient, fake_github: FakeGitHub
) -> None:
    """bob's org, asked by alice, answers exactly as an org that does not exist."""
    fake_github.login_as = BOB.login
    await log_in(browser)
    browser.cookies.clear()
    fake_github.login_as = "alice"
    await log_in(browser)
    foreign = await browser.get("/api/v1/orgs/bob")
    missing = await browser.get("/api/v1/orgs/nobody-here")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == missing.json()["error"]["code"]
    assert [org["slug"] for org in (await browser.get("/api/v1/orgs")).json()] == ["alice"]


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", " /x", "javascript:alert(1)"],
)
async def test_an_unsafe_next_lands_on_the_root(browser: httpx.AsyncClient, next_path: str) -> None:
    done = await log_in(browser, next_path)
    assert done.status_code == 303
    assert done.headers["location"] == "/"


async def test_a_replayed_callback_is_refused(browser: httpx.AsyncClient) -> None:
    start = await browser.get("/auth/github/start")
    async with httpx.AsyncClient(trust_env=False) as github:
        approved = await github.get(start.headers["location"])
    back = urlsplit(approved.headers["location"])
    first = await browser.get(f"{back.path}?{back.query}")
    again = await browser.get(f"{back.path}?{back.query}")
    assert first.status_code == 303
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "PARSEC_OAUTH_STATE_INVALID"


async def test_concurrent_replays_let_exactly_one_in(browser: httpx.AsyncClient) -> None:
    start = await browser.get("/auth/github/start")
    async with httpx.AsyncClient(trust_env=False) as github:
        approved = await github.get(start.headers["location"])
    back = urlsplit(approved.headers["location"])
    replies = await asyncio.gather(*(browser.get(f"{back.path}?{back.query}") for _ in range(8)))
    assert sorted(reply.status_code for reply in replies) == [303] + [400] * 7


async def test_a_declined_login_is_403(browser: httpx.AsyncClient, fake_github: FakeGitHub) -> None:
    fake_github.deny = True
    done = await log_in(browser)
    assert done.status_code == 403
    assert done.json()["error"]["code"] == "PARSEC_GITHUB_DENIED"
    assert COOKIE_NAME not in browser.cookies


@pytest.mark.parametrize(
    "cookie",
    ["", "garbage", "eyJ1aWQiOiJ4In0.AAAA.BBBB"],
    ids=["empty", "garbage", "forged"],
)
async def test_no_valid_session_is_401(browser: httpx.AsyncClient, cookie: str) -> None:
    """No cookie is "log in" (PARSEC_UNAUTHENTICATED); any bad cookie is the one
    PARSEC_SESSION_INVALID, whatever is wrong with it."""
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    reply = await browser.get("/api/v1/orgs", headers=headers)
    assert reply.status_code == 401
    expected = "PARSEC_SESSION_INVALID" if cookie else "PARSEC_UNAUTHENTICATED"
    assert reply.json()["error"]["code"] == expected
    assert "Bearer" in reply.headers["WWW-Authenticate"]


async def test_a_tampered_cookie_is_401(browser: httpx.AsyncClient) -> None:
    await log_in(browser)
    value = browser.cookies[COOKIE_NAME]
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    browser.cookies.clear()
    reply = await browser.get("/api/v1/orgs", headers={"Cookie": f"{COOKIE_NAME}={tampered}"})
    assert reply.status_code == 401


async def test_logout_clears_the_cookie(browser: httpx.AsyncClient) -> None:
    await log_in(browser)
    out = await browser.post("/auth/logout")
    assert out.status_code == 204
    assert (await browser.get("/api/v1/orgs")).status_code == 401


async def test_the_audit_log_records_the_first_login(
    parsec: Parsec, browser: httpx.AsyncClient
) -> None:
    await log_in(browser)
    assert parsec.accounts is not None
    async with parsec.accounts.db.session() as session:
        actions = (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert list(actions) == ["user.created", "org.created", "user.login"]
