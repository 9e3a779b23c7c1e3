"""Parsec access / refresh / mgmt tokens: claims on the wire, lifetimes, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parsec.auth import jws
from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import (
    ACCESS,
    MGMT,
    REFRESH,
    TYPES,
    IssuedToken,
    ParsecClaims,
    ParsecTokens,
)
from parsec.auth.scopes import OPERATOR_SCOPES, Scope
from parsec.errors import ParsecError

NOW = 1_700_000_000
CHANNEL = "private:app.jobs.42"
HOUR, DAY = 3600, 86400

Issue = Callable[[], IssuedToken]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.open(tmp_path)


@pytest.fixture
def tokens(ring: KeyRing, clock: FakeClock) -> ParsecTokens:
    return ParsecTokens(ring, clock=clock)


def decode(part: str) -> dict[str, Any]:
    """One base64url JSON part of a compact JWS."""
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def payload_of(token: str) -> dict[str, Any]:
    return decode(token.split(".")[1])


def signed(ring: KeyRing, payload: dict[str, object]) -> str:
    """A token with ``payload`` validly signed by the ring's active key."""
    return jws.sign(payload, ring.active)


def refusal(tokens: ParsecTokens, token: str, typ: str | None = None) -> str:
    """The PARSEC_* code verify raises for ``token``."""
    with pytest.raises(ParsecError) as caught:
        tokens.verify(token, typ)
    return caught.value.code


# -- claims on the wire -------------------------------------------------------------------------


def test_access_token_claims_use_the_short_keys(tokens: ParsecTokens, ring: KeyRing) -> None:
    """An access token carries sub, typ, chs, scopes [{pat, v, deny?}], jti, iat, exp."""
    scopes = [
        Scope("private:app.**", ("subscribe",)),
        Scope("private:app.x.**", ("publish", "manage"), deny=True),
    ]
    issued = tokens.issue_access("alice", [CHANNEL], scopes)

    header, payload = (decode(part) for part in issued.token.split(".")[:2])
    assert header == {"alg": "HS256", "kid": ring.active.id, "typ": "JWT"}
    assert payload == {
        "sub": "alice",
        "typ": "access",
        "chs": [CHANNEL],
        "scopes": [
            {"pat": "private:app.**", "v": ["subscribe"]},
            {"pat": "private:app.x.**", "v": ["publish", "manage"], "deny": True},
        ],
        "jti": issued.claims.jti,
        "iat": NOW,
        "exp": NOW + 300,
    }
    assert issued.claims.to_payload() == payload


def test_refresh_token_carries_one_channel_a_jti_and_a_family(tokens: ParsecTokens) -> None:
    """A refresh token has chs [channel], a jti and a fid, and no scopes key when empty."""
    issued = tokens.issue_refresh("alice", CHANNEL, ttl=900)

    payload = payload_of(issued.token)
    assert set(payload) == {"sub", "typ", "chs", "jti", "fid", "iat", "exp"}
    assert payload["typ"] == "refresh"
    assert payload["chs"] == [CHANNEL]
    assert payload["jti"] == issued.claims.jti
    assert payload["fid"] == issued.claims.fid


def test_mgmt_token_has_no_channels_and_operator_scopes(tokens: ParsecTokens) -> None:
    """A default mgmt token has no chs and the operator scopes."""
    issued = tokens.issue_mgmt("operator")

    payload = payload_of(issued.token)
    assert "chs" not in payload
    assert payload["typ"] == "mgmt"
    assert payload["scopes"] == [scope.to_claim() for scope in OPERATOR_SCOPES]
    assert issued.claims.scopes == OPERATOR_SCOPES


def test_every_token_gets_a_fresh_jti(tokens: ParsecTokens) -> None:
    """Two tokens issued alike still have different ids."""
    ids = {
        tokens.issue_access("alice", [CHANNEL]).claims.jti,
        tokens.issue_access("alice", [CHANNEL]).claims.jti,
        tokens.issue_refresh("alice", CHANNEL, ttl=900).claims.jti,
        tokens.issue_mgmt("operator").claims.jti,
    }
    assert len(ids) == 4
    assert None not in ids


