"""OAuth states: signed, 10 minutes, one-time (even under concurrency), next sanitised."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.accounts.errors import InvalidOAuthState
from parsec.accounts.oauth_state import (
    DEFAULT_STATE_TTL,
    MemoryStateLedger,
    OAuthStates,
    StateLedger,
)
from parsec.accounts.session_cookie import SessionCookies

from .conftest import KEY, OTHER_KEY, Clock


def states(clock: Clock, ledger: StateLedger | None = None, key: bytes = KEY) -> OAuthStates:
    ledger = MemoryStateLedger(clock=clock) if ledger is None else ledger
    return OAuthStates(key, ledger, clock=clock)


async def test_a_minted_state_is_consumed_once_with_its_next(clock: Clock) -> None:
    """mint then consume gives the next path back; a fresh nonce each time."""
    oauth = states(clock)
    first, second = oauth.mint("/orgs/acme?tab=keys"), oauth.mint("/orgs/acme?tab=keys")
    assert first != second
    consumed = await oauth.consume(first)
    assert consumed.next == "/orgs/acme?tab=keys"
    assert consumed.issued_at == int(clock.now)
    assert (await oauth.consume(second)).nonce != consumed.nonce


async def test_a_replayed_state_is_refused(clock: Clock) -> None:
    """The second consume of one state fails, even within its TTL."""
    oauth = states(clock)
    state = oauth.mint("/")
    await oauth.consume(state)
    with pytest.raises(InvalidOAuthState):
        await oauth.consume(state)


async def test_a_replay_to_another_worker_sharing_the_ledger_is_refused(clock: Clock) -> None:
    """Two OAuthStates (two workers) on one ledger: a state used on one fails on the other."""
    ledger = MemoryStateLedger(clock=clock)
    worker_a, worker_b = states(clock, ledger), states(clock, ledger)
    state = worker_a.mint("/dashboard")
    assert (await worker_b.consume(state)).next == "/dashboard"
    with pytest.raises(InvalidOAuthState):
        await worker_a.consume(state)


async def test_a_state_expires_after_ten_minutes(clock: Clock) -> None:
    """Valid for 600 s; a state presented later is refused and never claimed."""
    ledger = MemoryStateLedger(clock=clock)
    oauth = states(clock, ledger)
    late, in_time = oauth.mint("/"), oauth.mint("/")
    clock.now += DEFAULT_STATE_TTL
    await oauth.consume(in_time)
    clock.now += 1
    with pytest.raises(InvalidOAuthState):
        await oauth.consume(late)
    assert len(ledger) == 1


@pytest.mark.parametrize(
    "forged",
    [
        None,
        "",
        "state",
        "eyJuIjoieCIsIm5leHQiOiIvIn0.aaaa.bbbb",
        "x" * 5000,
    ],
)
async def test_a_forged_state_is_refused(clock: Clock, forged: str | None) -> None:
    """Garbage, a made-up signature or an over-long value is refused."""
    with pytest.raises(InvalidOAuthState):
        await states(clock).consume(forged)


async def test_a_state_of_another_key_is_refused(clock: Clock) -> None:
    """A state signed by a server with another session key is refused."""
    state = states(clock, key=OTHER_KEY).mint("/")
    with pytest.raises(InvalidOAuthState):
        await states(clock).consume(state)


async def test_a_tampered_state_is_refused(clock: Clock) -> None:
    """Changing the payload (say, to another next) breaks the signature."""
    oauth = states(clock)
    mine = oauth.mint("/").split(".")
    other = oauth.mint("/admin").split(".")
    with pytest.raises(InvalidOAuthState):
        await oauth.consume(".".join([other[0], mine[1], mine[2]]))


async def test_a_session_cookie_is_not_a_state(clock: Clock) -> None:
    """Same key, another salt: a session cookie cannot stand in for a state."""
    cookie = SessionCookies(KEY, base_url="http://x", clock=clock).sign("u1")
    with pytest.raises(InvalidOAuthState):
        await states(clock).consume(cookie)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/dashboard?x=1", "/dashboard?x=1"),
        ("//evil.com", "/"),
        ("https://evil.com/", "/"),
        ("/%2F%2Fevil.com", "/"),
        (None, "/"),
    ],
)
async def test_next_is_sanitised(clock: Clock, given: str | None, kept: str) -> None:
    """An unsafe next is replaced by "/" when minting, whatever the route passed."""
    oauth = states(clock)
    assert (await oauth.consume(oauth.mint(given))).next == kept


async def test_concurrent_consumes_of_one_state_let_exactly_one_win(clock: Clock) -> None:
    """Fifty tasks consume one state at once: one succeeds, 49 get InvalidOAuthState."""
    oauth = states(clock)
    state = oauth.mint("/won")
    results = await asyncio.gather(
        *(oauth.consume(state) for _ in range(50)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert [w.next for w in winners] == ["/won"]
    assert all(isinstance(r, InvalidOAuthState) for r in results if r not in winners)


class SlowLedger:
    """A ledger that awaits before answering (as a database does), shared and atomic."""

    def __init__(self, clock: Clock) -> None:
        self.inner = MemoryStateLedger(clock=clock)
        self.lock = asyncio.Lock()

    async def claim(self, nonce: str, expires_at: float) -> bool:
        await asyncio.sleep(0)
        async with self.lock:
            await asyncio.sleep(0)
            return await self.inner.claim(nonce, expires_at)


async def test_one_winner_with_a_ledger_that_awaits(clock: Clock) -> None:
    """Concurrent consumes through a ledger that yields: still exactly one winner."""
    oauth = states(clock, SlowLedger(clock))
    state = oauth.mint("/")
    results = await asyncio.gather(
        *(oauth.consume(state) for _ in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1


def test_claims_from_many_threads_let_exactly_one_win(clock: Clock) -> None:
    """Worker threads, each with its own event loop, claim one nonce: one True."""
    ledger = MemoryStateLedger(clock=clock)
    start = threading.Barrier(8)

    def claim() -> bool:
        start.wait()
        return asyncio.run(ledger.claim("the-nonce", clock.now + 600))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: claim(), range(8)))
    assert results.count(True) == 1


@given(st.text(max_size=300))
async def test_any_string_is_a_state_or_invalid_oauth_state(value: str) -> None:
    """No input makes consume raise anything but InvalidOAuthState."""
    with pytest.raises(InvalidOAuthState):
        await OAuthStates(KEY, MemoryStateLedger()).consume(value)


async def test_every_failure_is_the_same_error(clock: Clock) -> None:
    """Forged, replayed and expired states raise one code and one message."""
    oauth = states(clock)
    replayed, expired = oauth.mint("/"), oauth.mint("/")
    await oauth.consume(replayed)
    messages = set()
    for candidate in ["forged", replayed]:
        with pytest.raises(InvalidOAuthState) as caught:
            await oauth.consume(candidate)
        messages.add((caught.value.code, str(caught.value)))
    clock.now += DEFAULT_STATE_TTL + 1
    with pytest.raises(InvalidOAuthState) as caught:
        await oauth.consume(expired)
    messages.add((caught.value.code, str(caught.value)))
    assert len(messages) == 1
    code, message = messages.pop()
    assert code == "PARSEC_OAUTH_STATE_INVALID"
    assert replayed not in message


async def test_the_ledger_forgets_expired_nonces(clock: Clock) -> None:
    """Nonces are kept until they expire (plus the grace), then pruned on the next claim."""
    ledger = MemoryStateLedger(grace=60, clock=clock)
    assert await ledger.claim("a", clock.now + 10)
    assert not await ledger.claim("a", clock.now + 10)
    clock.now += 10 + 60
    assert await ledger.claim("b", clock.now + 10)
    assert len(ledger) == 2
    clock.now += 1
    assert await ledger.claim("c", clock.now + 10)
    assert len(ledger) == 2  # "a" is gone


async def test_a_full_ledger_fails_closed(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """Past max_nonces unexpired nonces, claims return False (logged, without the
    nonce), until some expire."""
    ledger = MemoryStateLedger(max_nonces=2, grace=0, clock=clock)
    assert await ledger.claim("nonce-a", clock.now + 5)
    assert await ledger.claim("nonce-b", clock.now + 100)
    with caplog.at_level(logging.WARNING, logger="parsec.accounts.oauth_state"):
        assert not await ledger.claim("nonce-c", clock.now + 100)
    assert "PARSEC_OAUTH_STATE_LEDGER_FULL" in caplog.text
    assert "nonce-c" not in caplog.text
    clock.now += 6
    assert await ledger.claim("nonce-c", clock.now + 100)


def test_short_key_and_bad_ttl_are_refused() -> None:
    """The state shares the session key's rule, and a TTL must be positive."""
    with pytest.raises(ValueError, match="at least 32"):
        OAuthStates(b"short", MemoryStateLedger())
    with pytest.raises(ValueError, match="TTL"):
        OAuthStates(KEY, MemoryStateLedger(), ttl=0)
