"""The token broker in a Parsec with ``[accounts]`` (SQLite and PostgreSQL): a session
cookie, a user access token or an API key holding ``tokens:issue`` asks for connection
tokens as itself, and each issuance is in the audit log (``token.issued``); management
tokens work as before."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from accounts_fixtures import Tenancy, accounts_options
from db_targets import BACKENDS, database_url
from fake_github import FakeGitHub

from parsec import Parsec, TokenBrokerOptions, TokenBrokerSettings
from parsec.services.accounts_broker import AccountsAuditLogger
from parsec.services.token_policy import ALLOW_ALL

TOKEN = "/parsec/token"


@pytest.fixture(params=BACKENDS)
async def brokered(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub
) -> AsyncIterator[Tenancy]:
    """A Parsec with ``[accounts]`` and the token broker on (granting every channel)."""
    async with database_url(request.param, tmp_path) as url:
        options = accounts_options(
            url, tmp_path, fake_github, token_broker=TokenBrokerOptions(enabled=True)
        )
        settings = TokenBrokerSettings(authorizer=ALLOW_ALL)
        async with (
            Parsec(options, token_broker=settings) as instance,
            contextlib.AsyncExitStack() as stack,
        ):
            yield Tenancy(instance, fake_github, stack)


async def drained(tenancy: Tenancy) -> None:
    """Wait for the audit writes of the issuances so far."""
    audit = tenancy.parsec.token_broker.audit_logger
    assert isinstance(audit, AccountsAuditLogger)
    await audit.drain()


def subject(token: str) -> Any:
    return jwt.decode(token, options={"verify_signature": False})["sub"]


async def make_key(client: httpx.AsyncClient, scopes: list[str]) -> Any:
    reply = await client.post("/api/v1/orgs/alice/apikeys", json={"name": "svc", "scopes": scopes})
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_a_session_a_user_token_and_a_key_get_tokens(brokered: Tenancy) -> None:
    alice = await brokered.browser("alice")
    accounts = brokered.parsec.accounts
    assert accounts is not None
    user_id = accounts.cookies.verify(alice.cookies["parsec_session"]).user_id

    by_cookie = await alice.post(TOKEN, json={"channels": ["chat:a"]})
    assert by_cookie.status_code == 200, by_cookie.text
    assert by_cookie.json()["channels_granted"] == ["chat:a"]
    assert subject(by_cookie.json()["token"]) == user_id

    psu = accounts.user_tokens.mint(user_id)
    by_token = await brokered.anonymous().post(
        TOKEN, json={"channels": ["chat:b"]}, headers={"Authorization": f"Bearer {psu}"}
    )
    assert by_token.status_code == 200, by_token.text
    assert subject(by_token.json()["token"]) == user_id

    key = await make_key(alice, ["tokens:issue"])
    by_key = await brokered.anonymous().post(
        TOKEN, json={"channels": ["chat:c"]}, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert by_key.status_code == 200, by_key.text
    assert subject(by_key.json()["token"]) == f"apikey:{key['id']}"

    await drained(brokered)
    events = (
        await alice.get("/api/v1/orgs/alice/audit", params={"action": "token.issued"})
    ).json()["events"]
    assert len(events) == 1  # the key's, in its org (a user's issuance has no org)
    (event,) = events
    assert event["actor_kind"] == "api_key"
    assert event["actor_id"] == key["id"]
    assert event["target"] == by_key.json()["token_id"]
    assert event["detail"]["channels"] == ["chat:c"]
    assert event["detail"]["issued_to"] == f"apikey:{key['id']}"
    assert by_key.json()["token"] not in str(events)
    assert key["key"] not in str(events)


async def test_users_issuances_are_audited_without_an_org(brokered: Tenancy) -> None:
    from sqlalchemy import select

    from parsec.db.schema import AuditEvent

    alice = await brokered.browser("alice")
    issued = await alice.post(TOKEN, json={"channels": ["chat:a"]})
    assert issued.status_code == 200
    await drained(brokered)
    accounts = brokered.parsec.accounts
    assert accounts is not None
    async with accounts.db.session() as session:
        rows = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "token.issued"))
        )
    assert [(r.actor_kind, r.org_id, r.target) for r in rows] == [
        ("user", None, issued.json()["token_id"])
    ]


@pytest.mark.parametrize(
    ("headers", "cookie", "status", "code"),
    [
        ({"Authorization": "Bearer psk_forged"}, None, 401, "PARSEC_AUTH_MISSING"),
        ({"Authorization": "Bearer psu_forged.value"}, None, 401, "PARSEC_AUTH_MISSING"),
        ({}, "tampered", 401, "PARSEC_AUTH_MISSING"),
        ({}, None, 401, "PARSEC_AUTH_MISSING"),
    ],
    ids=["bad-key", "bad-user-token", "bad-cookie", "nothing"],
)
async def test_bad_accounts_credentials_are_401(
    brokered: Tenancy, headers: dict[str, str], cookie: str | None, status: int, code: str
) -> None:
    client = brokered.anonymous()
    if cookie is not None:
        client.cookies.set("parsec_session", cookie)
    reply = await client.post(TOKEN, json={"channels": ["chat:a"]}, headers=headers)
    assert reply.status_code == status
    assert reply.json()["code"] == code


async def test_a_key_without_tokens_issue_is_403_and_a_revoked_one_401(
    brokered: Tenancy,
) -> None:
    alice = await brokered.browser("alice")
    reader = await make_key(alice, ["org:read"])
    denied = await brokered.anonymous().post(
        TOKEN, json={"channels": ["chat:a"]}, headers={"Authorization": f"Bearer {reader['key']}"}
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "PARSEC_AUTH_DENIED"
    issuer = await make_key(alice, ["tokens:issue"])
    assert (await alice.delete(f"/api/v1/orgs/alice/apikeys/{issuer['id']}")).status_code == 204
    revoked = await brokered.anonymous().post(
        TOKEN, json={"channels": ["chat:a"]}, headers={"Authorization": f"Bearer {issuer['key']}"}
    )
    assert revoked.status_code == 401


async def test_management_tokens_still_work(brokered: Tenancy) -> None:
    mgmt = brokered.parsec.tokens.issue_mgmt("ops").token
    reply = await brokered.anonymous().post(
        TOKEN, json={"channels": ["chat:a"]}, headers={"Authorization": f"Bearer {mgmt}"}
    )
    assert reply.status_code == 200, reply.text
    assert subject(reply.json()["token"]) == "ops"
    await drained(brokered)