def test_verify_returns_the_issued_claims(tokens: ParsecTokens) -> None:
    """What verify returns equals what was issued, for every type."""
    scopes = [Scope("private:app.*.*", ("subscribe", "publish"))]
    for issued in (
        tokens.issue_access("alice", [CHANNEL, "public:app.news"], scopes),
        tokens.issue_refresh("alice", CHANNEL, scopes, ttl=900),
        tokens.issue_mgmt("operator", scopes=scopes),
    ):
        assert tokens.verify(issued.token, issued.claims.typ) == issued.claims
        assert tokens.verify(issued.token) == issued.claims


def test_claims_authorize_with_deny_wins(tokens: ParsecTokens) -> None:
    """Verified claims answer authorizes() with chs, scopes and deny-wins."""
    scopes = [Scope("private:app.**", ("subscribe",)), Scope(CHANNEL, ("publish",), deny=True)]
    claims = tokens.verify(tokens.issue_access("alice", [CHANNEL], scopes).token, ACCESS)

    assert claims.authorizes(CHANNEL, "subscribe")
    assert claims.authorizes(CHANNEL, "manage")
    assert not claims.authorizes(CHANNEL, "publish")
    assert claims.authorizes("private:app.other.1", "subscribe")
    assert not claims.authorizes("private:app.other.1", "publish")
    assert not claims.authorizes("public:app.news", "subscribe")


# -- lifetimes ------------------------------------------------------------------------------------


def test_access_lives_five_minutes_by_default(tokens: ParsecTokens) -> None:
    """Default access TTL is 300 s from iat = now."""
    claims = tokens.issue_access("alice", [CHANNEL]).claims
    assert (claims.iat, claims.exp) == (NOW, NOW + 300)


def test_access_ttl_has_a_floor_of_a_minute(ring: KeyRing, clock: FakeClock) -> None:
    """An access_ttl below 60 s gives 60 s tokens."""
    claims = ParsecTokens(ring, clock=clock, access_ttl=5).issue_access("a", [CHANNEL]).claims
    assert claims.exp - claims.iat == 60


def test_access_is_cut_at_not_after(tokens: ParsecTokens) -> None:
    """not_after before the access TTL ends becomes the exp."""
    claims = tokens.issue_access("alice", [CHANNEL], not_after=NOW + 120).claims
    assert claims.exp == NOW + 120


def test_access_never_outlives_not_after_even_below_the_floor(tokens: ParsecTokens) -> None:
    """The 60 s floor never pushes exp past the refresh token's exp."""
    claims = tokens.issue_access("alice", [CHANNEL], not_after=NOW + 30).claims
    assert claims.exp == NOW + 30


def test_later_not_after_does_not_extend_access(tokens: ParsecTokens) -> None:
    """not_after after the access TTL ends changes nothing."""
    claims = tokens.issue_access("alice", [CHANNEL], not_after=NOW + DAY).claims
    assert claims.exp == NOW + 300


@pytest.mark.parametrize("not_after", [NOW, NOW - 1])
def test_access_from_an_expired_source_is_refused(tokens: ParsecTokens, not_after: int) -> None:
    """not_after that is not in the future raises PARSEC_AUTH_EXPIRED."""
    with pytest.raises(ParsecError) as caught:
        tokens.issue_access("alice", [CHANNEL], not_after=not_after)
    assert caught.value.code == "PARSEC_AUTH_EXPIRED"


@pytest.mark.parametrize(
    ("ttl", "lifetime"), [(900, 900), (HOUR, HOUR), (2 * HOUR, HOUR), (0.5, 1)]
)
def test_refresh_lives_min_of_ttl_and_an_hour(
    tokens: ParsecTokens, ttl: float, lifetime: int
) -> None:
    """Refresh TTL is min(channel TTL, max_refresh_ttl 1 h), in whole seconds."""
    claims = tokens.issue_refresh("alice", CHANNEL, ttl=ttl).claims
    assert claims.exp - claims.iat == lifetime


