"""The device flow (RFC 8628) in-process, on SQLite and PostgreSQL: the device's two
endpoints and the RFC's error cases one by one, the verify page (login redirect, CSRF,
escaping), and redemption exactly once. Time is a clock the test moves."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from accounts_fixtures import BASE_URL, Tenancy
from sqlalchemy import select

from parsec.accounts.device_flow import GRANT_TYPE, DeviceFlow, hash_device_code
from parsec.db.schema import AuditEvent, DeviceCode, User
from parsec.services.accounts import AccountsService

from .conftest import Clock

CLIENT = "parsec-cli"


def accounts_of(tenancy: Tenancy) -> AccountsService:
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    return accounts


@pytest.fixture
def moved(tenancy: Tenancy, clock: Clock) -> Clock:
    """The tenancy's device flow, reading the test's clock."""
    accounts_of(tenancy).device_flow.clock = clock
    return clock


async def start(client: httpx.AsyncClient, **form: str) -> dict[str, Any]:
    reply = await client.post("/oauth/device/code", data={"client_id": CLIENT, **form})
    assert reply.status_code == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = reply.json()
    return body


async def poll(client: httpx.AsyncClient, device_code: str, **form: str) -> httpx.Response:
    data = {"grant_type": GRANT_TYPE, "device_code": device_code, "client_id": CLIENT} | form
    return await client.post("/oauth/device/token", data=data)


def oauth_error(reply: httpx.Response, status: int = 400) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error", "error_description"}
    assert reply.headers["Cache-Control"] == "no-store"
    error: str = body["error"]
    return error


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def decide(
    browser: httpx.AsyncClient, user_code: str, decision: str = "approve"
) -> httpx.Response:
    page = await browser.get("/oauth/device", params={"user_code": user_code})
    assert page.status_code == 200, page.text
    form = {"user_code": user_code, "decision": decision, "csrf_token": csrf_of(page.text)}
    return await browser.post("/oauth/device", data=form)


# -- POST /oauth/device/code ------------------------------------------------------------------


async def test_a_device_code_is_issued_as_rfc_8628_says(tenancy: Tenancy, moved: Clock) -> None:
    device = tenancy.anonymous()
    body = await start(device, scope="orgs")
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert body["verification_uri"] == f"{BASE_URL}/oauth/device"
    assert body["verification_uri_complete"] == (
        f"{BASE_URL}/oauth/device?user_code={body['user_code']}"
    )
    assert (body["expires_in"], body["interval"]) == (600, 5)
    assert len(body["device_code"]) >= 43
    async with accounts_of(tenancy).db.session() as session:
        row = await session.scalar(select(DeviceCode))
    assert row is not None
    assert row.device_code_hash == hash_device_code(body["device_code"])
    assert row.device_code_hash != body["device_code"]
    assert row.user_code == body["user_code"].replace("-", "")
    assert row.scope == "orgs"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({}, 400, "invalid_request"),
        ({"client_id": ""}, 400, "invalid_request"),
    ],
    ids=["unknown-client", "no-client", "empty-client"],
)
async def test_a_device_code_needs_the_cli_client(
    tenancy: Tenancy, form: dict[str, str], status: int, error: str
) -> None:
    reply = await tenancy.anonymous().post("/oauth/device/code", data=form)
    assert oauth_error(reply, status) == error


async def test_a_device_code_request_must_be_a_form(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    as_json = await device.post("/oauth/device/code", json={"client_id": CLIENT})
    assert oauth_error(as_json) == "invalid_request"
    twice = await device.post(
        "/oauth/device/code",
        content=b"client_id=parsec-cli&client_id=other",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert oauth_error(twice) == "invalid_request"
    huge = await device.post("/oauth/device/code", data={"client_id": CLIENT, "x": "y" * 10_000})
    assert oauth_error(huge) == "invalid_request"


# -- POST /oauth/device/token: the RFC's errors, one by one ----------------------------------


async def test_polling_before_approval_is_authorization_pending(
    tenancy: Tenancy, moved: Clock
) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    assert oauth_error(await poll(device, body["device_code"])) == "authorization_pending"
    moved.now += 5
    assert oauth_error(await poll(device, body["device_code"])) == "authorization_pending"


async def test_polling_too_soon_is_slow_down_and_the_interval_grows(
    tenancy: Tenancy, moved: Clock
) -> None:
    device = tenancy.anonymous()
    code = (await start(device))["device_code"]
    assert oauth_error(await poll(device, code)) == "authorization_pending"
    moved.now += 4
    slow = await poll(device, code)
    assert oauth_error(slow) == "slow_down"
    assert "10 seconds" in slow.json()["error_description"]
    moved.now += 9  # the interval is 10 now: 9 s is still too soon
    assert oauth_error(await poll(device, code)) == "slow_down"
    moved.now += 15  # 15 now
    assert oauth_error(await poll(device, code)) == "authorization_pending"
    async with accounts_of(tenancy).db.session() as session:
        row = await session.get(DeviceCode, hash_device_code(code))
    assert row is not None
    assert row.interval == 15


async def test_an_expired_code_is_expired_token_and_cannot_be_approved(
    tenancy: Tenancy, moved: Clock
) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    moved.now += 600
    assert oauth_error(await poll(device, body["device_code"])) == "expired_token"
    page = await alice.get("/oauth/device", params={"user_code": body["user_code"]})
    assert page.status_code == 404
    assert "unknown, used or expired" in page.text


async def test_a_denied_code_is_access_denied(tenancy: Tenancy, moved: Clock) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    denied = await decide(alice, body["user_code"], "deny")
    assert denied.status_code == 200
    assert "was denied" in denied.text
    assert oauth_error(await poll(device, body["device_code"])) == "access_denied"
    moved.now += 10
    assert oauth_error(await poll(device, body["device_code"])) == "access_denied"
    assert await actions(tenancy) >= {"device.denied"}


async def test_an_unknown_code_is_invalid_grant(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    assert oauth_error(await poll(device, "no-such-code")) == "invalid_grant"
    assert oauth_error(await poll(device, "x" * 5000)) == "invalid_grant"


async def test_another_grant_type_is_unsupported(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    reply = await poll(device, body["device_code"], grant_type="authorization_code")
    assert oauth_error(reply) == "unsupported_grant_type"


@pytest.mark.parametrize("missing", ["grant_type", "device_code", "client_id"])
async def test_a_missing_parameter_is_invalid_request(tenancy: Tenancy, missing: str) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    data = {"grant_type": GRANT_TYPE, "device_code": body["device_code"], "client_id": CLIENT}
    del data[missing]
    reply = await device.post("/oauth/device/token", data=data)
    assert oauth_error(reply) == "invalid_request"
    assert missing in reply.json()["error_description"]


async def test_another_client_is_invalid_client(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    assert oauth_error(await poll(device, body["device_code"], client_id="x"), 401) == (
        "invalid_client"
    )


# -- approval and redemption -----------------------------------------------------------------


async def test_an_approved_code_gives_a_user_token_once(tenancy: Tenancy, moved: Clock) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    approved = await decide(alice, body["user_code"].lower().replace("-", ""))
    assert approved.status_code == 200
    assert "go back to your terminal" in approved.text
    moved.now += 5
    granted = await poll(device, body["device_code"])
    assert granted.status_code == 200, granted.text
    assert granted.headers["Cache-Control"] == "no-store"
    token = granted.json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("psu_")
    assert token["expires_in"] == accounts_of(tenancy).user_tokens.ttl
    orgs = await device.get(
        "/api/v1/orgs", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert [org["slug"] for org in orgs.json()] == ["alice"]
    moved.now += 5
    assert oauth_error(await poll(device, body["device_code"])) == "invalid_grant"
    assert await actions(tenancy) >= {"device.approved", "user.login"}
    async with accounts_of(tenancy).db.session() as session:
        logins = (
            await session.scalars(
                select(AuditEvent.target).where(AuditEvent.action == "user.login")
            )
        ).all()
    assert "device" in logins


async def test_concurrent_polls_redeem_an_approved_code_once(
    tenancy: Tenancy, moved: Clock
) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    assert (await decide(alice, body["user_code"])).status_code == 200
    flows = [DeviceFlow(accounts_of(tenancy).db, clock=moved) for _ in range(8)]
    results = await asyncio.gather(
        *(flow.poll(body["device_code"]) for flow in flows), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert {getattr(r, "error", r) for r in losers} == {"invalid_grant"}


async def test_a_code_is_decided_once(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    page = await alice.get("/oauth/device", params={"user_code": body["user_code"]})
    token = csrf_of(page.text)
    form = {"user_code": body["user_code"], "decision": "approve", "csrf_token": token}
    assert (await alice.post("/oauth/device", data=form)).status_code == 200
    again = await alice.post("/oauth/device", data=form | {"decision": "deny"})
    assert again.status_code == 404


async def actions(tenancy: Tenancy) -> set[str]:
    async with accounts_of(tenancy).db.session() as session:
        return set((await session.scalars(select(AuditEvent.action))).all())


# -- the verify page --------------------------------------------------------------------------


async def test_the_verify_page_sends_a_stranger_to_log_in_and_back(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    browser = tenancy.anonymous()
    here = urlsplit(body["verification_uri_complete"])
    first = await browser.get(f"{here.path}?{here.query}")
    assert first.status_code == 302
    login = urlsplit(first.headers["location"])
    assert login.path == "/auth/github/start"
    assert parse_qs(login.query)["next"] == [f"/oauth/device?user_code={body['user_code']}"]
    to_github = await browser.get(first.headers["location"])
    assert to_github.status_code == 302
    async with httpx.AsyncClient(trust_env=False) as github:
        approved = await github.get(to_github.headers["location"])
    back = urlsplit(approved.headers["location"])
    callback = await browser.get(f"{back.path}?{back.query}")
    assert callback.status_code == 303
    assert callback.headers["location"] == f"/oauth/device?user_code={body['user_code']}"
    page = await browser.get(callback.headers["location"])
    assert page.status_code == 200
    assert body["user_code"] in page.text
    assert "alice" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.text
    assert "http" not in page.text.split("<body>")[1]  # no external asset


async def test_the_verify_page_without_a_code_asks_for_one(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    page = await alice.get("/oauth/device")
    assert page.status_code == 200
    assert 'name="user_code"' in page.text
    bad = await alice.get("/oauth/device", params={"user_code": "AEIOU-123"})
    assert bad.status_code == 400
    unknown = await alice.get("/oauth/device", params={"user_code": "BBBB-BBBB"})
    assert unknown.status_code == 404
    assert "BBBB-BBBB" in unknown.text


async def test_the_verify_page_escapes_what_it_shows(tenancy: Tenancy) -> None:
    """A username and a scope holding markup are shown as text."""
    evil = "<img src=x onerror=alert(1)>"
    device = tenancy.anonymous()
    body = await start(device, scope=f'"><script>alert(1)</script>{evil}')
    mallory = await tenancy.browser("mallory")
    accounts = accounts_of(tenancy)
    user_id = accounts.cookies.verify(mallory.cookies["parsec_session"]).user_id
    async with accounts.db.transaction() as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        user.username = evil
    page = await mallory.get("/oauth/device", params={"user_code": body["user_code"]})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert html.escape(evil) in page.text
    assert "&lt;script&gt;" in page.text


async def test_a_decision_without_the_right_csrf_token_is_refused(tenancy: Tenancy) -> None:
    device = tenancy.anonymous()
    body = await start(device)
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    bobs_page = await bob.get("/oauth/device", params={"user_code": body["user_code"]})
    bobs_token = csrf_of(bobs_page.text)
    form = {"user_code": body["user_code"], "decision": "approve"}
    without = await alice.post("/oauth/device", data=form)
    assert without.status_code == 403
    wrong = await alice.post("/oauth/device", data=form | {"csrf_token": "forged.token.x"})
    assert wrong.status_code == 403
    someone_elses = await alice.post("/oauth/device", data=form | {"csrf_token": bobs_token})
    assert someone_elses.status_code == 403
    assert "did not come from this site" in someone_elses.text
    assert oauth_error(await poll(device, body["device_code"])) == "authorization_pending"
    anonymous = await tenancy.anonymous().post(
        "/oauth/device", data=form | {"csrf_token": bobs_token}
    )
    assert anonymous.status_code == 401
    bad_decision = await bob.post(
        "/oauth/device", data=form | {"csrf_token": bobs_token, "decision": "maybe"}
    )
    assert bad_decision.status_code == 400
