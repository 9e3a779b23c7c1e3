"""The OIDC bridge (``[auth.oidc]``): the management API accepts the tokens of a real
local OpenID provider (discovered, JWKS over HTTP), mapped to Parsec scopes by the
grants — deny wins, an unknown group gets nothing — next to Parsec's own management
tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from oidc_provider import OIDCProvider, SigningKey

from parsec import AuthOptions, Options, Parsec
from parsec.auth.oidc import DiscoveryError
from parsec.options import OIDCGrant, OIDCOptions

from .twirp import Api, assert_twirp_error

AUDIENCE = "parsec-cli"
EVERY_VERB = ("subscribe", "publish", "manage")
GRANTS = [
    OIDCGrant("parsec-admins", "public:**", EVERY_VERB),
    OIDCGrant("parsec-admins", "private:**", EVERY_VERB),
    OIDCGrant("news-editors", "public:news.**", ("manage", "publish")),
    OIDCGrant("interns", "public:news.**", ("manage",), deny=True),
]


def oidc_options(idp: OIDCProvider, tmp_path: Path, **overrides: Any) -> Options:
    settings: dict[str, Any] = {"issuer": idp.issuer, "audience": AUDIENCE, "grants": GRANTS}
    return Options(
        auth=AuthOptions(
            state_dir=tmp_path / "state", oidc=OIDCOptions(**{**settings, **overrides})
        )
    )


@pytest_asyncio.fixture
async def parsec(tmp_path: Path, idp: OIDCProvider) -> AsyncIterator[Parsec]:
    async with Parsec(oidc_options(idp, tmp_path)) as instance:
        yield instance


def id_token(idp: OIDCProvider, *groups: str, **claims: Any) -> str:
    """An ID token of ``idp`` for alice, with ``groups``, for the CLI's client."""
    return idp.access_token("alice", **{"aud": AUDIENCE, "groups": list(groups), **claims})


async def open_public(api: Api, name: str, token: str) -> httpx.Response:
    return await api.call("OpenPublic", {"name": name}, token=token)


async def test_an_admin_group_is_an_operator(api: Api, idp: OIDCProvider) -> None:
    """Grants of manage on public:** and private:** make an operator: channels of both
    visibilities, and operator-only methods."""
    token = id_token(idp, "parsec-admins")
    reply = await open_public(api, "public:app.lobby", token)
    assert reply.status_code == 200, reply.text
    room = {"name": "private:app.room.42", "subject": "bob"}
    created = await api.ok("CreatePrivate", room, token=token)
    assert created["access_token"]
    keys = await api.ok("ListKeys", token=token)
    assert keys["keys"]


@pytest.mark.parametrize(
    ("groups", "channel", "allowed"),
    [
        (("news-editors",), "public:news.sport", True),
        (("news-editors",), "public:weather.today", False),
        (("news-editors", "interns"), "public:news.sport", False),  # deny wins
        (("parsec-admins", "interns"), "public:news.sport", False),  # over every grant
        (("parsec-admins", "interns"), "public:weather.today", True),
    ],
)
async def test_grants_map_groups_to_scopes_and_deny_wins(
    api: Api, idp: OIDCProvider, groups: tuple[str, ...], channel: str, allowed: bool
) -> None:
    reply = await open_public(api, channel, id_token(idp, *groups))
    if allowed:
        assert reply.status_code == 200, reply.text
    else:
        assert_twirp_error(reply, 403, "permission_denied", "PARSEC_AUTH_DENIED")


async def test_an_editor_lists_only_what_it_may_manage(api: Api, idp: OIDCProvider) -> None:
    for name in ("public:news.a", "public:weather.today"):
        await api.ok("OpenPublic", {"name": name})  # as the operator
    listed = await api.ok("ListChannels", token=id_token(idp, "news-editors"))
    assert [channel["name"] for channel in listed["channels"]] == ["public:news.a"]


async def test_an_operator_only_method_needs_an_operator_grant(api: Api, idp: OIDCProvider) -> None:
    reply = await api.call("ListKeys", token=id_token(idp, "news-editors"))
    assert_twirp_error(reply, 403, "permission_denied", "PARSEC_AUTH_DENIED")


@pytest.mark.parametrize("groups", [("strangers",), ()])
async def test_an_unknown_group_gets_nothing(
    api: Api, idp: OIDCProvider, groups: tuple[str, ...]
) -> None:
    """A valid token of the provider whose groups have no grant (or that has none) is
    refused, saying so."""
    reply = await api.call("ListChannels", token=id_token(idp, *groups))
    assert_twirp_error(reply, 401, "unauthenticated", "PARSEC_AUTH_DENIED")
    assert "no [auth.oidc] grant" in reply.json()["msg"]