def test_refresh_max_ttl_is_configurable(ring: KeyRing, clock: FakeClock) -> None:
    """max_refresh_ttl caps the refresh lifetime."""
    tokens = ParsecTokens(ring, clock=clock, max_refresh_ttl=600)
    claims = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims
    assert claims.exp - claims.iat == 600


def test_refresh_keeps_a_given_family(tokens: ParsecTokens) -> None:
    """fid given stays; fid None starts a new family."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims
    second = tokens.issue_refresh("alice", CHANNEL, ttl=900, fid=first.fid).claims
    third = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims

    assert second.fid == first.fid
    assert second.jti != first.jti
    assert third.fid != first.fid


@pytest.mark.parametrize(
    ("ttl", "lifetime"),
    [(None, DAY), (2 * HOUR, 2 * HOUR), (60, HOUR), (1, HOUR), (30 * DAY, 7 * DAY)],
)
def test_mgmt_ttl_defaults_to_a_day_clamped_to_an_hour_and_a_week(
    tokens: ParsecTokens, ttl: float | None, lifetime: int
) -> None:
    """mgmt TTL defaults to 24 h and is clamped to [1 h, 7 d]."""
    claims = tokens.issue_mgmt("operator", ttl=ttl).claims
    assert claims.exp - claims.iat == lifetime


@pytest.mark.parametrize(
    ("mgmt_ttl", "lifetime"), [(60, HOUR), (3 * DAY, 3 * DAY), (30 * DAY, 7 * DAY)]
)
def test_configured_mgmt_ttl_is_clamped_too(
    ring: KeyRing, clock: FakeClock, mgmt_ttl: float, lifetime: int
) -> None:
    """The configured default mgmt_ttl is clamped like an explicit one."""
    claims = ParsecTokens(ring, clock=clock, mgmt_ttl=mgmt_ttl).issue_mgmt("operator").claims
    assert claims.exp - claims.iat == lifetime


# -- bad input at issue time --------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        Scope("private:app.**", ("subscribe", "delete")),
        Scope("private:app.**", ()),
        Scope("*:app.**", ("subscribe",)),
    ],
)
def test_invalid_scopes_are_refused_at_issue_time(tokens: ParsecTokens, scope: Scope) -> None:
    """Every issue call refuses an unknown verb, no verb or a bad pattern."""
    calls: list[Issue] = [
        lambda: tokens.issue_access("alice", [CHANNEL], [scope]),
        lambda: tokens.issue_refresh("alice", CHANNEL, [scope], ttl=900),
        lambda: tokens.issue_mgmt("operator", scopes=[scope]),
    ]
    for call in calls:
        with pytest.raises(ParsecError) as caught:
            call()
        assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


@pytest.mark.parametrize("channel", ["", "private:app.jobs", "public:App.x", "app.jobs.1"])
def test_invalid_channels_are_refused_at_issue_time(tokens: ParsecTokens, channel: str) -> None:
    """A channel that is not a valid name raises PARSEC_CHANNEL_INVALID."""
    calls: list[Issue] = [
        lambda: tokens.issue_access("alice", [CHANNEL, channel]),
        lambda: tokens.issue_refresh("alice", channel, ttl=900),
    ]
    for call in calls:
        with pytest.raises(ParsecError) as caught:
            call()
        assert caught.value.code == "PARSEC_CHANNEL_INVALID"


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), float("inf")])
def test_bad_ttls_are_invalid_arguments(tokens: ParsecTokens, ttl: float) -> None:
    """A refresh or mgmt ttl that is not a positive number raises PARSEC_INVALID_ARGUMENT."""
    calls: list[Issue] = [
        lambda: tokens.issue_refresh("alice", CHANNEL, ttl=ttl),
        lambda: tokens.issue_mgmt("operator", ttl=ttl),
    ]
    for call in calls:
        with pytest.raises(ParsecError) as caught:
            call()
        assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


@pytest.mark.parametrize("option", ["access_ttl", "max_refresh_ttl", "mgmt_ttl"])
def test_bad_configured_ttls_are_invalid_arguments(ring: KeyRing, option: str) -> None:
    """A configured TTL that is not positive raises PARSEC_INVALID_ARGUMENT."""
    options: dict[str, Any] = {option: 0.0}
    with pytest.raises(ParsecError) as caught:
        ParsecTokens(ring, **options)
    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


def test_mgmt_needs_a_subject(tokens: ParsecTokens) -> None:
    """An empty mgmt subject raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        tokens.issue_mgmt("")
    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


