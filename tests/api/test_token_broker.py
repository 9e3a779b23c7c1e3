"""The token broker's HTTP routes, in process: real Parsec, real tokens, real JWTs.

Bearers are Parsec management tokens (the default authenticator) and JWTs signed with a
key generated here, read by a :class:`JWTBearerAuthenticator` (an identity provider's
access token, ``realm_access.roles`` and all); the role authorizer grants ``member``
the ``chat:*`` channels and ``staff`` the ``staff:*`` ones.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from parsec import AuthOptions, Options, Parsec, TokenBrokerOptions, TokenBrokerSettings
from parsec.auth.scopes import Scope
from parsec.options import TokenBrokerRole
from parsec.services.token_authn import (
    AuthenticatorChain,
    JWTBearerAuthenticator,
    MgmtTokenAuthenticator,
)
from parsec.services.token_policy import AuditEntry, Unauthenticated

IDP_KEY = secrets.token_bytes(32)
ROLES = [
    TokenBrokerRole("member", ("chat:*",)),
    TokenBrokerRole("staff", ("staff:*", "chat:*")),
]


async def verify_idp(bearer: str) -> Mapping[str, object]:
    """The test identity provider's verification: HS256 with IDP_KEY, ``exp`` required."""
    try:
        claims: dict[str, object] = jwt.decode(
            bearer, IDP_KEY, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("identity token expired", expired=True) from None
    except jwt.PyJWTError as exc:
        raise ValueError(str(exc)) from None
    return claims


def idp_token(user: str, *roles: str, ttl: int = 300, **claims: Any) -> str:
    """A Keycloak-shaped access token of the test identity provider."""
    now = int(time.time())
    payload = {
        "sub": user,
        "typ": "Bearer",
        "azp": "chat",
        "realm_access": {"roles": list(roles)},
        "iat": now,
        "exp": now + ttl,
        **claims,
    }
    return jwt.encode(payload, IDP_KEY, algorithm="HS256")


class Recorder:
    """An AuditLogger keeping every entry."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def broker_options(tmp_path: Path, **fields: Any) -> Options:
    settings: dict[str, Any] = {
        "enabled": True,
        "roles": ROLES,
        "roles_claim": "realm_access.roles",
        "delegators": ["svc-notify"],
        **fields,
    }
    return Options(
        auth=AuthOptions(state_dir=tmp_path / "state"),
        token_broker=TokenBrokerOptions(**settings),
    )


@pytest.fixture
def audit() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture
async def parsec(tmp_path: Path, audit: Recorder) -> AsyncIterator[Parsec]:
    """Parsec with the broker enabled; bearers: IdP JWTs, then management tokens."""
    async with Parsec(broker_options(tmp_path)) as instance:
        chain = AuthenticatorChain(
            [
                JWTBearerAuthenticator(verify_idp),
                MgmtTokenAuthenticator(instance.authenticate_mgmt),
            ]
        )
        instance.token_broker.configure(
            TokenBrokerSettings(authenticator=chain, audit_logger=audit)
        )
        yield instance


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


async def issue(http: httpx.AsyncClient, token: str, body: object) -> httpx.Response:
    return await http.post("/parsec/token", json=body, headers=bearer(token))


# --- issuing ---------------------------------------------------------------------------


async def test_a_member_gets_the_chat_channels_and_a_reason_for_the_others(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """The contract: member asks for chat:a and secret:b, gets chat:a, and one denied
    entry with a reason; the token is a connection token of that user, subscribed to
    exactly the granted channels, whose jti is the token id."""
    reply = await issue(http, idp_token("alice", "member"), {"channels": ["chat:a", "secret:b"]})

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["channels_granted"] == ["chat:a"]
    assert [d["channel"] for d in body["channels_denied"]] == ["secret:b"]
    assert "member" in body["channels_denied"][0]["reason"]
    claims = parsec.verifier.verify_connection(body["token"])
    assert claims.user == "alice"
    assert [sub.channel for sub in claims.subscriptions] == ["chat:a"]
    assert claims_of(body["token"])["jti"] == body["token_id"]


async def test_expires_at_is_rfc3339_and_the_default_ttl_is_an_hour(
    http: httpx.AsyncClient,
) -> None:
    """No ttl: one hour; expires_at is the token's exp as RFC 3339 in UTC (Z)."""
    body = (await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})).json()

    exp = claims_of(body["token"])["exp"]
    assert body["expires_at"].endswith("Z")
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == exp
    assert abs(exp - time.time() - 3600) < 5
    assert "channels_denied" not in body


