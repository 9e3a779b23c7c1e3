"""ParsecService over HTTP: every method's reply shape, authentication and scopes, the
PARSEC_* error mapping, malformed bodies, bad routes, and the documents served beside it
(/manifest, /parsec/jwks.json, /openapi.json)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import centrifuge
import httpx
import pytest

from parsec import AuthOptions, Options, Parsec
from parsec.api.management import PUBLIC_METHODS
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.scopes import Scope
from parsec.channels.store import Channel, ChannelState, MemoryChannelStore
from parsec.errors import CODES, ParsecError
from parsec.testing import serve_for_tests

from .twirp import DIGITS, PREFIX, RFC3339, Api, assert_twirp_error, b64json

METHODS = (
    "Manifest",
    "OpenPublic",
    "CreatePrivate",
    "ListChannels",
    "GetChannel",
    "DeleteChannel",
    "Presence",
    "Publish",
    "RefreshToken",
    "IssueMgmt",
    "ListKeys",
    "GenerateKey",
    "PromoteKey",
    "RetireKey",
    "ReloadKeys",
    "RevokeToken",
    "RevokeUser",
)
PROTECTED = tuple(m for m in METHODS if m not in PUBLIC_METHODS)
PUBLIC = "public:app.lobby"
PRIVATE = "private:app.room.r1"


def scoped_token(parsec: Parsec, *scopes: Scope, subject: str = "team") -> str:
    """A management token with exactly ``scopes``."""
    return parsec.issue_mgmt(subject, scopes=scopes).token


def team_token(parsec: Parsec) -> str:
    """A token that may manage and publish on ``public:app.**`` and nothing else."""
    return scoped_token(parsec, Scope("public:app.**", ("manage", "publish")))


async def private_credentials(api: Api, name: str = PRIVATE) -> dict[str, Any]:
    """CreatePrivate ``name`` for subject ``alice``."""
    return await api.ok("CreatePrivate", {"name": name, "subject": "alice"})


# -- Manifest and /manifest -------------------------------------------------------------------


def assert_manifest_envelope(document: dict[str, Any]) -> None:
    """``document`` is a ``parsec.manifest`` descriptor envelope."""
    assert set(document) == {"format_version", "kind", "generated_at", "payload"}
    assert document["format_version"] == "1.0"
    assert document["kind"] == "parsec.manifest"
    assert RFC3339.fullmatch(document["generated_at"])
    assert document["payload"]["service"] == "parsec"


async def test_manifest_needs_no_bearer_and_carries_the_envelope_as_base64(api: Api) -> None:
    """Manifest answers without a token; ``payload`` is standard base64 of the envelope."""
    reply = await api.ok("Manifest", token=None)

    assert set(reply) == {"payload"}
    assert_manifest_envelope(json.loads(base64.b64decode(reply["payload"], validate=True)))


async def test_get_manifest_serves_the_envelope_itself(http: httpx.AsyncClient) -> None:
    """``GET /manifest`` is the envelope JSON, no authentication."""
    response = await http.get("/manifest")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_manifest_envelope(response.json())


# -- channels ---------------------------------------------------------------------------------


def assert_summary(summary: dict[str, Any], name: str, state: str, ttl: int) -> None:
    """A ChannelSummary with every field, ``ttl_seconds`` a number and RFC 3339 times."""
    assert set(summary) == {"name", "state", "ttl_seconds", "created_at", "last_active"}
    assert summary["name"] == name
    assert summary["state"] == state
    assert summary["ttl_seconds"] == ttl
    assert RFC3339.fullmatch(summary["created_at"])
    assert RFC3339.fullmatch(summary["last_active"])


async def test_open_public_returns_the_channel_summary(api: Api) -> None:
    """OpenPublic with an int64-as-string TTL answers the open channel's summary."""
    reply = await api.ok("OpenPublic", {"name": PUBLIC, "ttl_seconds": "120"})

    assert set(reply) == {"channel"}
    assert_summary(reply["channel"], PUBLIC, "open", 120)


async def test_open_public_accepts_camel_case_and_defaults_the_ttl(api: Api) -> None:
    """``ttlSeconds`` is read like ``ttl_seconds``; no TTL means the 30 min default."""
    camel = await api.ok("OpenPublic", {"name": PUBLIC, "ttlSeconds": 60})
    default = await api.ok("OpenPublic", {"name": "public:app.other"})

    assert camel["channel"]["ttl_seconds"] == 60
    assert default["channel"]["ttl_seconds"] == 1800


async def test_open_public_is_idempotent(api: Api) -> None:
    """Opening an open channel again renews it instead of failing."""
    await api.ok("OpenPublic", {"name": PUBLIC, "ttl_seconds": 60})
    again = await api.ok("OpenPublic", {"name": PUBLIC, "ttl_seconds": 90})

    assert_summary(again["channel"], PUBLIC, "open", 90)


async def test_create_private_returns_one_shot_credentials(parsec: Parsec, api: Api) -> None:
    """CreatePrivate answers access and refresh tokens for the channel, expiries as strings."""
    before = int(time.time())
    reply = await private_credentials(api)

    assert set(reply) == {
        "name",
        "access_token",
        "refresh_token",
        "access_expires_unix",
        "refresh_expires_unix",
    }
    assert reply["name"] == PRIVATE
    assert DIGITS.fullmatch(reply["access_expires_unix"])
    assert DIGITS.fullmatch(reply["refresh_expires_unix"])
    access = parsec.tokens.verify(reply["access_token"], "access")
    assert access.sub == "alice"
    assert access.authorizes(PRIVATE, "subscribe")
    assert access.exp == int(reply["access_expires_unix"])
    assert before < int(reply["access_expires_unix"]) <= int(reply["refresh_expires_unix"])
    assert parsec.tokens.verify(reply["refresh_token"], "refresh").chs == (PRIVATE,)


