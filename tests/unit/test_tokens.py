"""Connection and subscription tokens: issuing, verifying, rotation and every way to fail."""

from __future__ import annotations

import base64
import contextlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsec import Parsec
from parsec.auth import (
    ConnectionClaims,
    InvalidToken,
    KeyRing,
    ServerSubscription,
    SubscriptionClaims,
    SubscriptionOverride,
    TokenExpired,
    TokenIssuer,
    TokenVerifier,
)
from parsec.options import AuthOptions, Options

NOW = 1_700_000_000.0
SHARED = "a-shared-secret-that-is-long-enough-for-hs512-without-warnings-0123456789"


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
def issuer(ring: KeyRing, clock: FakeClock) -> TokenIssuer:
    return TokenIssuer(ring, clock=clock)


@pytest.fixture
def verifier(ring: KeyRing, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(ring, hmac_secret=SHARED, clock=clock)


def shared_token(claims: dict[str, Any], secret: str = SHARED, alg: str = "HS256") -> str:
    """A token minted by 'another backend': PyJWT with the shared secret and no kid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer PyJWT warns about short test secrets
        return jwt.encode(claims, secret, algorithm=alg)


def raw_token(header: dict[str, Any], payload: bytes, secret: str | bytes = SHARED) -> str:
    """A token with exactly this header and payload bytes, signed with ``secret``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer PyJWT warns about short test secrets
        return jwt.PyJWS().encode(payload, secret, algorithm=header["alg"], headers=header)


def b64(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


# -- round trips ------------------------------------------------------------------------------


def test_connection_round_trip(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """A connection token minted by the issuer verifies with all its claims."""
    token = issuer.connection_token(
        "alice",
        ttl=600,
        channels=["news", "chat"],
        info={"name": "Alice"},
        expire_at=int(NOW) + 60,
        extra={"meta": {"plan": "pro"}},
    )
    claims = verifier.verify_connection(token)
    assert isinstance(claims, ConnectionClaims)
    assert claims.user == "alice"
    assert claims.exp == int(NOW) + 600
    assert claims.iat == int(NOW)
    assert claims.expire_at == int(NOW) + 60
    assert claims.expires_at == int(NOW) + 60
    assert claims.info == b'{"name":"Alice"}'
    assert claims.meta == {"plan": "pro"}
    assert claims.jti is not None
    assert len(claims.jti) == 32
    assert claims.subscriptions == (
        ServerSubscription("news", None, None, None),
        ServerSubscription("chat", None, None, None),
    )


def test_connection_tokens_have_unique_jti(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Two tokens for the same user carry different jti values."""
    first = verifier.verify_connection(issuer.connection_token("u"))
    second = verifier.verify_connection(issuer.connection_token("u"))
    assert first.jti != second.jti


def test_ring_tokens_carry_kid_header(issuer: TokenIssuer, ring: KeyRing) -> None:
    """Ring-signed tokens have exactly the header alg, kid and typ JWT."""
    header = jwt.get_unverified_header(issuer.connection_token("u"))
    assert header == {"alg": "HS256", "kid": ring.active.id, "typ": "JWT"}


def test_subscription_round_trip(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """A subscription token verifies with its user, channel, info and expiry, and carries
    a fresh jti and its iat (what revocation by id and by user read)."""
    token = issuer.subscription_token("bob", "room:1", ttl=30, info=["x", 1])
    claims = verifier.verify_subscription(token)
    assert claims.jti is not None
    assert len(claims.jti) == 32
    assert claims == SubscriptionClaims(
        user="bob",
        channel="room:1",
        exp=int(NOW) + 30,
        expire_at=None,
        info=b'["x",1]',
        override=None,
        client=None,
        jti=claims.jti,
        iat=int(NOW),
    )
    assert claims.expires_at == int(NOW) + 30
    another = verifier.verify_subscription(issuer.subscription_token("bob", "room:1"))
    assert another.jti != claims.jti


def test_ttl_none_never_expires(
    issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock
) -> None:
    """A token minted with ttl None has no exp and verifies far in the future."""
    token = issuer.connection_token("u", ttl=None)
    clock.now = NOW + 10 * 365 * 86400
    claims = verifier.verify_connection(token)
    assert claims.exp is None
    assert claims.expires_at is None


def test_anonymous_token(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """sub "" is accepted as an anonymous connection."""
    assert verifier.verify_connection(issuer.connection_token("")).user == ""


def test_missing_sub_reads_as_anonymous(verifier: TokenVerifier) -> None:
    """A token without sub is anonymous, as in Centrifugo."""
    assert verifier.verify_connection(shared_token({"exp": NOW + 60})).user == ""


# -- rotation ---------------------------------------------------------------------------------


def test_verify_only_key_still_verifies(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    """After a rotation, a token signed by the now verify-only key still verifies."""
    old_token = issuer.connection_token("u")
    ring.promote(ring.generate().id)
    new_token = issuer.connection_token("u")
    assert jwt.get_unverified_header(new_token)["kid"] == ring.active.id
    assert verifier.verify_connection(old_token).user == "u"
    assert verifier.verify_connection(new_token).user == "u"


def test_retired_key_token_fails(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    """Once its key is retired, a token fails as invalid (3500), not expired."""
    old = ring.active
    old_token = issuer.subscription_token("u", "c")
    ring.promote(ring.generate().id)
    ring.retire(old.id)
    with pytest.raises(InvalidToken, match="retired") as raised:
        verifier.verify_subscription(old_token)
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


def test_other_process_key_after_reload(tmp_path: Path, clock: FakeClock) -> None:
    """A verifier sees a key another ring promoted once its ring reloads."""
    server_ring = KeyRing.open(tmp_path)
    verifier = TokenVerifier(server_ring, clock=clock)
    operator_ring = KeyRing.open(tmp_path)
    operator_ring.promote(operator_ring.generate().id)
    token = TokenIssuer(operator_ring, clock=clock).connection_token("u")
    with pytest.raises(InvalidToken, match="names no key"):
        verifier.verify_connection(token)
    server_ring.reload()
    assert verifier.verify_connection(token).user == "u"


def test_unknown_kid(verifier: TokenVerifier, tmp_path: Path, clock: FakeClock) -> None:
    """A token from another ring's key is invalid even if a shared secret is configured."""
    stranger = TokenIssuer(KeyRing.open(tmp_path / "other"), clock=clock)
    with pytest.raises(InvalidToken, match="names no key"):
        verifier.verify_connection(stranger.connection_token("u"))


def test_kid_without_keyring(issuer: TokenIssuer, clock: FakeClock) -> None:
    """A verifier with no keyring rejects every token that has a kid."""
    verifier = TokenVerifier(None, hmac_secret=SHARED, clock=clock)
    with pytest.raises(InvalidToken, match="names no key"):
        verifier.verify_connection(issuer.connection_token("u"))


def test_kid_token_must_use_the_key_alg(ring: KeyRing, verifier: TokenVerifier) -> None:
    """A token naming an HS256 key but signed HS512 with that key's secret is rejected."""
    key = ring.active
    token = raw_token({"alg": "HS512", "kid": key.id}, b'{"sub":"u"}', secret=key.secret)
    with pytest.raises(InvalidToken) as raised:
        verifier.verify_connection(token)
    assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


# -- every algorithm --------------------------------------------------------------------------

ALGS = ["HS256", "RS256", "ES256", "ES384", "EdDSA"]


@pytest.mark.parametrize("alg", ALGS)
def test_issuer_signs_with_the_active_key_whatever_its_alg(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier, alg: str
) -> None:
    """With a key of each alg active, both token kinds carry that alg and verify."""
    ring.promote(ring.generate(alg).id)
    connection = issuer.connection_token("alice", channels=["news"])
    subscription = issuer.subscription_token("bob", "room:1")
    for token in (connection, subscription):
        assert jwt.get_unverified_header(token) == {
            "alg": alg,
            "kid": ring.active.id,
            "typ": "JWT",
        }
    assert verifier.verify_connection(connection).user == "alice"
    assert verifier.verify_subscription(subscription).channel == "room:1"


@pytest.mark.parametrize("alg", ALGS[1:])
def test_rotation_between_algs_keeps_old_tokens(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier, alg: str
) -> None:
    """HS256 -> asymmetric -> HS256: each earlier token verifies until its key is retired."""
    first_key = ring.active
    first = issuer.connection_token("u")
    ring.promote(ring.generate(alg).id)
    second_key = ring.active
    second = issuer.connection_token("u")
    ring.promote(ring.generate().id)
    third = issuer.connection_token("u")
    for token in (first, second, third):
        assert verifier.verify_connection(token).user == "u"
    ring.retire(second_key.id)
    with pytest.raises(InvalidToken, match="retired"):
        verifier.verify_connection(second)
    assert verifier.verify_connection(first).user == "u"
    ring.retire(first_key.id)
    with pytest.raises(InvalidToken, match="retired"):
        verifier.verify_connection(first)
    assert verifier.verify_connection(third).user == "u"


@pytest.mark.parametrize("alg", ALGS[1:])
def test_asymmetric_tampered_token_fails(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier, alg: str
) -> None:
    """A payload swapped under an asymmetric signature is an invalid signature."""
    ring.promote(ring.generate(alg).id)
    head, _, signature = issuer.connection_token("alice").split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken) as raised:
        verifier.verify_connection(f"{head}.{forged}.{signature}")
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


@pytest.mark.parametrize("alg", ALGS[1:])
def test_asymmetric_expiry_still_applies(
    ring: KeyRing, issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock, alg: str
) -> None:
    """exp is enforced the same way whatever the signing alg."""
    ring.promote(ring.generate(alg).id)
    token = issuer.subscription_token("u", "c", ttl=10)
    clock.now = NOW + 10
    with pytest.raises(TokenExpired):
        verifier.verify_subscription(token)


# -- shared secret ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_shared_secret_tokens(verifier: TokenVerifier, alg: str) -> None:
    """Tokens signed by another backend with the shared secret and no kid verify."""
    token = shared_token({"sub": "carol", "exp": NOW + 60, "info": {"a": 1}}, alg=alg)
    claims = verifier.verify_connection(token)
    assert claims.user == "carol"
    assert claims.info == b'{"a":1}'


def test_short_shared_secret_verifies_without_warning(clock: FakeClock) -> None:
    """A short shared secret, common in Centrifugo setups, still verifies (and warns nothing)."""
    verifier = TokenVerifier(None, hmac_secret="secret", clock=clock)
    token = shared_token({"sub": "u", "channel": "c"}, secret="secret")
    assert verifier.verify_subscription(token).channel == "c"


def test_no_kid_without_shared_secret(ring: KeyRing, clock: FakeClock) -> None:
    """Without a configured shared secret, a token without kid is invalid."""
    verifier = TokenVerifier(ring, clock=clock)
    with pytest.raises(InvalidToken, match="no shared secret"):
        verifier.verify_connection(shared_token({"sub": "u"}))


def test_wrong_shared_secret(verifier: TokenVerifier) -> None:
    """A token signed with another secret fails, and the message shows neither secret."""
    other = "some-other-secret-of-reasonable-length-for-hs256!!"
    with pytest.raises(InvalidToken) as raised:
        verifier.verify_connection(shared_token({"sub": "u"}, secret=other))
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"
    assert SHARED not in str(raised.value)
    assert other not in str(raised.value)


@pytest.mark.parametrize(
    "secret", ["", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"]
)
def test_unusable_shared_secret_is_refused(secret: str) -> None:
    """An empty or PEM-looking hmac_secret is a configuration error, raised at construction."""
    with pytest.raises(ValueError, match="hmac_secret") as raised:
        TokenVerifier(None, hmac_secret=secret)
    assert "AAAA" not in str(raised.value)


# -- time -------------------------------------------------------------------------------------


def test_expired_token(issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock) -> None:
    """At exp and after, the token is expired (109), driven by the injected clock."""
    token = issuer.connection_token("u", ttl=60)
    clock.now = NOW + 59
    assert verifier.verify_connection(token).user == "u"
    clock.now = NOW + 60
    with pytest.raises(TokenExpired) as raised:
        verifier.verify_connection(token)
    assert raised.value.code == "PARSEC_AUTH_EXPIRED"


def test_expired_subscription_token(
    issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock
) -> None:
    """An expired subscription token raises TokenExpired."""
    token = issuer.subscription_token("u", "c", ttl=10)
    clock.now = NOW + 3600
    with pytest.raises(TokenExpired):
        verifier.verify_subscription(token)


def test_leeway_tolerates_expiry(ring: KeyRing, issuer: TokenIssuer, clock: FakeClock) -> None:
    """Leeway extends exp by that many seconds and no more."""
    verifier = TokenVerifier(ring, leeway=30, clock=clock)
    token = issuer.connection_token("u", ttl=60)
    clock.now = NOW + 89
    assert verifier.verify_connection(token).user == "u"
    clock.now = NOW + 90
    with pytest.raises(TokenExpired):
        verifier.verify_connection(token)


def test_real_clock_is_the_default(ring: KeyRing) -> None:
    """Without a clock argument the verifier judges exp by the real time."""
    past = TokenIssuer(ring, clock=lambda: NOW).connection_token("u", ttl=60)
    fresh = TokenIssuer(ring).connection_token("u", ttl=60)
    verifier = TokenVerifier(ring)
    with pytest.raises(TokenExpired):
        verifier.verify_connection(past)
    assert verifier.verify_connection(fresh).user == "u"


def test_nbf_in_future(verifier: TokenVerifier, clock: FakeClock) -> None:
    """A token whose nbf is ahead is not valid yet (109) until the clock reaches nbf."""
    token = shared_token({"sub": "u", "nbf": NOW + 100})
    with pytest.raises(TokenExpired) as raised:
        verifier.verify_connection(token)
    assert raised.value.code == "PARSEC_AUTH_NOT_YET_VALID"
    clock.now = NOW + 100
    assert verifier.verify_connection(token).user == "u"


def test_nbf_with_leeway(ring: KeyRing, clock: FakeClock) -> None:
    """Leeway lets a token be used that many seconds before its nbf."""
    verifier = TokenVerifier(ring, hmac_secret=SHARED, leeway=5, clock=clock)
    assert verifier.verify_connection(shared_token({"sub": "u", "nbf": NOW + 5})).user == "u"
    with pytest.raises(TokenExpired):
        verifier.verify_connection(shared_token({"sub": "u", "nbf": NOW + 6}))


def test_nbf_from_extra_claims(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """An nbf added through extra is enforced."""
    token = issuer.connection_token("u", extra={"nbf": int(NOW) + 10})
    with pytest.raises(TokenExpired):
        verifier.verify_connection(token)


def test_float_times_are_accepted(verifier: TokenVerifier) -> None:
    """Numeric dates with fractions (some libraries emit them) read as whole seconds."""
    claims = verifier.verify_connection(shared_token({"sub": "u", "exp": NOW + 60.7}))
    assert claims.exp == int(NOW) + 60


# -- bad tokens -------------------------------------------------------------------------------


def test_tampered_signature(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Changing one character of the signature makes the token invalid."""
    token = issuer.connection_token("u")
    head, _, signature = token.rpartition(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(InvalidToken) as raised:
        verifier.verify_connection(f"{head}.{flipped}")
    assert raised.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


def test_tampered_payload(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Swapping in another payload (sub changed) breaks the signature."""
    token = issuer.connection_token("alice")
    head, _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verifier.verify_connection(f"{head}.{forged}.{signature}")


@pytest.mark.parametrize("with_kid", [False, True])
def test_alg_none_is_rejected(ring: KeyRing, verifier: TokenVerifier, with_kid: bool) -> None:
    """Unsigned tokens (alg none) are invalid, with or without a kid."""
    headers = {"kid": ring.active.id} if with_kid else None
    token = jwt.encode({"sub": "u"}, "", algorithm="none", headers=headers)
    with pytest.raises(InvalidToken) as raised:
        verifier.verify_connection(token)
    assert raised.value.code == "PARSEC_AUTH_UNSUPPORTED_ALG"


def test_asymmetric_alg_without_kid_is_rejected(verifier: TokenVerifier) -> None:
    """A kid-less token claiming RS256 is refused before any key is used."""
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="alg"):
        verifier.verify_connection(f"{header}.e30.c2ln")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "....",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9",
        "W10.e30.c2ln",  # header is a JSON array
        "eyJhbGciOiJIUzI1NiIsImtpZCI6MX0.e30.c2ln",  # kid is a number
        "eyJhbGciOiJIUzI1NiJ9.e30.!!!!",
    ],
)
def test_garbage_tokens(verifier: TokenVerifier, token: str) -> None:
    """Strings that are not compact JWS raise InvalidToken, never anything else."""
    with pytest.raises(InvalidToken):
        verifier.verify_connection(token)
    with pytest.raises(InvalidToken):
        verifier.verify_subscription(token)


def test_truncated_tokens(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Every truncation of a valid token is rejected as invalid."""
    token = issuer.connection_token("u")
    for end in range(len(token)):
        with pytest.raises(InvalidToken):
            verifier.verify_connection(token[:end])


def test_non_string_token(verifier: TokenVerifier) -> None:
    """A token that is not a string (bad input from a decoder) is invalid, not a crash."""
    with pytest.raises(InvalidToken, match="string"):
        verifier.verify_connection(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_payload_not_an_object(verifier: TokenVerifier, payload: bytes, problem: str) -> None:
    """A correctly signed payload that is not a JSON object is invalid."""
    token = raw_token({"alg": "HS256"}, payload)
    with pytest.raises(InvalidToken, match=problem):
        verifier.verify_connection(token)


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"sub": 42}, "sub must be a string"),
        ({"sub": "u", "exp": "tomorrow"}, "exp must be a number"),
        ({"sub": "u", "exp": True}, "exp must be a number"),
        ({"sub": "u", "nbf": [1]}, "nbf must be a number"),
        ({"sub": "u", "iat": "now"}, "iat must be a number"),
        ({"sub": "u", "expire_at": "never"}, "expire_at must be a number"),
        ({"sub": "u", "jti": 7}, "jti must be a string"),
        ({"sub": "u", "channels": "news"}, "channels must be a list"),
        ({"sub": "u", "channels": ["ok", 3]}, "channels must be a list"),
        ({"sub": "u", "channels": [""]}, "channels must be a list"),
        ({"sub": "u", "subs": ["news"]}, "subs must be an object"),
        ({"sub": "u", "subs": {"": {}}}, "empty channel name"),
        ({"sub": "u", "subs": {"news": "yes"}}, "must be an object"),
        ({"sub": "u", "subs": {"news": {"b64info": "%%%"}}}, "b64info is not base64 of JSON"),
        ({"sub": "u", "b64info": b64("x")[:-1] + "!"}, "b64info is not base64 of JSON"),
        ({"sub": "u", "b64info": base64.b64encode(b"\x00\x01").decode()}, "b64info"),
    ],
)
def test_ill_typed_connection_claims(
    verifier: TokenVerifier, claims: dict[str, Any], problem: str
) -> None:
    """Claims of the wrong type are invalid tokens, with the claim named."""
    with pytest.raises(InvalidToken, match=problem) as raised:
        verifier.verify_connection(shared_token(claims))
    assert raised.value.code == "PARSEC_AUTH_MALFORMED"


def test_claim_shape_checked_before_expiry(verifier: TokenVerifier, clock: FakeClock) -> None:
    """An expired token with a malformed claim is invalid (3500), not expired (109)."""
    clock.now = NOW + 1000
    with pytest.raises(InvalidToken):
        verifier.verify_connection(shared_token({"sub": 1, "exp": NOW}))


def test_signature_checked_before_expiry(verifier: TokenVerifier, clock: FakeClock) -> None:
    """An expired token with a bad signature is invalid, not expired."""
    token = shared_token({"sub": "u", "exp": NOW - 10}, secret="x" * 64)
    with pytest.raises(InvalidToken):
        verifier.verify_connection(token)


# -- token kinds ------------------------------------------------------------------------------


def test_channel_inside_connection_token(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """A subscription token presented as a connection token is invalid (3500)."""
    token = issuer.subscription_token("u", "news")
    with pytest.raises(InvalidToken, match="must not have a channel") as raised:
        verifier.verify_connection(token)
    assert raised.value.code == "PARSEC_AUTH_TYPE_MISMATCH"


def test_channel_claim_checked_before_expiry(verifier: TokenVerifier) -> None:
    """An expired connection token with a channel claim is invalid, not expired."""
    with pytest.raises(InvalidToken):
        verifier.verify_connection(shared_token({"sub": "u", "channel": "c", "exp": NOW - 1}))


@pytest.mark.parametrize("channel", [None, "", 5])
def test_subscription_token_needs_channel(verifier: TokenVerifier, channel: object) -> None:
    """A subscription token without a non-empty string channel is invalid."""
    claims: dict[str, Any] = {"sub": "u"}
    if channel is not None:
        claims["channel"] = channel
    with pytest.raises(InvalidToken, match="channel"):
        verifier.verify_subscription(shared_token(claims))


def test_connection_token_as_subscription_token(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    """A connection token presented as a subscription token is invalid."""
    with pytest.raises(InvalidToken, match="needs a non-empty channel") as raised:
        verifier.verify_subscription(issuer.connection_token("u"))
    assert raised.value.code == "PARSEC_AUTH_TYPE_MISMATCH"


def test_subscription_client_and_override(verifier: TokenVerifier) -> None:
    """A subscription token's client binding and override are returned."""
    token = shared_token(
        {
            "sub": "u",
            "channel": "c",
            "client": "client-1",
            "expire_at": 0,
            "exp": NOW + 60,
            "b64info": b64({"role": "mod"}),
            "override": {"presence": {"value": False}, "force_recovery": {"value": True}},
        }
    )
    claims = verifier.verify_subscription(token)
    assert claims.client == "client-1"
    assert claims.info == b'{"role":"mod"}'
    assert claims.override == SubscriptionOverride(False, None, None, True, None)
    assert claims.expire_at == 0
    assert claims.expires_at is None


def test_subscription_client_must_be_string(verifier: TokenVerifier) -> None:
    """A non-string client claim makes the subscription token invalid."""
    with pytest.raises(InvalidToken, match="client must be a string"):
        verifier.verify_subscription(shared_token({"sub": "u", "channel": "c", "client": 1}))


# -- aud / iss --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [("parsec", True), (["other", "parsec"], True), ("other", False), (None, False), (7, False)],
)
def test_audience(ring: KeyRing, clock: FakeClock, aud: object, accepted: bool) -> None:
    """With an audience configured, aud must be it or a list containing it."""
    verifier = TokenVerifier(ring, hmac_secret=SHARED, audience="parsec", clock=clock)
    claims: dict[str, Any] = {"sub": "u", "channel": "c"}
    if aud is not None:
        claims["aud"] = aud
    token = shared_token(claims)
    if accepted:
        assert verifier.verify_subscription(token).user == "u"
    else:
        with pytest.raises(InvalidToken, match="aud") as raised:
            verifier.verify_subscription(token)
        assert raised.value.code == "PARSEC_AUTH_DENIED"


@pytest.mark.parametrize(
    ("iss", "accepted"), [("https://auth", True), ("https://evil", False), (None, False)]
)
def test_issuer(ring: KeyRing, clock: FakeClock, iss: str | None, accepted: bool) -> None:
    """With an issuer configured, iss must equal it."""
    verifier = TokenVerifier(ring, hmac_secret=SHARED, issuer="https://auth", clock=clock)
    claims: dict[str, Any] = {"sub": "u"} if iss is None else {"sub": "u", "iss": iss}
    token = shared_token(claims)
    if accepted:
        assert verifier.verify_connection(token).user == "u"
    else:
        with pytest.raises(InvalidToken, match="iss"):
            verifier.verify_connection(token)


def test_aud_and_iss_ignored_when_not_configured(verifier: TokenVerifier) -> None:
    """Without configuration, any aud and iss are accepted, as in Centrifugo."""
    token = shared_token({"sub": "u", "aud": "anything", "iss": "anyone"})
    assert verifier.verify_connection(token).user == "u"


def test_issuer_extra_aud_iss(ring: KeyRing, issuer: TokenIssuer, clock: FakeClock) -> None:
    """aud and iss added through extra satisfy a verifier configured with them."""
    verifier = TokenVerifier(ring, audience="a", issuer="i", clock=clock)
    token = issuer.connection_token("u", extra={"aud": "a", "iss": "i"})
    assert verifier.verify_connection(token).user == "u"


def test_issuer_with_audience_and_issuer_marks_every_token(ring: KeyRing, clock: FakeClock) -> None:
    """An issuer given the server's audience and issuer puts them in connection and
    subscription tokens alike; extra aud / iss replace them for one token."""
    issuer = TokenIssuer(ring, clock=clock, audience="a", issuer="i")
    verifier = TokenVerifier(ring, audience="a", issuer="i", clock=clock)
    assert verifier.verify_connection(issuer.connection_token("u")).user == "u"
    assert verifier.verify_subscription(issuer.subscription_token("u", "c")).channel == "c"
    other = issuer.connection_token("u", extra={"aud": "b"})
    with pytest.raises(InvalidToken, match="aud"):
        verifier.verify_connection(other)
    assert TokenVerifier(ring, audience="b", clock=clock).verify_connection(other).user == "u"


def test_audience_checked_before_expiry(ring: KeyRing, clock: FakeClock) -> None:
    """An expired token with the wrong aud is invalid, not expired."""
    verifier = TokenVerifier(ring, hmac_secret=SHARED, audience="parsec", clock=clock)
    with pytest.raises(InvalidToken):
        verifier.verify_connection(shared_token({"sub": "u", "aud": "x", "exp": NOW - 1}))


# -- server-side subscriptions ----------------------------------------------------------------


def test_subs_take_precedence_over_channels(verifier: TokenVerifier) -> None:
    """When both are present, subs decide the server-side subscriptions, in their order."""
    token = shared_token(
        {
            "sub": "u",
            "channels": ["ignored"],
            "subs": {
                "b": {"info": {"x": 1}, "data": "hello\nworld"},
                "a": {"b64info": b64([1]), "b64data": b64({"d": True})},
                "c": None,
            },
        }
    )
    assert verifier.verify_connection(token).subscriptions == (
        ServerSubscription("b", b'{"x":1}', b'"hello\\nworld"', None),
        ServerSubscription("a", b"[1]", b'{"d":true}', None),
        ServerSubscription("c", None, None, None),
    )


def test_empty_subs_fall_back_to_channels(verifier: TokenVerifier) -> None:
    """An empty subs object leaves channels in charge; repeated channels count once."""
    token = shared_token({"sub": "u", "subs": {}, "channels": ["x", "y", "x"]})
    assert [s.channel for s in verifier.verify_connection(token).subscriptions] == ["x", "y"]


def test_no_server_subscriptions(verifier: TokenVerifier) -> None:
    """A token with neither subs nor channels has no server-side subscriptions."""
    assert verifier.verify_connection(shared_token({"sub": "u"})).subscriptions == ()


def test_override_parsing(verifier: TokenVerifier) -> None:
    """Every override field is read from the {"value": bool} shape; absent ones are None."""
    override = {
        "presence": {"value": True},
        "join_leave": {"value": False},
        "force_push_join_leave": {"value": True},
        "force_recovery": {},
        "force_positioning": None,
        "future_option": {"value": True},
    }
    token = shared_token({"sub": "u", "subs": {"c": {"override": override}}})
    [sub] = verifier.verify_connection(token).subscriptions
    assert sub.override == SubscriptionOverride(
        presence=True,
        join_leave=False,
        force_push_join_leave=True,
        force_recovery=False,
        force_positioning=None,
    )


@pytest.mark.parametrize(
    "override",
    [
        "presence",
        ["presence"],
        {"presence": True},
        {"presence": {"value": "yes"}},
        {"join_leave": {"value": 1}},
    ],
)
def test_bad_override_shapes(verifier: TokenVerifier, override: object) -> None:
    """An override that is not {name: {"value": bool}} makes the token invalid."""
    token = shared_token({"sub": "u", "subs": {"c": {"override": override}}})
    with pytest.raises(InvalidToken, match="override"):
        verifier.verify_connection(token)
    with pytest.raises(InvalidToken, match="override"):
        verifier.verify_subscription(
            shared_token({"sub": "u", "channel": "c", "override": override})
        )


# -- info and expiry rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "raw"),
    [
        ("plain", b'"plain"'),
        (12.5, b"12.5"),
        ([1, {"a": None}], b'[1,{"a":null}]'),
        ({"multi": "line\nvalue", "n": {"k": "v"}}, b'{"multi":"line\\nvalue","n":{"k":"v"}}'),
        (None, None),
    ],
)
def test_info_is_compact_json(verifier: TokenVerifier, info: object, raw: bytes | None) -> None:
    """info of any JSON type is returned as compact JSON bytes without raw newlines."""
    claims = verifier.verify_connection(shared_token({"sub": "u", "info": info}))
    assert claims.info == raw
    assert b"\n" not in (claims.info or b"")


def test_b64info_takes_precedence(verifier: TokenVerifier) -> None:
    """b64info wins over info, as in Centrifugo."""
    token = shared_token({"sub": "u", "info": {"from": "info"}, "b64info": b64({"from": "b64"})})
    assert verifier.verify_connection(token).info == b'{"from":"b64"}'


@pytest.mark.parametrize(
    ("exp", "expire_at", "expected"),
    [
        (NOW + 60, None, int(NOW) + 60),
        (NOW + 60, NOW + 600, int(NOW) + 600),
        (NOW + 60, 0, None),
        (None, None, None),
        (None, NOW + 5, int(NOW) + 5),
    ],
)
def test_expires_at_rule(
    verifier: TokenVerifier, exp: float | None, expire_at: float | None, expected: int | None
) -> None:
    """expires_at is expire_at when present (0 = never), else exp."""
    claims: dict[str, Any] = {"sub": "u", "exp": exp, "expire_at": expire_at}
    token = shared_token({k: v for k, v in claims.items() if v is not None})
    assert verifier.verify_connection(token).expires_at == expected


def test_expire_at_zero_still_checks_exp(verifier: TokenVerifier, clock: FakeClock) -> None:
    """expire_at 0 means the connection never expires, but an expired token is refused."""
    clock.now = NOW + 120
    with pytest.raises(TokenExpired):
        verifier.verify_connection(shared_token({"sub": "u", "exp": NOW + 60, "expire_at": 0}))


# -- issuer input errors ----------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "jti", "channels", "info", "channel"])
def test_extra_cannot_override_claims(issuer: TokenIssuer, claim: str) -> None:
    """extra may not repeat a claim a parameter sets, nor add channel."""
    with pytest.raises(ValueError, match=claim):
        issuer.connection_token("u", extra={claim: "x"})


def test_unserialisable_info(issuer: TokenIssuer) -> None:
    """info that JSON cannot represent is a ValueError, not a half-made token."""
    with pytest.raises(ValueError, match="JSON"):
        issuer.connection_token("u", info=object())
    with pytest.raises(ValueError, match="JSON"):
        issuer.subscription_token("u", "c", info=1j)


def test_subscription_token_needs_channel_to_mint(issuer: TokenIssuer) -> None:
    """Minting a subscription token for an empty channel is refused."""
    with pytest.raises(ValueError, match="channel"):
        issuer.subscription_token("u", "")


@pytest.mark.parametrize("ttl", [float("inf"), float("nan")])
def test_ttl_must_be_finite(issuer: TokenIssuer, ttl: float) -> None:
    """A non-finite ttl is refused."""
    with pytest.raises(ValueError, match="ttl"):
        issuer.connection_token("u", ttl=ttl)


# -- never a crash ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TIME_CLAIMS = ("exp", "nbf", "iat", "expire_at")
SHAPE_CLAIMS = ("sub", "jti", "info", "b64info", "meta", "channels", "subs", "channel", "client")
CLAIM_NAMES = st.sampled_from((*TIME_CLAIMS, *SHAPE_CLAIMS, "override", "aud", "iss"))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_strings_never_crash(text: str) -> None:
    """Any string given as a token raises InvalidToken, never another exception."""
    verifier = TokenVerifier(None, hmac_secret=SHARED, clock=FakeClock())
    with pytest.raises(InvalidToken):
        verifier.verify_connection(text)


def _verify_either(verify: Callable[[str], object], token: str) -> None:
    with contextlib.suppress(InvalidToken, TokenExpired):
        verify(token)


@settings(max_examples=300, deadline=None)
@given(claims=st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=8))
def test_arbitrary_signed_claims_never_crash(claims: dict[str, Any]) -> None:
    """Correctly signed tokens with any claim values give claims or a TokenError only."""
    verifier = TokenVerifier(None, hmac_secret=SHARED, audience="a", clock=FakeClock())
    token = raw_token({"alg": "HS256"}, json.dumps(claims).encode())
    _verify_either(verifier.verify_connection, token)
    _verify_either(verifier.verify_subscription, token)


def test_parsec_tokens_are_not_centrifugo_tokens(tmp_path: Path) -> None:
    """A Parsec mgmt/access token, signed by the same ring, never verifies as a
    connection or subscription token."""
    from parsec.auth.parsec_tokens import ParsecTokens

    ring = KeyRing.open(tmp_path / "state")
    verifier = TokenVerifier(ring)
    tokens = ParsecTokens(ring)
    for issued in (
        tokens.issue_mgmt("operator"),
        tokens.issue_access("alice", ["private:app.room.1"]),
    ):
        with pytest.raises(InvalidToken):
            verifier.verify_connection(issued.token)
        with pytest.raises(InvalidToken):
            verifier.verify_subscription(issued.token)


async def test_parsec_issues_what_its_verifier_requires(tmp_path: Path) -> None:
    """Parsec.issuer carries the configured token_audience and token_issuer, so the
    tokens it mints (parsec.testing's among them) pass its own verifier."""
    auth = AuthOptions(state_dir=tmp_path, token_audience="a", token_issuer="i")
    parsec = Parsec(Options(auth=auth))
    token = parsec.issuer.connection_token("u")
    assert parsec.verifier.verify_connection(token).user == "u"
    sub = parsec.issuer.subscription_token("u", "c")
    assert parsec.verifier.verify_subscription(sub).channel == "c"
