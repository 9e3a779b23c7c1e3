"""What every ``/api/v1`` route shares: the caller (cookie or bearer, told apart by
prefix), the org it acts in, the error shape and the OpenAPI document."""

from __future__ import annotations

import pytest
from accounts_fixtures import Tenancy


async def test_the_orgs_of_two_users_are_their_own(tenancy: Tenancy) -> None:
    alice = await tenancy.browser("alice")
    bob = await tenancy.browser("bob")
    assert [o["slug"] for o in (await alice.get("/api/v1/orgs")).json()] == ["alice"]
    assert [o["slug"] for o in (await bob.get("/api/v1/orgs")).json()] == ["bob"]
    foreign = await bob.get("/api/v1/orgs/alice")
    assert foreign.status_code == 404
    assert foreign.json() == {
        "error": {"code": "PARSEC_ORG_NOT_FOUND", "message": "no organisation 'alice'"}
    }
    missing = await bob.get("/api/v1/orgs/nobody-has-this")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "PARSEC_ORG_NOT_FOUND"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer psu_forged.value", "PARSEC_UNAUTHENTICATED"),
        ("Bearer psk_abc_def", "PARSEC_UNAUTHENTICATED"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "PARSEC_UNAUTHENTICATED"),
        ("Basic YWxpY2U6cHc=", "PARSEC_UNAUTHENTICATED"),
    ],
    ids=["user-token", "api-key", "jwt", "basic"],
)
async def test_a_bad_bearer_is_401_even_with_a_good_cookie(
    tenancy: Tenancy, authorization: str, code: str
) -> None:
    """A bearer, when sent, decides: a bad one is never rescued by the cookie."""
    alice = await tenancy.browser("alice")
    reply = await alice.get("/api/v1/orgs", headers={"Authorization": authorization})
    if authorization.startswith("Basic"):
        assert reply.status_code == 200  # not a bearer: the cookie decides
        return
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == code
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_openapi_document_lists_the_api(tenancy: Tenancy) -> None:
    document = (await tenancy.anonymous().get("/openapi.json")).json()
    orgs = document["paths"]["/api/v1/orgs/{slug}"]["get"]
    assert {"401", "404"} <= set(orgs["responses"])
    assert "422" not in orgs["responses"]
    schemes = document["components"]["securitySchemes"]
    assert {"ParsecBearer", "SessionCookie"} <= set(schemes)


async def test_a_user_access_token_is_its_user(tenancy: Tenancy) -> None:
    """A psu_ bearer acts as its user; one signed for another use (a session cookie's
    value with the prefix) is refused."""
    alice = await tenancy.browser("alice")
    accounts = tenancy.parsec.accounts
    assert accounts is not None
    user_id = accounts.cookies.verify(alice.cookies["parsec_session"]).user_id
    token = accounts.user_tokens.mint(user_id)
    assert token.startswith("psu_")
    reply = await tenancy.anonymous().get(
        "/api/v1/orgs", headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200
    assert [o["slug"] for o in reply.json()] == ["alice"]
    cookie_as_token = "psu_" + alice.cookies["parsec_session"]
    refused = await tenancy.anonymous().get(
        "/api/v1/orgs", headers={"Authorization": f"Bearer {cookie_as_token}"}
    )
    assert refused.status_code == 401