async def test_create_private_puts_requested_scopes_in_the_access_token(
    parsec: Parsec, api: Api
) -> None:
    """Scopes given as ``{pattern, verbs, deny}`` reach the access token."""
    scopes = [
        {"pattern": "public:app.*", "verbs": ["subscribe"]},
        {"pattern": "public:app.secret", "verbs": ["subscribe"], "deny": True},
    ]
    reply = await api.ok("CreatePrivate", {"name": PRIVATE, "subject": "alice", "scopes": scopes})

    access = parsec.tokens.verify(reply["access_token"], "access")
    assert access.authorizes("public:app.lobby", "subscribe")
    assert not access.authorizes("public:app.secret", "subscribe")


async def test_only_an_operator_hands_out_allow_scopes(parsec: Parsec, api: Api) -> None:
    """A token that may manage one private channel cannot mint wider access through
    CreatePrivate's scopes (403); deny scopes, which only narrow, are allowed."""
    owner = scoped_token(parsec, Scope("private:app.**", ("manage",)))
    wide = [{"pattern": "private:**", "verbs": ["subscribe"]}]
    body = {"name": PRIVATE, "subject": "alice", "scopes": wide}
    response = await api.call("CreatePrivate", body, token=owner)
    assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")
    assert await parsec.list_channels() == []

    narrow = [{"pattern": PRIVATE, "verbs": ["publish"], "deny": True}]
    body = {"name": PRIVATE, "subject": "alice", "scopes": narrow}
    reply = await api.ok("CreatePrivate", body, token=owner)
    assert not parsec.tokens.verify(reply["access_token"], "access").authorizes(PRIVATE, "publish")


async def test_create_private_twice_is_already_exists(api: Api) -> None:
    """A second CreatePrivate of one name is 409 already_exists."""
    await private_credentials(api)

    response = await api.call("CreatePrivate", {"name": PRIVATE, "subject": "bob"})

    assert_twirp_error(response, 409, "already_exists", "PARSEC_CHANNEL_EXISTS")


async def test_create_private_refuses_a_ttl_over_one_hour(api: Api) -> None:
    """A private TTL above the 1 h maximum is 400 PARSEC_CHANNEL_TTL_EXCEEDS_MAX."""
    body = {"name": PRIVATE, "subject": "alice", "ttl_seconds": 7200}

    response = await api.call("CreatePrivate", body)

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_CHANNEL_TTL_EXCEEDS_MAX")


@pytest.mark.parametrize(
    "scope",
    [
        {"pattern": "private:app.**", "verbs": ["shout"]},
        {"pattern": "private:app.**", "verbs": []},
        {"pattern": "*:app.**", "verbs": ["subscribe"]},
        {"pattern": "private:app.**.x", "verbs": ["subscribe"]},
    ],
    ids=["unknown-verb", "no-verb", "wildcard-visibility", "inner-double-star"],
)
async def test_create_private_refuses_a_bad_scope_and_creates_nothing(
    api: Api, scope: dict[str, Any]
) -> None:
    """An unknown verb or malformed pattern is 400 and leaves no channel behind."""
    body = {"name": PRIVATE, "subject": "alice", "scopes": [scope]}

    response = await api.call("CreatePrivate", body)

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")
    missing = await api.call("GetChannel", {"name": PRIVATE})
    assert_twirp_error(missing, 404, "not_found", "PARSEC_CHANNEL_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("OpenPublic", {"name": "public:App.lobby"}),
        ("OpenPublic", {"name": PRIVATE}),
        ("CreatePrivate", {"name": "private:app.room", "subject": "alice"}),
        ("CreatePrivate", {"name": PUBLIC, "subject": "alice"}),
        ("GetChannel", {"name": "lobby"}),
        ("DeleteChannel", {"name": ""}),
        ("Presence", {"name": "public:a"}),
        ("Publish", {"name": "public:a:b.c", "data": b64json(1)}),
    ],
)
async def test_an_invalid_channel_name_is_channel_invalid(
    api: Api, method: str, body: dict[str, Any]
) -> None:
    """A name that breaks the grammar, or of the wrong visibility, is 400 CHANNEL_INVALID."""
    response = await api.call(method, body)

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_CHANNEL_INVALID")


async def test_list_get_and_delete_channels(api: Api) -> None:
    """ListChannels lists open channels; DeleteChannel answers {} and GetChannel then 404s."""
    await api.ok("OpenPublic", {"name": PUBLIC})
    await private_credentials(api)

    listed = await api.ok("ListChannels")
    got = await api.ok("GetChannel", {"name": PRIVATE})
    deleted = await api.ok("DeleteChannel", {"name": PRIVATE})
    after = await api.call("GetChannel", {"name": PRIVATE})

    assert sorted(c["name"] for c in listed["channels"]) == [PRIVATE, PUBLIC]
    assert_summary(got["channel"], PRIVATE, "open", 900)
    assert deleted == {}
    assert_twirp_error(after, 404, "not_found", "PARSEC_CHANNEL_NOT_FOUND")