async def test_a_ttl_is_seconds_and_is_clamped_to_max_ttl(http: httpx.AsyncClient) -> None:
    """ttl 60 gives a one-minute token; ttl of a week is clamped to 24 hours."""
    token = idp_token("alice", "member")
    short = (await issue(http, token, {"channels": ["chat:a"], "ttl": 60})).json()
    long = (await issue(http, token, {"channels": ["chat:a"], "ttl": 7 * 86400})).json()

    assert abs(claims_of(short["token"])["exp"] - time.time() - 60) < 5
    assert abs(claims_of(long["token"])["exp"] - time.time() - 86400) < 5


async def test_roles_from_two_roles_add_up_and_no_roles_gets_nothing(
    http: httpx.AsyncClient,
) -> None:
    """staff gets staff:x; a bearer with no configured role gets nothing, with a reason
    naming the claim; the token is still issued (it connects, subscribed to nothing)."""
    staff = await issue(http, idp_token("bob", "staff"), {"channels": ["staff:x", "chat:a"]})
    nobody = await issue(http, idp_token("eve", "guest"), {"channels": ["chat:a"]})

    assert staff.json()["channels_granted"] == ["staff:x", "chat:a"]
    assert nobody.status_code == 200
    assert nobody.json()["channels_granted"] == []
    assert "realm_access.roles" in nobody.json()["channels_denied"][0]["reason"]


async def test_an_operator_management_token_is_also_accepted(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """The chain's second authenticator: a management token is recognised; it carries no
    roles, so the role authorizer grants it nothing."""
    reply = await issue(http, parsec.issue_mgmt("ops").token, {"channels": ["chat:a"]})

    assert reply.status_code == 200
    assert reply.json()["channels_granted"] == []
    assert parsec.verifier.verify_connection(reply.json()["token"]).user == "ops"


async def test_one_audit_entry_per_issued_token(http: httpx.AsyncClient, audit: Recorder) -> None:
    """Each issuance is audited once: token id, user, no delegator, granted channels,
    times, and the caller's address."""
    body = (await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})).json()

    (entry,) = audit.entries
    assert entry.token_id == body["token_id"]
    assert (entry.issued_to, entry.delegator) == ("alice", "")
    assert entry.channels == ("chat:a",)
    assert entry.expires_at == datetime.fromisoformat(body["expires_at"])
    assert entry.issued_at <= entry.expires_at
    assert entry.remote_addr == "127.0.0.1"


