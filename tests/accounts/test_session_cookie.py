"""The session cookie: signed, 7 days, one error for every bad value, the right attributes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.accounts.errors import InvalidSession
from parsec.accounts.oauth_state import MemoryStateLedger, OAuthStates
from parsec.accounts.session_cookie import (
    COOKIE_NAME,
    DEFAULT_SESSION_TTL,
    SessionCookies,
)

from .conftest import KEY, OTHER_KEY, Clock

HTTP = "http://127.0.0.1:8000"
HTTPS = "https://parsec.example.com"


def cookies(clock: Clock, key: bytes | list[bytes] = KEY, base_url: str = HTTP) -> SessionCookies:
    return SessionCookies(key, base_url=base_url, clock=clock)


def test_a_signed_cookie_verifies_to_its_user(clock: Clock) -> None:
    """sign then verify gives the user id back, with when it was issued and expires."""
    session = cookies(clock)
    payload = session.verify(session.sign("user-42"))
    assert payload.user_id == "user-42"
    assert payload.issued_at == int(clock.now)
    assert (
        payload.expires_at
        == int(clock.now) + 7 * 24 * 3600
        == (payload.issued_at + DEFAULT_SESSION_TTL)
    )


def test_the_cookie_holds_no_key(clock: Clock) -> None:
    """The value is URL-safe and carries no part of the key."""
    value = cookies(clock).sign("u1")
    assert KEY.decode() not in value
    assert all(c.isalnum() or c in "-_." for c in value)


def test_a_cookie_is_valid_for_seven_days_then_refused(clock: Clock) -> None:
    """Valid until its TTL has passed; one second later it is the same InvalidSession."""
    session = cookies(clock)
    value = session.sign("u1")
    clock.now += DEFAULT_SESSION_TTL
    assert session.verify(value).user_id == "u1"
    clock.now += 1
    with pytest.raises(InvalidSession):
        session.verify(value)


def test_a_shorter_ttl_is_honoured(clock: Clock) -> None:
    """A configured TTL replaces the 7 days, and is the cookie's Max-Age."""
    session = SessionCookies(KEY, base_url=HTTP, ttl=60, clock=clock)
    value = session.sign("u1")
    clock.now += 61
    with pytest.raises(InvalidSession):
        session.verify(value)
    assert "Max-Age=60" in session.set_cookie_header(value)


def test_a_cookie_signed_in_the_future_is_refused(clock: Clock) -> None:
    """A clock running ahead on the signer does not mint a cookie that outlives its TTL."""
    value = cookies(Clock(clock.now + 3600)).sign("u1")
    with pytest.raises(InvalidSession):
        cookies(clock).verify(value)


def _flip(value: str, index: int) -> str:
    char = value[index]
    return value[:index] + ("A" if char != "A" else "B") + value[index + 1 :]


@pytest.mark.parametrize("where", ["payload", "timestamp", "signature"])
def test_a_tampered_byte_is_refused(clock: Clock, where: str) -> None:
    """Changing one character anywhere (payload, time or signature) invalidates it."""
    session = cookies(clock)
    value = session.sign("u1")
    payload, _, _ = value.split(".")
    index = {"payload": 1, "timestamp": len(payload) + 2, "signature": len(value) - 3}[where]
    with pytest.raises(InvalidSession):
        session.verify(_flip(value, index))


def test_another_users_payload_with_the_old_signature_is_refused(clock: Clock) -> None:
    """Swapping in another cookie's payload breaks the signature."""
    session = cookies(clock)
    mine, theirs = session.sign("me").split("."), session.sign("admin").split(".")
    with pytest.raises(InvalidSession):
        session.verify(".".join([theirs[0], mine[1], mine[2]]))


def test_a_cookie_signed_with_another_key_is_refused(clock: Clock) -> None:
    """A cookie from a server with another session key is refused."""
    value = cookies(clock, OTHER_KEY).sign("u1")
    with pytest.raises(InvalidSession):
        cookies(clock).verify(value)


def test_an_oauth_state_is_not_a_session_cookie(clock: Clock) -> None:
    """Same key, another salt: a state minted by the login cannot be used as a cookie."""
    state = OAuthStates(KEY, MemoryStateLedger(), clock=clock).mint("/")
    with pytest.raises(InvalidSession):
        cookies(clock).verify(state)