async def test_list_channels_is_empty_list_when_there_are_none(api: Api) -> None:
    """ListChannels on a fresh server emits ``channels`` as an empty list."""
    assert await api.ok("ListChannels") == {"channels": []}


async def test_deleting_a_missing_channel_is_not_found(api: Api) -> None:
    """DeleteChannel of an unknown name is 404 not_found."""
    response = await api.call("DeleteChannel", {"name": PUBLIC})

    assert_twirp_error(response, 404, "not_found", "PARSEC_CHANNEL_NOT_FOUND")


async def test_deleted_private_name_can_be_created_again(api: Api) -> None:
    """After DeleteChannel the private name is free for CreatePrivate."""
    await private_credentials(api)
    await api.ok("DeleteChannel", {"name": PRIVATE})

    again = await private_credentials(api)

    assert again["name"] == PRIVATE


async def test_presence_counts_subscribers_as_a_number(api: Api) -> None:
    """Presence of a channel nobody is subscribed to is the number 0."""
    await api.ok("OpenPublic", {"name": PUBLIC})

    assert await api.ok("Presence", {"name": PUBLIC}) == {"subscribers": 0}


# -- publish ----------------------------------------------------------------------------------


async def test_publish_answers_offset_as_a_string_and_the_epoch(api: Api) -> None:
    """Publish of base64 JSON answers ``offset`` (uint64 as a string) and ``epoch``."""
    await api.ok("OpenPublic", {"name": PUBLIC})

    first = await api.ok("Publish", {"name": PUBLIC, "data": b64json({"text": "hi"})})
    second = await api.ok("Publish", {"name": PUBLIC, "data": b64json([1, 2])})

    assert set(first) == {"offset", "epoch"}
    assert DIGITS.fullmatch(first["offset"])
    assert int(second["offset"]) == int(first["offset"]) + 1
    assert isinstance(first["epoch"], str)
    assert first["epoch"] == second["epoch"]


async def test_publish_accepts_url_safe_unpadded_base64(api: Api) -> None:
    """``data`` may use the URL-safe alphabet without padding, as protobuf JSON allows."""
    await api.ok("OpenPublic", {"name": PUBLIC})
    data = base64.urlsafe_b64encode(b'{"a":"~~~?"}').rstrip(b"=").decode()

    reply = await api.ok("Publish", {"name": PUBLIC, "data": data})

    assert DIGITS.fullmatch(reply["offset"])


@pytest.mark.parametrize(
    "data",
    ["%%%not-base64", base64.b64encode(b"not json").decode(), ""],
    ids=["not-base64", "not-json", "empty"],
)
async def test_publish_refuses_data_that_is_not_base64_json(api: Api, data: str) -> None:
    """``data`` that is not base64, or decodes to something that is not JSON, is 400."""
    await api.ok("OpenPublic", {"name": PUBLIC})

    response = await api.call("Publish", {"name": PUBLIC, "data": data})

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


async def test_publish_to_a_missing_channel_is_not_found(api: Api) -> None:
    """Publishing to a channel that was never opened is 404 not_found."""
    response = await api.call("Publish", {"name": PUBLIC, "data": b64json(1)})

    assert_twirp_error(response, 404, "not_found", "PARSEC_CHANNEL_NOT_FOUND")