async def test_a_failing_audit_logger_does_not_stop_issuance(
    http: httpx.AsyncClient, parsec: Parsec, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the audit logger is logged; the token is returned all the same."""

    class Broken:
        def audit(self, entry: AuditEntry) -> None:
            raise RuntimeError("disk full")

    parsec.token_broker.configure(TokenBrokerSettings(audit_logger=Broken()))
    with caplog.at_level(logging.ERROR, logger="parsec.audit"):
        reply = await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})

    assert reply.status_code == 200
    assert "audit logger failed" in caplog.text


async def test_the_default_audit_logger_writes_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a logger of its own the broker logs one INFO line on parsec.audit per
    token, its fields also in the record's ``audit`` extra."""
    async with Parsec(broker_options(tmp_path, roles=[])) as parsec:
        with caplog.at_level(logging.INFO, logger="parsec.audit"):
            issued = await parsec.token_broker.issue(
                parsec.issue_mgmt("ops").token, ["chat:a"], remote_addr="10.0.0.1"
            )

    records = [r for r in caplog.records if r.name == "parsec.audit"]
    assert len(records) == 1
    fields = records[0].__dict__["audit"]
    assert fields["token_id"] == issued.token_id
    assert fields["issued_to"] == "ops"
    assert fields["remote_addr"] == "10.0.0.1"


async def test_without_roles_only_an_administrator_is_granted(tmp_path: Path) -> None:
    """No roles configured: an operator management token gets every channel, a token with
    narrower scopes gets none (deny by default)."""
    async with Parsec(broker_options(tmp_path, roles=[])) as parsec:
        broker = parsec.token_broker
        admin = await broker.issue(parsec.issue_mgmt("ops").token, ["chat:a", "x:y"])
        narrow = parsec.issue_mgmt("dev", scopes=[Scope("public:**", ("subscribe",))]).token
        other = await broker.issue(narrow, ["chat:a"])

    assert admin.granted == ("chat:a", "x:y")
    assert other.granted == ()
    assert other.denied[0].channel == "chat:a"


# --- delegation ------------------------------------------------------------------------


async def test_a_delegator_mints_for_a_user_and_both_are_audited(
    http: httpx.AsyncClient, parsec: Parsec, audit: Recorder
) -> None:
    """svc-notify (a configured delegator) gets a token for alice: the token is alice's,
    the channels are what the service's roles allow, and the audit entry names both."""
    reply = await http.post(
        "/parsec/token/delegate",
        json={"on_behalf_of": "alice", "channels": ["chat:a", "staff:x"], "lifetime_seconds": 120},
        headers=bearer(idp_token("svc-notify", "member")),
    )

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["channels_granted"] == ["chat:a"]
    assert parsec.verifier.verify_connection(body["token"]).user == "alice"
    assert abs(claims_of(body["token"])["exp"] - time.time() - 120) < 5
    (entry,) = audit.entries
    assert (entry.issued_to, entry.delegator) == ("alice", "svc-notify")
    assert entry.token_id == body["token_id"]


async def test_delegation_by_another_service_is_refused(
    http: httpx.AsyncClient, audit: Recorder
) -> None:
    """A bearer that is not a delegator gets 403 PARSEC_AUTH_DENIED and nothing is minted."""
    reply = await http.post(
        "/parsec/token/delegate",
        json={"on_behalf_of": "alice", "channels": ["chat:a"]},
        headers=bearer(idp_token("mallory", "member")),
    )

    assert reply.status_code == 403
    assert reply.json()["code"] == "PARSEC_AUTH_DENIED"
    assert audit.entries == []


# --- revoking ---------------------------------------------------------------------------


async def revoke(http: httpx.AsyncClient, token: str, body: object) -> httpx.Response:
    return await http.post("/parsec/revoke", json=body, headers=bearer(token))


async def test_a_user_revokes_their_own_token(http: httpx.AsyncClient, parsec: Parsec) -> None:
    """Self-service: alice revokes a token issued to her; it is then revoked."""
    alice = idp_token("alice", "member")
    body = (await issue(http, alice, {"channels": ["chat:a"]})).json()
    claims = claims_of(body["token"])

    reply = await revoke(http, alice, {"token_id": body["token_id"], "reason": "lost phone"})

    assert reply.status_code == 200
    assert reply.json() == {"ok": True}
    assert parsec.token_broker.is_revoked(body["token_id"], "alice", claims["iat"])


async def test_a_user_may_not_revoke_someone_elses_token_or_user(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """bob names alice's token id: answered ok (nobody learns whose an id is) and
    alice's token stays valid; bob revoking alice is refused."""
    body = (await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})).json()
    bob = idp_token("bob", "member")

    by_id = await revoke(http, bob, {"token_id": body["token_id"]})
    by_user = await revoke(http, bob, {"user_id": "alice"})

    assert (by_id.status_code, by_user.status_code) == (200, 403)
    assert by_user.json()["code"] == "PARSEC_AUTH_DENIED"
    iat = claims_of(body["token"])["iat"]
    assert not parsec.token_broker.is_revoked(body["token_id"], "alice", iat)


async def test_a_self_service_revoke_covers_only_the_revoker_s_token(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """A token id names one token; should two users' tokens share an id, a user's revoke
    covers theirs only."""
    alice = (await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})).json()
    token_id, iat = alice["token_id"], claims_of(alice["token"])["iat"]

    await revoke(http, idp_token("bob", "member"), {"token_id": token_id})

    assert parsec.token_broker.is_revoked(token_id, "bob", iat)
    assert not parsec.token_broker.is_revoked(token_id, "alice", iat)