async def test_groups_from_a_dotted_claim(tmp_path: Path, idp: OIDCProvider) -> None:
    """``scopes_claim`` is a dotted path: Keycloak's realm roles work as groups, and
    ``subject_claim`` names the caller."""
    options = oidc_options(
        idp, tmp_path, scopes_claim="realm_access.roles", subject_claim="preferred_username"
    )
    async with Parsec(options) as parsec:
        transport = httpx.ASGITransport(app=parsec.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as http:
            token = idp.access_token("carol", aud=AUDIENCE, roles=("news-editors",))
            api = Api(http, token)
            await api.ok("OpenPublic", {"name": "public:news.x"})
            claims = await parsec.authenticate_mgmt(token)
            assert claims.sub == "carol"


def _now(offset: int) -> Callable[[], int]:
    """A claim value ``offset`` seconds from the moment the test runs (not from when
    the tests were collected: a long run must not let ``nbf`` come of age)."""
    return lambda: int(time.time()) + offset


@pytest.mark.parametrize(
    ("claims", "parsec_code"),
    [
        ({"exp": _now(-5)}, "PARSEC_AUTH_EXPIRED"),
        ({"aud": "account"}, "PARSEC_AUTH_DENIED"),
        ({"aud": None}, "PARSEC_AUTH_DENIED"),
        ({"exp": None}, "PARSEC_AUTH_DENIED"),
        ({"sub": None}, "PARSEC_AUTH_DENIED"),
        ({"nbf": _now(600)}, "PARSEC_AUTH_DENIED"),
        ({"iss": "http://127.0.0.1:9/realms/other"}, "PARSEC_AUTH_DENIED"),
    ],
    ids=["expired", "other-audience", "no-audience", "no-exp", "no-sub", "nbf-ahead", "iss"],
)
async def test_a_token_failing_a_check_is_401(
    api: Api, idp: OIDCProvider, claims: dict[str, Any], parsec_code: str
) -> None:
    now = {name: value() if callable(value) else value for name, value in claims.items()}
    reply = await api.call("ListChannels", token=id_token(idp, "parsec-admins", **now))
    assert_twirp_error(reply, 401, "unauthenticated", parsec_code)


def refetch_at_once(parsec: Parsec) -> None:
    """Let an unknown kid refetch the keys now: the node fetched them when it started,
    less than the 10 s between two refetches ago."""
    assert parsec.oidc is not None
    assert parsec.oidc.keys is not None
    parsec.oidc.keys.min_interval = 0.001


async def test_a_key_the_provider_does_not_publish_is_refused(
    api: Api, idp: OIDCProvider, parsec: Parsec
) -> None:
    """Signed by a key outside the JWKS (same kid shape, right claims): refused after
    one refetch of the keys."""
    refetch_at_once(parsec)
    before = idp.jwks_requests
    forged = id_token(idp, "parsec-admins", key=SigningKey.generate())
    reply = await api.call("ListChannels", token=forged)
    assert_twirp_error(reply, 401, "unauthenticated", "PARSEC_AUTH_DENIED")
    assert idp.jwks_requests == before + 1


async def test_a_rotated_key_is_accepted_after_a_refetch(
    api: Api, idp: OIDCProvider, parsec: Parsec
) -> None:
    """The provider rotates its key (the old one leaves the JWKS): a token signed by the
    new key is accepted without a restart."""
    refetch_at_once(parsec)
    idp.rotate()
    await api.ok("ListChannels", token=id_token(idp, "parsec-admins"))


async def test_a_key_not_fetchable_yet_is_503_then_accepted(
    api: Api, idp: OIDCProvider, parsec: Parsec
) -> None:
    """The provider rotates right after the node fetched its keys: inside the refetch
    interval a token of the new key is "not now" (503 unavailable, to retry), not
    "who are you?"; once the interval has passed it is accepted."""
    assert parsec.oidc is not None
    keys = parsec.oidc.keys
    assert keys is not None
    keys.min_interval = 60  # the node fetched its keys at start: the next is inside it
    idp.rotate()
    token = id_token(idp, "parsec-admins")
    reply = await api.call("ListChannels", token=token)
    assert_twirp_error(reply, 503, "unavailable", "PARSEC_AUTH_UNAVAILABLE")
    keys.min_interval = 0.001  # the interval has passed
    await asyncio.sleep(0.01)
    await api.ok("ListChannels", token=token)


async def test_parsec_management_tokens_still_work(api: Api) -> None:
    await api.ok("ListChannels")


async def test_revoking_the_user_refuses_its_provider_tokens(api: Api, idp: OIDCProvider) -> None:
    token = id_token(idp, "news-editors")
    await api.ok("ListChannels", token=token)
    await api.ok("RevokeUser", {"user_id": _sub(token)})
    reply = await api.call("ListChannels", token=token)
    assert_twirp_error(reply, 401, "unauthenticated", "PARSEC_AUTH_DENIED")


def _sub(token: str) -> str:
    subject: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return subject


async def test_the_manifest_names_the_provider(api: Api, idp: OIDCProvider) -> None:
    reply = await api.ok("Manifest", token=None)
    payload = json.loads(base64.b64decode(reply["payload"]))["payload"]
    assert payload["auth_oidc_enabled"] is True
    assert payload["auth_oidc_issuer"] == idp.issuer


@pytest.mark.parametrize(
    "issuer_of",
    [
        lambda idp: idp.issuer + "-missing",  # discovery 404
        lambda idp: idp.base_url + "/realms",  # no such realm: 404 too
        lambda idp: "http://127.0.0.1:9/realms/x",  # nobody listens
    ],
    ids=["unknown-realm", "not-an-issuer", "unreachable"],
)
async def test_a_provider_that_cannot_be_discovered_stops_the_start(
    tmp_path: Path, idp: OIDCProvider, issuer_of: Any
) -> None:
    parsec = Parsec(oidc_options(idp, tmp_path, issuer=issuer_of(idp)))
    with pytest.raises(DiscoveryError):
        await parsec.start()
    assert parsec.state.value == "closed"