async def test_a_closed_public_channel_refuses_publish_until_reopened(tmp_path: Path) -> None:
    """A closed channel shows ``closed``, refuses Publish with 412 and reopens on OpenPublic."""
    store = MemoryChannelStore()
    now = time.time()
    await store.create_if_absent(
        Channel(PUBLIC, "public", ChannelState.CLOSED, 60.0, now - 600, now - 300)
    )
    options = Options(auth=AuthOptions(state_dir=tmp_path / "state"))
    async with Parsec(options, channel_store=store) as parsec:
        transport = httpx.ASGITransport(app=parsec.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as http:
            api = Api(http, parsec.issue_mgmt("operator").token)

            got = await api.ok("GetChannel", {"name": PUBLIC})
            refused = await api.call("Publish", {"name": PUBLIC, "data": b64json(1)})
            reopened = await api.ok("OpenPublic", {"name": PUBLIC})
            accepted = await api.call("Publish", {"name": PUBLIC, "data": b64json(2)})

    assert_summary(got["channel"], PUBLIC, "closed", 60)
    assert_twirp_error(refused, 412, "failed_precondition", "PARSEC_CHANNEL_CLOSED")
    assert_summary(reopened["channel"], PUBLIC, "open", 1800)
    assert accepted.status_code == 200


# -- RefreshToken -----------------------------------------------------------------------------


async def test_refresh_token_rotates_without_a_bearer(parsec: Parsec, api: Api) -> None:
    """RefreshToken needs no bearer and answers a new access and refresh token."""
    creds = await private_credentials(api)

    reply = await api.ok("RefreshToken", {"refresh_token": creds["refresh_token"]}, token=None)

    assert set(reply) == {
        "access_token",
        "access_expires_unix",
        "refresh_token",
        "refresh_expires_unix",
        "rotated",
    }
    assert reply["rotated"] is True
    assert DIGITS.fullmatch(reply["access_expires_unix"])
    assert DIGITS.fullmatch(reply["refresh_expires_unix"])
    assert reply["refresh_token"] != creds["refresh_token"]
    assert parsec.tokens.verify(reply["access_token"], "access").authorizes(PRIVATE, "subscribe")


async def test_refresh_token_accepts_camel_case(api: Api) -> None:
    """``refreshToken`` is read like ``refresh_token``."""
    creds = await private_credentials(api)

    reply = await api.ok("RefreshToken", {"refreshToken": creds["refresh_token"]}, token=None)

    assert reply["rotated"] is True


async def test_reusing_a_refresh_token_revokes_its_family(api: Api) -> None:
    """A refresh token redeemed twice is refused, and so is the one it was rotated into."""
    creds = await private_credentials(api)
    rotated = await api.ok("RefreshToken", {"refresh_token": creds["refresh_token"]}, token=None)

    reuse = await api.call("RefreshToken", {"refresh_token": creds["refresh_token"]}, token=None)
    family = await api.call("RefreshToken", {"refresh_token": rotated["refresh_token"]}, token=None)

    assert_twirp_error(reuse, 403, "permission_denied", "PARSEC_AUTH_DENIED")
    assert_twirp_error(family, 403, "permission_denied", "PARSEC_AUTH_DENIED")


async def test_refresh_token_refuses_other_tokens(api: Api, operator_token: str) -> None:
    """A mgmt or access token, or garbage, is not a refresh token: 403 AUTH_DENIED."""
    creds = await private_credentials(api)

    for token in (operator_token, creds["access_token"], "garbage"):
        response = await api.call("RefreshToken", {"refresh_token": token}, token=None)
        assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")


async def test_refresh_token_that_expired_is_unauthenticated(parsec: Parsec, api: Api) -> None:
    """An expired refresh token is 401 PARSEC_AUTH_EXPIRED."""
    await private_credentials(api)
    past = ParsecTokens(parsec.keyring, clock=lambda: time.time() - 7200)
    expired = past.issue_refresh("alice", PRIVATE, ttl=600).token

    response = await api.call("RefreshToken", {"refresh_token": expired}, token=None)

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_EXPIRED")


# -- IssueMgmt --------------------------------------------------------------------------------


async def test_issue_mgmt_mints_a_scoped_token(parsec: Parsec, api: Api) -> None:
    """IssueMgmt answers the token, its expiry as a string and the key that signed it."""
    before = int(time.time())
    body = {
        "subject": "ci",
        "ttl_seconds": "7200",
        "scopes": [{"pattern": "public:app.**", "verbs": ["manage"]}],
    }

    reply = await api.ok("IssueMgmt", body)

    assert set(reply) == {"mgmt_token", "expires_unix", "signed_by_key_id"}
    assert before + 7200 <= int(reply["expires_unix"]) <= int(time.time()) + 7200
    assert reply["signed_by_key_id"] == parsec.keyring.active.id
    claims = parsec.tokens.verify(reply["mgmt_token"], "mgmt")
    assert claims.sub == "ci"
    assert claims.scopes == (Scope("public:app.**", ("manage",)),)


async def test_issue_mgmt_defaults_to_a_day_long_operator_token(parsec: Parsec, api: Api) -> None:
    """An empty IssueMgmt gives subject ``operator``, 24 h and the operator scopes."""
    reply = await api.ok("IssueMgmt")

    claims = parsec.tokens.verify(reply["mgmt_token"], "mgmt")
    assert claims.sub == "operator"
    assert claims.exp - claims.iat == 86400
    minted = Api(api.http, reply["mgmt_token"])
    assert (await minted.ok("ListKeys"))["active_key_id"] == parsec.keyring.active.id


async def test_issue_mgmt_refuses_a_bad_scope(api: Api) -> None:
    """A scope with an unknown verb is 400 INVALID_ARGUMENT."""
    body = {"scopes": [{"pattern": "public:**", "verbs": ["own"]}]}

    response = await api.call("IssueMgmt", body)

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


# -- keys -------------------------------------------------------------------------------------


def assert_key_summary(summary: dict[str, Any], role: str, alg: str) -> None:
    """A KeySummary with every field; ``retired_at`` is "" unless retired."""
    assert set(summary) == {"id", "role", "created_at", "retired_at", "alg"}
    assert summary["role"] == role
    assert summary["alg"] == alg
    assert RFC3339.fullmatch(summary["created_at"])
    if role == "retired":
        assert RFC3339.fullmatch(summary["retired_at"])
    else:
        assert summary["retired_at"] == ""


async def test_list_keys_shows_the_active_key(parsec: Parsec, api: Api) -> None:
    """ListKeys answers the active key id and a summary of every key."""
    reply = await api.ok("ListKeys")

    assert set(reply) == {"active_key_id", "keys"}
    assert reply["active_key_id"] == parsec.keyring.active.id
    (key,) = reply["keys"]
    assert key["id"] == reply["active_key_id"]
    assert_key_summary(key, "active", "HS256")


@pytest.mark.parametrize(
    ("alg", "expected"),
    [(None, "HS256"), ("ES256", "ES256"), ("rs256", "RS256"), ("eddsa", "EdDSA")],
)
async def test_generate_key_adds_a_verify_only_key(
    api: Api, alg: str | None, expected: str
) -> None:
    """GenerateKey adds a verify-only key; ``alg`` is case-insensitive and HS256 by default."""
    body = {} if alg is None else {"alg": alg}

    summary = await api.ok("GenerateKey", body)

    assert_key_summary(summary, "verify-only", expected)
    listed = await api.ok("ListKeys")
    assert summary["id"] in {key["id"] for key in listed["keys"]}


async def test_generate_key_refuses_an_unknown_algorithm(api: Api) -> None:
    """GenerateKey with an alg the keyring does not know is 400 INVALID_ARGUMENT."""
    response = await api.call("GenerateKey", {"alg": "none"})

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


async def test_rotation_keeps_old_tokens_until_their_key_retires(parsec: Parsec, api: Api) -> None:
    """A promoted-over key's tokens still work while verify-only and get 401 once retired."""
    old = parsec.keyring.active.id
    new = (await api.ok("GenerateKey"))["id"]

    assert await api.ok("PromoteKey", {"id": new}) == {}
    roles = {k["id"]: k["role"] for k in (await api.ok("ListKeys"))["keys"]}
    still = await api.call("ListChannels")
    assert await api.ok("RetireKey", {"id": old}) == {}
    refused = await api.call("ListChannels")

    assert roles == {old: "verify-only", new: "active"}
    assert still.status_code == 200
    assert_twirp_error(refused, 401, "unauthenticated", "PARSEC_AUTH_DENIED")
    retired = next(k for k in (await parsec_keys(parsec)) if k["id"] == old)
    assert_key_summary(retired, "retired", "HS256")


async def parsec_keys(parsec: Parsec) -> list[dict[str, Any]]:
    """ListKeys through a fresh operator token signed by the current active key."""
    transport = httpx.ASGITransport(app=parsec.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as http:
        reply = await Api(http, parsec.issue_mgmt("operator").token).ok("ListKeys")
    keys: list[dict[str, Any]] = reply["keys"]
    return keys


async def test_retiring_the_active_key_is_failed_precondition(parsec: Parsec, api: Api) -> None:
    """RetireKey of the active key is 412 PARSEC_KEY_ACTIVE."""
    response = await api.call("RetireKey", {"id": parsec.keyring.active.id})

    assert_twirp_error(response, 412, "failed_precondition", "PARSEC_KEY_ACTIVE")


@pytest.mark.parametrize("method", ["PromoteKey", "RetireKey"])
async def test_an_unknown_key_id_is_not_found(api: Api, method: str) -> None:
    """PromoteKey / RetireKey of a kid the ring does not have is 404 PARSEC_KEY_NOT_FOUND."""
    response = await api.call(method, {"id": "k-000000000000"})

    assert_twirp_error(response, 404, "not_found", "PARSEC_KEY_NOT_FOUND")


async def test_reload_keys_answers_empty(api: Api) -> None:
    """ReloadKeys re-reads the keyring file and answers {}."""
    assert await api.ok("ReloadKeys") == {}


# -- revocation -------------------------------------------------------------------------------


async def test_revoked_token_is_unauthenticated(parsec: Parsec, api: Api) -> None:
    """After RevokeToken of a mgmt token's jti, that token gets 401."""
    issued = parsec.issue_mgmt("victim")
    victim = Api(api.http, issued.token)
    assert issued.claims.jti is not None
    await victim.ok("ListChannels")

    body = {"token_id": issued.claims.jti, "user_id": "victim", "reason": "leaked"}
    assert await api.ok("RevokeToken", body) == {}

    assert_twirp_error(
        await victim.call("ListChannels"), 401, "unauthenticated", "PARSEC_AUTH_DENIED"
    )
    assert (await api.call("ListChannels")).status_code == 200


async def test_revoke_user_refuses_every_token_they_hold(parsec: Parsec, api: Api) -> None:
    """After RevokeUser, tokens issued to that user before it get 401."""
    victim = Api(api.http, parsec.issue_mgmt("mallory").token)

    assert await api.ok("RevokeUser", {"userId": "mallory", "reason": "left"}) == {}

    assert_twirp_error(
        await victim.call("ListChannels"), 401, "unauthenticated", "PARSEC_AUTH_DENIED"
    )


@pytest.mark.parametrize(
    ("method", "body"),
    [("RevokeToken", {"token_id": ""}), ("RevokeUser", {}), ("PromoteKey", {"id": ""})],
)
async def test_required_identifiers_must_be_present(
    api: Api, method: str, body: dict[str, Any]
) -> None:
    """A missing or empty id is 400 INVALID_ARGUMENT."""
    response = await api.call(method, body)

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", PROTECTED)
async def test_every_protected_method_needs_a_bearer(api: Api, method: str) -> None:
    """Every method but Manifest and RefreshToken is 401 AUTH_MISSING without a bearer."""
    response = await api.call(method, {"name": PUBLIC}, token=None)

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_MISSING")
    assert response.headers["www-authenticate"] == 'Bearer realm="parsec"'


@pytest.mark.parametrize(
    "authorization", ["Basic b3BlcmF0b3I6eA==", "Bearer", "Bearer   ", "token abc"]
)
async def test_a_malformed_authorization_header_is_auth_missing(
    api: Api, authorization: str
) -> None:
    """An Authorization header that is not ``Bearer <token>`` is 401 AUTH_MISSING."""
    response = await api.call("ListChannels", token=None, headers={"Authorization": authorization})

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_MISSING")


async def test_a_garbage_bearer_is_unauthenticated(api: Api) -> None:
    """A bearer that is not a token is 401 AUTH_DENIED."""
    response = await api.call("ListChannels", token="not.a.token")

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_DENIED")


async def test_an_expired_mgmt_token_is_unauthenticated(parsec: Parsec, api: Api) -> None:
    """A mgmt token past its exp is 401 AUTH_EXPIRED."""
    past = ParsecTokens(parsec.keyring, clock=lambda: time.time() - 8 * 86400)
    expired = past.issue_mgmt("operator").token

    response = await api.call("ListChannels", token=expired)

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_EXPIRED")


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
async def test_a_channel_token_is_not_a_mgmt_token(api: Api, kind: str) -> None:
    """Access and refresh tokens are refused as bearers: 401 AUTH_DENIED."""
    creds = await private_credentials(api)

    response = await api.call("GetChannel", {"name": PRIVATE}, token=creds[kind])

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_DENIED")


async def test_the_bearer_is_checked_before_the_body(api: Api) -> None:
    """A malformed body without a bearer is 401, not 400: nothing is read before auth."""
    response = await api.call("OpenPublic", token=None, content=b"{not json")

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_MISSING")


# -- authorisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("OpenPublic", {"name": "public:other.lobby"}),
        ("CreatePrivate", {"name": PRIVATE, "subject": "alice"}),
        ("GetChannel", {"name": "public:other.lobby"}),
        ("DeleteChannel", {"name": "public:other.lobby"}),
        ("Presence", {"name": "public:other.lobby"}),
        ("Publish", {"name": "public:other.lobby", "data": b64json(1)}),
        ("IssueMgmt", {}),
        ("ListKeys", {}),
        ("GenerateKey", {}),
        ("PromoteKey", {"id": "k-000000000000"}),
        ("RetireKey", {"id": "k-000000000000"}),
        ("ReloadKeys", {}),
        ("RevokeToken", {"token_id": "x"}),
        ("RevokeUser", {"user_id": "x"}),
    ],
)
async def test_a_token_without_the_scope_is_permission_denied(
    parsec: Parsec, api: Api, method: str, body: dict[str, Any]
) -> None:
    """A team token is 403 outside ``public:app.**`` and on every operator-only method."""
    response = await api.call(method, body, token=team_token(parsec))

    assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")