async def test_a_delegator_revokes_the_token_it_delegated(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """The service that minted a token on alice's behalf may revoke it by id."""
    service = idp_token("svc-notify", "member")
    reply = await http.post(
        "/parsec/token/delegate",
        json={"on_behalf_of": "alice", "channels": ["chat:a"]},
        headers=bearer(service),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()

    assert (await revoke(http, service, {"token_id": body["token_id"]})).status_code == 200

    iat = claims_of(body["token"])["iat"]
    assert parsec.token_broker.is_revoked(body["token_id"], "alice", iat)


async def test_a_user_revokes_themselves(http: httpx.AsyncClient, parsec: Parsec) -> None:
    """Self-service by user: every token of alice issued so far is revoked."""
    alice = idp_token("alice", "member")
    body = (await issue(http, alice, {"channels": ["chat:a"]})).json()

    reply = await revoke(http, alice, {"user_id": "alice"})

    assert reply.status_code == 200
    iat = claims_of(body["token"])["iat"]
    assert parsec.token_broker.is_revoked("", "alice", iat)


async def test_an_operator_revokes_any_token_and_any_user(
    http: httpx.AsyncClient, parsec: Parsec
) -> None:
    """Admin revoke: an operator management token revokes alice's token and bob."""
    body = (await issue(http, idp_token("alice", "member"), {"channels": ["chat:a"]})).json()
    bob = (await issue(http, idp_token("bob", "member"), {"channels": ["chat:a"]})).json()
    operator = parsec.issue_mgmt("ops").token

    by_id = await revoke(http, operator, {"token_id": body["token_id"]})
    by_user = await revoke(http, operator, {"user_id": "bob"})

    assert (by_id.status_code, by_user.status_code) == (200, 200)
    broker = parsec.token_broker
    assert broker.is_revoked(body["token_id"], "alice", claims_of(body["token"])["iat"])
    assert broker.is_revoked(bob["token_id"], "bob", claims_of(bob["token"])["iat"])


@pytest.mark.parametrize("body", [{}, {"token_id": "a", "user_id": "b"}, {"token_id": 5}])
async def test_a_revoke_names_exactly_one_of_token_id_and_user_id(
    http: httpx.AsyncClient, parsec: Parsec, body: object
) -> None:
    reply = await revoke(http, parsec.issue_mgmt("ops").token, body)

    assert reply.status_code == 400
    assert reply.json()["code"] == "PARSEC_INVALID_ARGUMENT"


# --- 400 / 401 / 413 --------------------------------------------------------------------


ROUTES = ["/parsec/token", "/parsec/token/delegate", "/parsec/revoke"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "apikey secret", "Bearer nope"],
)
async def test_every_route_needs_a_valid_bearer(
    http: httpx.AsyncClient, route: str, authorization: str | None
) -> None:
    """No header, another scheme, an empty or unknown bearer: 401, a JSON error with a
    PARSEC_AUTH_* code and a WWW-Authenticate challenge; nothing about the body is read."""
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = await http.post(route, json={"channels": ["chat:a"]}, headers=headers)

    assert reply.status_code == 401
    assert reply.json()["code"] == "PARSEC_AUTH_MISSING"
    assert reply.json()["error"]
    assert reply.headers["www-authenticate"] == "Bearer"


async def test_an_expired_bearer_is_401_expired(http: httpx.AsyncClient) -> None:
    reply = await issue(http, idp_token("alice", "member", ttl=-60), {"channels": ["chat:a"]})

    assert reply.status_code == 401
    assert reply.json()["code"] == "PARSEC_AUTH_EXPIRED"


async def test_a_revoked_management_bearer_is_401(http: httpx.AsyncClient, parsec: Parsec) -> None:
    issued = parsec.issue_mgmt("ops")
    assert issued.claims.jti is not None
    await parsec.revoke_token(issued.claims.jti)

    reply = await issue(http, issued.token, {"channels": ["chat:a"]})

    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "channels"),
        ({"channels": "chat:a"}, "channels"),
        ({"channels": []}, "non-empty"),
        ({"channels": [1]}, "channels"),
        ({"channels": [""]}, "invalid channel"),
        ({"channels": ["chat:\u00e9"]}, "invalid channel"),
        ({"channels": [f"chat:{i}" for i in range(101)]}, "at most 100"),
        ({"channels": ["chat:a"], "ttl": 0}, "ttl"),
        ({"channels": ["chat:a"], "ttl": -5}, "ttl"),
        ({"channels": ["chat:a"], "ttl": "1h"}, "ttl"),
        ([], "object"),
    ],
)
async def test_a_bad_issue_body_is_400(
    http: httpx.AsyncClient, body: object, fragment: str
) -> None:
    reply = await issue(http, idp_token("alice", "member"), body)

    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "PARSEC_INVALID_ARGUMENT"
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_body_that_is_not_json_is_400(http: httpx.AsyncClient, route: str) -> None:
    reply = await http.post(
        route, content=b"{channels:", headers=bearer(idp_token("svc-notify", "member"))
    )

    assert reply.status_code == 400
    assert reply.json() == {
        "error": "the body is not valid JSON",
        "code": "PARSEC_INVALID_ARGUMENT",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"channels": ["chat:a"]},
        {"on_behalf_of": "", "channels": ["chat:a"]},
        {"on_behalf_of": "alice", "channels": []},
        {"on_behalf_of": "alice", "channels": ["chat:a"], "lifetime_seconds": 0},
    ],
)
async def test_a_bad_delegate_body_is_400(http: httpx.AsyncClient, body: object) -> None:
    reply = await http.post(
        "/parsec/token/delegate", json=body, headers=bearer(idp_token("svc-notify", "member"))
    )

    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "PARSEC_INVALID_ARGUMENT"


