"""Revocation of one token by jti and of every token of a user up to a cutoff."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsec.auth import jws
from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import MAX_MGMT_TTL, ParsecClaims, ParsecTokens
from parsec.auth.revocation import PRUNE_INTERVAL, MemoryRevocationStore, check_not_revoked
from parsec.errors import ParsecError

NOW = 1_700_000_000
CHANNEL = "private:app.jobs.42"


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


@pytest.fixture
def store(clock: FakeClock) -> MemoryRevocationStore:
    return MemoryRevocationStore(clock=clock)


DENIED = "PARSEC_AUTH_DENIED"


async def refusal(claims: ParsecClaims, store: MemoryRevocationStore) -> str | None:
    """The PARSEC_* code check_not_revoked raises for ``claims``, or None if it accepts them."""
    try:
        await check_not_revoked(claims, store)
    except ParsecError as exc:
        return exc.code
    return None


async def test_revoked_jti_is_refused_and_others_are_not(
    tokens: ParsecTokens, store: MemoryRevocationStore
) -> None:
    """Revoking one token's jti refuses that token only."""
    revoked = tokens.issue_access("alice", [CHANNEL]).claims
    other = tokens.issue_access("alice", [CHANNEL]).claims
    assert revoked.jti is not None

    await store.revoke(revoked.jti, user="alice", reason="leaked", until=revoked.exp)

    assert await refusal(revoked, store) == DENIED
    assert await refusal(other, store) is None


async def test_user_cutoff_refuses_tokens_issued_at_or_before_it(
    tokens: ParsecTokens, store: MemoryRevocationStore, clock: FakeClock
) -> None:
    """Tokens with iat <= cutoff are refused; later ones and other users' are accepted."""
    before = tokens.issue_mgmt("alice").claims
    clock.now = NOW + 10
    at_cutoff = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims
    bob = tokens.issue_access("bob", [CHANNEL]).claims

    await store.revoke_user("alice", cutoff=NOW + 10, reason="offboarded")
    clock.now = NOW + 11
    after = tokens.issue_access("alice", [CHANNEL]).claims

    assert await refusal(before, store) == DENIED
    assert await refusal(at_cutoff, store) == DENIED
    assert await refusal(after, store) is None
    assert await refusal(bob, store) is None


async def test_legacy_token_without_jti_is_checked_against_the_cutoff(
    tokens: ParsecTokens, ring: KeyRing, store: MemoryRevocationStore
) -> None:
    """A token with no jti is still refused by its user's cutoff."""
    payload = {"sub": "alice", "typ": "refresh", "chs": [CHANNEL], "iat": NOW, "exp": NOW + 60}
    claims = tokens.verify(jws.sign(payload, ring.active))
    assert await refusal(claims, store) is None

    await store.revoke_user("alice", cutoff=NOW)

    assert await refusal(claims, store) == DENIED


async def test_cutoffs_only_move_forward(store: MemoryRevocationStore) -> None:
    """A later cutoff replaces an earlier one; an earlier one changes nothing."""
    await store.revoke_user("alice", cutoff=NOW + 10)
    await store.revoke_user("alice", cutoff=NOW)
    assert await store.user_cutoff("alice") == NOW + 10

    await store.revoke_user("alice", cutoff=NOW + 20)
    assert await store.user_cutoff("alice") == NOW + 20
    assert await store.user_cutoff("bob") is None


async def test_empty_ids_are_invalid_arguments(store: MemoryRevocationStore) -> None:
    """Revoking an empty jti or user raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        await store.revoke("", until=NOW + 10)
    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    with pytest.raises(ParsecError) as caught:
        await store.revoke_user("", cutoff=NOW)
    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


async def test_memory_store_forgets_revocations_that_ran_out(
    store: MemoryRevocationStore, clock: FakeClock
) -> None:
    """A jti is forgotten at ``until``; a user cutoff after the longest token lifetime."""
    await store.revoke("j1", until=NOW + 10)
    await store.revoke("j2", until=NOW + 10 * int(PRUNE_INTERVAL))
    await store.revoke_user("alice", cutoff=NOW)
    assert len(store) == 3

    clock.now = NOW + PRUNE_INTERVAL
    assert not await store.is_revoked("j1")
    assert await store.is_revoked("j2")
    assert len(store) == 2

    clock.now = NOW + MAX_MGMT_TTL
    assert await store.user_cutoff("alice") is None
    assert len(store) == 0


async def test_user_retention_is_configurable(clock: FakeClock) -> None:
    """user_retention sets how long a cutoff is kept."""
    store = MemoryRevocationStore(clock=clock, user_retention=100)
    await store.revoke_user("alice", cutoff=NOW)

    clock.now = NOW + 99
    assert await store.user_cutoff("alice") == NOW
    clock.now = NOW + 100
    assert await store.user_cutoff("alice") is None