async def test_a_scoped_token_works_inside_its_scope(parsec: Parsec, api: Api) -> None:
    """A team token opens, reads, publishes to and deletes channels under its pattern."""
    team = Api(api.http, team_token(parsec))

    await team.ok("OpenPublic", {"name": PUBLIC})
    await team.ok("GetChannel", {"name": PUBLIC})
    await team.ok("Presence", {"name": PUBLIC})
    await team.ok("Publish", {"name": PUBLIC, "data": b64json("hi")})
    await team.ok("DeleteChannel", {"name": PUBLIC})


async def test_list_channels_shows_only_channels_the_token_may_manage(
    parsec: Parsec, api: Api
) -> None:
    """ListChannels with a scoped token leaves out channels it may not manage."""
    await api.ok("OpenPublic", {"name": PUBLIC})
    await api.ok("OpenPublic", {"name": "public:other.lobby"})
    await private_credentials(api)

    listed = await api.ok("ListChannels", token=team_token(parsec))

    assert [c["name"] for c in listed["channels"]] == [PUBLIC]


async def test_publish_needs_the_publish_verb(parsec: Parsec, api: Api) -> None:
    """A token that may manage but not publish on a channel gets 403 on Publish."""
    await api.ok("OpenPublic", {"name": PUBLIC})
    manager = scoped_token(parsec, Scope("public:app.**", ("manage",)))

    response = await api.call("Publish", {"name": PUBLIC, "data": b64json(1)}, token=manager)

    assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")