async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    """The routes read at most 64 KiB of body."""
    body = {"channels": ["chat:a"], "pad": "x" * 70_000}
    reply = await issue(http, idp_token("alice", "member"), body)

    assert reply.status_code == 413
    assert reply.json()["code"] == "PARSEC_PAYLOAD_TOO_LARGE"


# --- mounting ---------------------------------------------------------------------------


async def test_the_routes_follow_the_configured_prefix(tmp_path: Path) -> None:
    """prefix = "/auth/v1": the routes move there, and /parsec/token is gone; the JWKS
    document stays at /parsec/jwks.json either way."""
    async with Parsec(broker_options(tmp_path, prefix="/auth/v1", roles=[])) as parsec:
        transport = httpx.ASGITransport(app=parsec.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as http:
            token = parsec.issue_mgmt("ops").token
            moved = await http.post(
                "/auth/v1/token", json={"channels": ["a"]}, headers=bearer(token)
            )
            old = await http.post("/parsec/token", json={"channels": ["a"]}, headers=bearer(token))
            keys = await http.get("/parsec/jwks.json")

    assert moved.status_code == 200
    assert moved.json()["channels_granted"] == ["a"]
    assert old.status_code in (404, 405)
    assert keys.status_code in (200, 404)
    assert keys.headers["content-type"] == "application/json"


async def test_disabled_by_default(tmp_path: Path) -> None:
    """Without token_broker.enabled no route is served (the service still exists)."""
    async with Parsec(Options(auth=AuthOptions(state_dir=tmp_path))) as parsec:
        transport = httpx.ASGITransport(app=parsec.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as http:
            reply = await http.post("/parsec/token", json={"channels": ["a"]})

    assert reply.status_code in (404, 405)


async def test_the_routes_mount_in_another_application(tmp_path: Path) -> None:
    """An embedder mounts TokenBrokerApi(...).app() under any prefix of its own app."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from parsec.api.token_broker import TokenBrokerApi

    async with Parsec(broker_options(tmp_path, roles=[])) as parsec:
        app = Starlette(routes=[Mount("/identity", app=TokenBrokerApi(parsec.token_broker).app())])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as http:
            token = parsec.issue_mgmt("ops").token
            reply = await http.post(
                "/identity/token", json={"channels": ["chat:a"]}, headers=bearer(token)
            )

    assert reply.status_code == 200
    assert reply.json()["channels_granted"] == ["chat:a"]