def test_empty_refresh_family_is_refused(tokens: ParsecTokens) -> None:
    """An empty fid raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        tokens.issue_refresh("alice", CHANNEL, ttl=900, fid="")
    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


# -- verification failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued_as", "expected"), [(a, b) for a in TYPES for b in TYPES if a != b]
)
def test_wrong_type_is_denied(tokens: ParsecTokens, issued_as: str, expected: str) -> None:
    """A token verified as another type is refused with PARSEC_AUTH_DENIED."""
    issue: dict[str, Issue] = {
        ACCESS: lambda: tokens.issue_access("alice", [CHANNEL]),
        REFRESH: lambda: tokens.issue_refresh("alice", CHANNEL, ttl=900),
        MGMT: lambda: tokens.issue_mgmt("operator"),
    }
    token = issue[issued_as]().token

    assert tokens.verify(token, issued_as).typ == issued_as
    assert refusal(tokens, token, expected) == "PARSEC_AUTH_DENIED"


def test_token_expires_at_exp(tokens: ParsecTokens, clock: FakeClock) -> None:
    """Valid one second before exp; PARSEC_AUTH_EXPIRED (HTTP 401) from exp on."""
    token = tokens.issue_access("alice", [CHANNEL]).token

    clock.now = NOW + 299.9
    assert tokens.verify(token, ACCESS).sub == "alice"
    clock.now = NOW + 300
    with pytest.raises(ParsecError) as caught:
        tokens.verify(token, ACCESS)
    assert caught.value.code == "PARSEC_AUTH_EXPIRED"
    assert caught.value.http_status == 401


def test_expiry_is_reported_before_the_type(tokens: ParsecTokens, clock: FakeClock) -> None:
    """An expired token of the wrong type is reported as expired."""
    token = tokens.issue_mgmt("operator").token
    clock.now = NOW + 2 * DAY
    assert refusal(tokens, token, ACCESS) == "PARSEC_AUTH_EXPIRED"


def test_token_issued_in_the_future_is_denied(tokens: ParsecTokens, ring: KeyRing) -> None:
    """iat after now is refused with PARSEC_AUTH_DENIED."""
    token = signed(ring, {"sub": "a", "typ": "access", "iat": NOW + 10, "exp": NOW + 300})
    assert refusal(tokens, token) == "PARSEC_AUTH_DENIED"


def test_verify_only_key_verifies_and_retired_key_is_denied(
    tokens: ParsecTokens, ring: KeyRing
) -> None:
    """After a rotation old tokens verify; once their key is retired they are denied."""
    old = tokens.issue_mgmt("operator")
    old_kid = ring.active.id
    ring.promote(ring.generate().id)
    new = tokens.issue_mgmt("operator")

    assert tokens.verify(old.token, MGMT) == old.claims
    ring.retire(old_kid)
    assert refusal(tokens, old.token, MGMT) == "PARSEC_AUTH_DENIED"
    assert tokens.verify(new.token, MGMT) == new.claims


def test_token_of_another_keyring_is_denied(tokens: ParsecTokens, clock: FakeClock) -> None:
    """A token signed by a key this ring does not hold is denied."""
    stranger = ParsecTokens(KeyRing.open(None), clock=clock)
    assert refusal(tokens, stranger.issue_mgmt("operator").token) == "PARSEC_AUTH_DENIED"


def test_tampered_payload_is_denied(tokens: ParsecTokens) -> None:
    """Changing the payload breaks the signature."""
    header, _, signature = tokens.issue_access("alice", [CHANNEL]).token.split(".")
    forged = {"sub": "mallory", "typ": "mgmt", "iat": NOW, "exp": NOW + DAY}
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert refusal(tokens, f"{header}.{body}.{signature}") == "PARSEC_AUTH_DENIED"


def test_header_typ_other_than_jwt_is_denied(tokens: ParsecTokens, ring: KeyRing) -> None:
    """A correctly signed token whose header typ is not JWT is denied."""

    def b64(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    key = ring.active
    head = b64({"alg": "HS256", "kid": key.id, "typ": "at+jwt"})
    body = b64({"sub": "a", "typ": "access", "iat": NOW, "exp": NOW + 300})
    mac = hmac.digest(key.secret, f"{head}.{body}".encode(), hashlib.sha256)
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert refusal(tokens, f"{head}.{body}.{signature}") == "PARSEC_AUTH_DENIED"


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJub25lIn0.e30.", "é.é.é"],
)
def test_garbage_is_denied(tokens: ParsecTokens, token: str) -> None:
    """Anything that is not a signed token is refused with PARSEC_AUTH_DENIED."""
    assert refusal(tokens, token) == "PARSEC_AUTH_DENIED"


GOOD: dict[str, object] = {"sub": "alice", "typ": "access", "iat": NOW, "exp": NOW + 300}


@pytest.mark.parametrize(
    "change",
    [
        {"typ": None},
        {"typ": "admin"},
        {"typ": "ACCESS"},
        {"sub": None},
        {"sub": 42},
        {"chs": "private:app.jobs.42"},
        {"chs": [1]},
        {"scopes": {"pat": "public:**", "v": ["subscribe"]}},
        {"scopes": [{"pat": "public:**", "v": ["root"]}]},
        {"scopes": [{"pat": "*:**", "v": ["subscribe"]}]},
        {"scopes": [{"pat": "public:**", "v": ["publish"], "Deny": True}]},
        {"jti": ""},
        {"jti": 7},
        {"fid": ["x"]},
        {"rl": 10},
        {"iat": None},
        {"iat": "1700000000"},
        {"exp": None},
        {"exp": True},
        {"exp": float(NOW + 300)},
    ],
)
def test_malformed_claims_are_denied(
    tokens: ParsecTokens, ring: KeyRing, change: dict[str, object]
) -> None:
    """A properly signed token with ill-typed or invalid claims is refused, never a crash."""
    payload = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    assert refusal(tokens, signed(ring, payload)) == "PARSEC_AUTH_DENIED"


def test_centrifugo_connection_token_is_not_a_parsec_token(
    tokens: ParsecTokens, ring: KeyRing
) -> None:
    """A token of the same ring without a Parsec typ (a connection token) is denied."""
    token = signed(ring, {"sub": "alice", "exp": NOW + 300, "iat": NOW})
    assert refusal(tokens, token) == "PARSEC_AUTH_DENIED"


def test_extra_claims_and_a_rate_override_are_kept(tokens: ParsecTokens, ring: KeyRing) -> None:
    """rl is returned as given; claims Parsec does not know are ignored."""
    rl = {"rate": 5, "per": 1_000_000_000, "burst": 10}
    token = signed(ring, {**GOOD, "rl": rl, "aud": "x", "chs": [CHANNEL]})

    claims = tokens.verify(token, ACCESS)
    assert claims == ParsecClaims("alice", ACCESS, (CHANNEL,), (), None, None, NOW, NOW + 300, rl)
    assert claims.to_payload()["rl"] == rl