def test_keys_rotate_the_first_signs_and_any_verifies(clock: Clock) -> None:
    """After a rotation ([new, old]) old cookies still verify and new ones use the new key."""
    old_cookie = cookies(clock, KEY).sign("u1")
    rotated = cookies(clock, [OTHER_KEY, KEY])
    assert rotated.verify(old_cookie).user_id == "u1"
    new_cookie = rotated.sign("u2")
    assert cookies(clock, OTHER_KEY).verify(new_cookie).user_id == "u2"
    with pytest.raises(InvalidSession):
        cookies(clock, KEY).verify(new_cookie)


def test_every_failure_is_the_same_error(clock: Clock) -> None:
    """Malformed, tampered, foreign and expired values raise one error with one message."""
    session = cookies(clock)
    value = session.sign("u1")
    bad = [
        None,
        "",
        "garbage",
        "a.b.c",
        _flip(value, 2),
        cookies(clock, OTHER_KEY).sign("u1"),
        "x" * 10_000,
    ]
    errors = []
    for candidate in bad:
        with pytest.raises(InvalidSession) as caught:
            session.verify(candidate)
        errors.append((caught.value.code, str(caught.value)))
    clock.now += DEFAULT_SESSION_TTL + 1
    with pytest.raises(InvalidSession) as caught:
        session.verify(value)
    errors.append((caught.value.code, str(caught.value)))
    assert set(errors) == {("PARSEC_SESSION_INVALID", "PARSEC_SESSION_INVALID: invalid session")}


@given(st.text(max_size=300))
def test_any_string_is_a_session_or_invalid_session(value: str) -> None:
    """No input makes verify raise anything but InvalidSession."""
    with pytest.raises(InvalidSession):
        SessionCookies(KEY, base_url=HTTP).verify(value)


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 31, "x" * 31, [KEY, b"x" * 31], []])
def test_a_short_key_is_refused_with_a_clear_message(key: bytes | str | list[bytes]) -> None:
    """A key under 32 bytes is a ValueError saying so, without showing the key."""
    with pytest.raises(ValueError, match="session_key") as caught:
        SessionCookies(key, base_url=HTTP)
    if isinstance(key, bytes) and key:
        assert key.decode() not in str(caught.value)


def test_a_32_byte_str_key_is_accepted() -> None:
    """A key read from TOML (a str) counts as its UTF-8 bytes."""
    session = SessionCookies("s" * 32, base_url=HTTP)
    assert session.verify(session.sign("u1")).user_id == "u1"


@pytest.mark.parametrize("user_id", ["", "x" * 257])
def test_an_empty_or_huge_user_id_is_not_signed(user_id: str) -> None:
    """sign refuses a user id no user has."""
    with pytest.raises(ValueError, match="user id"):
        SessionCookies(KEY, base_url=HTTP).sign(user_id)


def test_attributes_over_http(clock: Clock) -> None:
    """Over http the cookie is HttpOnly, SameSite=Lax, Path=/, Max-Age 7 days, not Secure."""
    session = cookies(clock)
    value = session.sign("u1")
    assert session.set_cookie_header(value) == (
        f"parsec_session={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800"
    )
    assert session.cookie_attributes(value) == {
        "key": COOKIE_NAME,
        "value": value,
        "max_age": 604800,
        "path": "/",
        "secure": False,
        "httponly": True,
        "samesite": "lax",
    }


def test_attributes_over_https_add_secure(clock: Clock) -> None:
    """An https base URL makes the cookie Secure, and nothing else changes."""
    session = cookies(clock, base_url=HTTPS)
    value = session.sign("u1")
    assert session.set_cookie_header(value) == (
        f"parsec_session={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800; Secure"
    )
    assert session.cookie_attributes(value)["secure"] is True
    assert session.clear_cookie_header() == (
        "parsec_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure"
    )


def test_attributes_are_understood_by_starlette(clock: Clock) -> None:
    """Starlette's set_cookie takes the attributes as they are and writes the same header."""
    from starlette.responses import Response

    session = cookies(clock, base_url=HTTPS)
    value = session.sign("u1")
    response = Response()
    response.set_cookie(**session.cookie_attributes(value))
    header = response.headers["set-cookie"]
    for part in [f"parsec_session={value}", "HttpOnly", "Max-Age=604800", "Path=/", "Secure"]:
        assert part in header
    assert "samesite=lax" in header.lower()


@pytest.mark.parametrize("base_url", ["", "ftp://x", "127.0.0.1:8000"])
def test_a_base_url_that_is_not_http_is_refused(base_url: str) -> None:
    """The base URL decides Secure, so it must be http or https."""
    with pytest.raises(ValueError, match="base_url"):
        SessionCookies(KEY, base_url=base_url)