async def test_deny_wins_over_allow(parsec: Parsec, api: Api) -> None:
    """A deny scope for manage beats an allow scope covering the same channel."""
    token = scoped_token(
        parsec,
        Scope("public:**", ("manage",)),
        Scope("public:app.lobby", ("manage",), deny=True),
    )

    denied = await api.call("OpenPublic", {"name": PUBLIC}, token=token)
    allowed = await api.call("OpenPublic", {"name": "public:app.other"}, token=token)

    assert_twirp_error(denied, 403, "permission_denied", "PARSEC_AUTH_DENIED")
    assert allowed.status_code == 200


# -- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CODES))
async def test_every_parsec_code_maps_to_its_status_and_twirp_code(
    parsec: Parsec, api: Api, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    """A ParsecError from the facade is answered with the status and Twirp code of CODES."""

    async def failing(name: str) -> None:
        raise ParsecError(code, "it failed")

    monkeypatch.setattr(parsec, "get_channel", failing)

    response = await api.call("GetChannel", {"name": PUBLIC})

    twirp_code, status = CODES[code]
    assert_twirp_error(response, status, twirp_code, code)
    assert response.json()["msg"] == "it failed"


async def test_an_unexpected_exception_is_internal_without_details(
    parsec: Parsec, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug is 500 PARSEC_INTERNAL with no detail in the body, and logged with its detail."""

    async def broken(name: str) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(parsec, "get_channel", broken)

    response = await api.call("GetChannel", {"name": PUBLIC})

    assert_twirp_error(response, 500, "internal", "PARSEC_INTERNAL")
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert "secret detail" in caplog.text


async def test_a_failing_authenticator_is_internal_not_a_crash(
    parsec: Parsec, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while checking the bearer is answered 500 internal, like any other bug."""

    async def broken(bearer: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parsec, "authenticate_mgmt", broken)

    response = await api.call("ListChannels")

    assert_twirp_error(response, 500, "internal", "PARSEC_INTERNAL")


@pytest.mark.parametrize(
    ("method", "content"),
    [
        ("OpenPublic", b"[]"),
        ("OpenPublic", b'"public:app.lobby"'),
        ("OpenPublic", b"null"),
        ("OpenPublic", b"{}"),
        ("OpenPublic", b""),
        ("OpenPublic", b'{"name": 5}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": "ten"}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": true}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": 1.5}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": -1}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": "99999999999999999999"}'),
        ("OpenPublic", b'{"name": "public:app.lobby", "ttl_seconds": 2147483648}'),
        ("CreatePrivate", b'{"name": "private:app.room.r1"}'),
        ("CreatePrivate", b'{"name": "private:app.room.r1", "subject": "a", "scopes": {}}'),
        ("CreatePrivate", b'{"name": "private:app.room.r1", "subject": "a", "scopes": [1]}'),
        (
            "CreatePrivate",
            b'{"name": "private:app.room.r1", "subject": "a",'
            b' "scopes": [{"pattern": "private:**", "verbs": "subscribe"}]}',
        ),
        (
            "CreatePrivate",
            b'{"name": "private:app.room.r1", "subject": "a",'
            b' "scopes": [{"pattern": "private:**", "verbs": ["subscribe"], "deny": "yes"}]}',
        ),
        ("Publish", b'{"name": "public:app.lobby"}'),
        ("Publish", b'{"name": "public:app.lobby", "data": 5}'),
        ("IssueMgmt", b"[]"),
        ("IssueMgmt", b'{"ttl_seconds": {}}'),
        ("ListChannels", b"[1]"),
    ],
)
async def test_a_malformed_body_is_invalid_argument(api: Api, method: str, content: bytes) -> None:
    """JSON that is not an object, has wrong types or misses a field: 400
    invalid_argument, never a 500 (bodies that are not JSON at all are malformed:
    test_twirp_bodies.py)."""
    response = await api.call(method, content=content, headers={"Content-Type": "application/json"})

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


@pytest.mark.parametrize("ttl", ["60.0", "6e1", "6.0E1"])
async def test_an_integral_number_written_with_a_fraction_is_an_integer(api: Api, ttl: str) -> None:
    """``ttl_seconds: 60.0`` is 60: JSON Schema (which /openapi.json speaks) and
    protobuf's JSON mapping count it as an integer (Schemathesis sent such values, and
    got 400)."""
    content = b'{"name": "public:app.lobby", "ttl_seconds": %s}' % ttl.encode()
    response = await api.call(
        "OpenPublic", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["channel"]["ttl_seconds"] == 60


async def test_an_empty_body_is_the_empty_message(api: Api) -> None:
    """Methods whose fields are all optional accept a request with no body at all."""
    response = await api.call("ListChannels", content=b"")

    assert response.status_code == 200
    assert response.json() == {"channels": []}


async def test_a_body_without_content_type_is_read_as_json(api: Api) -> None:
    """A client that sends no Content-Type still gets its JSON body read."""
    body = json.dumps({"name": PUBLIC}).encode()

    response = await api.call("OpenPublic", content=body)

    assert response.status_code == 200, response.text


async def test_unknown_fields_are_ignored(api: Api) -> None:
    """Fields a method does not have are ignored, as protobuf JSON does."""
    reply = await api.ok("OpenPublic", {"name": PUBLIC, "delta": True, "future": {"x": 1}})

    assert reply["channel"]["name"] == PUBLIC


# -- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [PREFIX + "NoSuchMethod", PREFIX + "openPublic", "/twirp/other.Service/OpenPublic"],
)
async def test_an_unknown_method_is_bad_route(api: Api, http: httpx.AsyncClient, path: str) -> None:
    """A POST to a method or service that does not exist is 404 bad_route."""
    response = await http.post(path, json={}, headers={"Authorization": f"Bearer {api.token}"})

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "bad_route"
    assert body["meta"]["twirp_invalid_route"] == f"POST {path}"


async def test_a_method_called_with_get_is_bad_route(http: httpx.AsyncClient) -> None:
    """Twirp methods are POST only: a GET is 404 bad_route."""
    response = await http.get(PREFIX + "Manifest")

    assert response.status_code == 404
    assert response.json()["code"] == "bad_route"


@pytest.mark.parametrize("verb", ["TRACE", "QUERY", "CONNECT", "PROPFIND", "BREW"])
@pytest.mark.parametrize("path", [PREFIX + "Manifest", PREFIX + "NoSuchMethod"])
async def test_any_other_http_method_is_bad_route(
    http: httpx.AsyncClient, verb: str, path: str
) -> None:
    """Every HTTP method but POST is 404 bad_route, not only the common ones (Schemathesis
    sent TRACE and QUERY, and got Starlette's plain-text 405)."""
    response = await http.request(verb, path)

    assert response.status_code == 404
    assert response.json()["code"] == "bad_route"
    assert response.json()["meta"]["twirp_invalid_route"] == f"{verb} {path}"


async def test_existing_routes_still_answer(http: httpx.AsyncClient) -> None:
    """``/healthz`` and the server API live beside the management routes."""
    health = await http.get("/healthz")
    api = await http.post("/api/info", json={})

    assert (health.status_code, health.text) == (200, "ok")
    assert api.status_code == 401  # the test server's API key was not sent


# -- /openapi.json ----------------------------------------------------------------------------


async def test_openapi_describes_every_management_route(http: httpx.AsyncClient) -> None:
    """``/openapi.json`` has every method (bearer where needed, each error status it can
    answer as a Twirp error, never FastAPI's 422) and documents."""
    response = await http.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/TwirpError"}}}
    for method in METHODS:
        operation = paths[PREFIX + method]["post"]
        assert operation["operationId"] == method
        secured = "security" in operation
        assert secured == (method in PROTECTED), method
        responses = operation["responses"]
        assert {"200", "400", "413", "500", "503"} <= set(responses), method
        assert "422" not in responses, method
        assert "default" not in responses, method
        for status, reply in responses.items():
            if status != "200":
                assert reply["content"] == error, (method, status)
        if method in PROTECTED:
            assert {"401", "403"} <= set(responses), method
            assert "WWW-Authenticate" in responses["401"]["headers"], method
    assert {"404", "412"} <= set(paths[PREFIX + "Publish"]["post"]["responses"])
    assert "409" in paths[PREFIX + "CreatePrivate"]["post"]["responses"]
    assert "403" not in paths[PREFIX + "Manifest"]["post"]["responses"]
    assert "404" in paths[PREFIX + "DlqReplay"]["post"]["responses"]
    assert paths["/parsec/jwks.json"]["get"]["responses"]["404"]["content"] == error
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "get" in paths["/manifest"]
    assert "get" in paths["/parsec/jwks.json"]
    assert "ManagementToken" in document["components"]["securitySchemes"]
    assert set(document["components"]["schemas"]["TwirpError"]["properties"]) == {
        "code",
        "msg",
        "meta",
    }


async def test_openapi_documents_the_protobuf_json_mapping(http: httpx.AsyncClient) -> None:
    """int64 replies are documented as strings, bytes as base64, and snake_case names."""
    schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]

    assert schemas["PublishResponse"]["properties"]["offset"]["type"] == "string"
    assert schemas["Credentials"]["properties"]["access_expires_unix"]["type"] == "string"
    assert schemas["JSONPayload"]["properties"]["payload"]["format"] == "byte"
    assert "ttl_seconds" in schemas["OpenPublicRequest"]["properties"]


# -- /parsec/jwks.json ------------------------------------------------------------------------


async def test_jwks_is_not_found_without_an_asymmetric_key(http: httpx.AsyncClient) -> None:
    """A ring of HMAC keys only has no JWKS: 404."""
    response = await http.get("/parsec/jwks.json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_jwks_lists_public_keys_and_never_a_secret(
    parsec: Parsec, api: Api, http: httpx.AsyncClient
) -> None:
    """The JWKS lists asymmetric keys' public parts only, cacheably, and never the HMAC key."""
    hmac_kid = parsec.keyring.active.id
    ec = await api.ok("GenerateKey", {"alg": "ES256"})
    rsa = await api.ok("GenerateKey", {"alg": "RS256"})

    response = await http.get("/parsec/jwks.json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = {key["kid"]: key for key in response.json()["keys"]}
    assert set(keys) == {ec["id"], rsa["id"]}
    assert hmac_kid not in response.text
    for key in keys.values():
        assert "d" not in key
        assert "k" not in key
        assert key["use"] == "sig"
    assert keys[ec["id"]]["kty"] == "EC"
    assert keys[rsa["id"]]["kty"] == "RSA"


async def test_jwks_drops_a_retired_key(api: Api, http: httpx.AsyncClient) -> None:
    """Once retired, an asymmetric key leaves the JWKS."""
    key = await api.ok("GenerateKey", {"alg": "EdDSA"})
    await api.ok("RetireKey", {"id": key["id"]})

    response = await http.get("/parsec/jwks.json")

    assert response.status_code == 404


# -- a real server and the centrifuge SDK -----------------------------------------------------


class SubscriptionEvents:
    """centrifuge-python subscription events (the SDK calls each ``on_*`` by name): the
    ones a test awaits are queued, the others ignored."""

    def __init__(self) -> None:
        self.subscribed: asyncio.Queue[Any] = asyncio.Queue()
        self.publications: asyncio.Queue[Any] = asyncio.Queue()
        self.unsubscribed: asyncio.Queue[Any] = asyncio.Queue()

    async def on_subscribed(self, ctx: Any) -> None:
        self.subscribed.put_nowait(ctx)

    async def on_publication(self, ctx: Any) -> None:
        self.publications.put_nowait(ctx)

    async def on_unsubscribed(self, ctx: Any) -> None:
        self.unsubscribed.put_nowait(ctx)

    async def on_subscribing(self, ctx: Any) -> None:
        pass

    async def on_error(self, ctx: Any) -> None:
        pass

    async def on_join(self, ctx: Any) -> None:
        pass

    async def on_leave(self, ctx: Any) -> None:
        pass


async def test_a_private_channel_made_over_http_serves_the_sdk() -> None:
    """A real server: CreatePrivate's access token subscribes the SDK; Publish/Delete reach it."""
    async with (
        serve_for_tests() as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        api = Api(http, server.parsec.issue_mgmt("operator").token)
        creds = await private_credentials(api)
        events = SubscriptionEvents()
        client = centrifuge.Client(server.ws_url, token=server.connection_token("alice"))
        subscription = client.new_subscription(PRIVATE, events=events, token=creds["access_token"])
        try:
            async with asyncio.timeout(10):
                await client.connect()
                await subscription.subscribe()
                await events.subscribed.get()

                presence = await api.ok("Presence", {"name": PRIVATE})
                ack = await api.ok("Publish", {"name": PRIVATE, "data": b64json({"n": 1})})
                publication = await events.publications.get()
                await api.ok("DeleteChannel", {"name": PRIVATE})
                await events.unsubscribed.get()
        finally:
            await client.disconnect()

    assert presence == {"subscribers": 1}
    assert publication.pub.data == {"n": 1}
    assert publication.pub.offset == int(ack["offset"])
