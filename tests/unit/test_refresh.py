"""Refresh rotation: a new refresh per redemption, and reuse revokes the whole family."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parsec.auth import jws
from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ACCESS, REFRESH, ParsecTokens
from parsec.auth.refresh import PRUNE_INTERVAL, MemoryRefreshStore, RotatedCredentials, rotate
from parsec.auth.revocation import Revocations
from parsec.auth.revocation_store import MemoryRevocationStore
from parsec.auth.scopes import Scope
from parsec.errors import ParsecError

NOW = 1_700_000_000
CHANNEL = "private:app.jobs.42"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Channels:
    """The channel TTLs ``rotate`` asks for; a missing channel raises NOT_FOUND."""

    def __init__(self) -> None:
        self.ttls: dict[str, float] = {CHANNEL: 900}

    async def ttl(self, name: str) -> float:
        if name not in self.ttls:
            raise ParsecError("PARSEC_CHANNEL_NOT_FOUND", f"no channel {name}")
        return self.ttls[name]


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
def store(clock: FakeClock) -> MemoryRefreshStore:
    return MemoryRefreshStore(clock=clock)


@pytest.fixture
def channels() -> Channels:
    return Channels()


@pytest.fixture
def revocations(clock: FakeClock) -> Revocations:
    return Revocations(MemoryRevocationStore(), clock=clock)


class Rotator:
    """``rotate`` bound to the test's tokens, stores and channels."""

    def __init__(
        self,
        tokens: ParsecTokens,
        store: MemoryRefreshStore,
        revocations: Revocations,
        channels: Channels,
    ) -> None:
        self.tokens, self.store, self.channels = tokens, store, channels
        self.revocations = revocations

    async def __call__(self, refresh_token: str) -> RotatedCredentials:
        return await rotate(
            self.tokens,
            self.store,
            self.revocations,
            refresh_token,
            channel_ttl=self.channels.ttl,
        )

    async def refused(self, refresh_token: str) -> str:
        """The PARSEC_* code rotating ``refresh_token`` raises."""
        with pytest.raises(ParsecError) as caught:
            await self(refresh_token)
        return caught.value.code


@pytest.fixture
def redeem(
    tokens: ParsecTokens, store: MemoryRefreshStore, revocations: Revocations, channels: Channels
) -> Rotator:
    return Rotator(tokens, store, revocations, channels)


SCOPES = (Scope("private:app.**", ("subscribe",)), Scope(CHANNEL, ("publish",), deny=True))


async def test_rotation_returns_a_new_refresh_in_the_same_family(
    tokens: ParsecTokens, redeem: Rotator
) -> None:
    """rotated is true; the new refresh has the same fid, a new jti and the same grants."""
    first = tokens.issue_refresh("alice", CHANNEL, SCOPES, ttl=900)

    result = await redeem(first.token)

    assert result.rotated
    new = tokens.verify(result.refresh_token, REFRESH)
    assert new.fid == first.claims.fid
    assert new.jti != first.claims.jti
    assert (new.sub, new.chs, new.scopes) == ("alice", (CHANNEL,), SCOPES)
    assert result.refresh_expires == new.exp == NOW + 900


async def test_rotation_returns_an_access_token_for_the_channel(
    tokens: ParsecTokens, redeem: Rotator
) -> None:
    """The new access token names the channel, keeps the scopes and lives 5 minutes."""
    first = tokens.issue_refresh("alice", CHANNEL, SCOPES, ttl=900)

    result = await redeem(first.token)

    access = tokens.verify(result.access_token, ACCESS)
    assert (access.sub, access.chs, access.scopes) == ("alice", (CHANNEL,), SCOPES)
    assert result.access_expires == access.exp == NOW + 300
    assert access.authorizes(CHANNEL, "subscribe")
    assert not access.authorizes(CHANNEL, "publish")


async def test_access_never_outlives_the_new_refresh(
    tokens: ParsecTokens, redeem: Rotator, channels: Channels
) -> None:
    """A channel TTL under the access TTL cuts both tokens at the same exp."""
    channels.ttls[CHANNEL] = 30
    first = tokens.issue_refresh("alice", CHANNEL, ttl=30)

    result = await redeem(first.token)

    assert result.refresh_expires == NOW + 30
    assert result.access_expires == NOW + 30


async def test_a_chain_of_rotations_keeps_working(
    tokens: ParsecTokens, redeem: Rotator, clock: FakeClock
) -> None:
    """Each new refresh can be redeemed once, for as long as the chain goes on."""
    token = tokens.issue_refresh("alice", CHANNEL, ttl=900).token
    for _ in range(5):
        clock.now += 600
        token = (await redeem(token)).refresh_token

    assert tokens.verify(token, REFRESH).exp == int(clock.now) + 900


async def test_redeeming_twice_revokes_the_family(tokens: ParsecTokens, redeem: Rotator) -> None:
    """The second redemption is denied, and so is every later token of the family."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    second = await redeem(first.token)

    assert await redeem.refused(first.token) == "PARSEC_AUTH_DENIED"
    assert await redeem.refused(second.refresh_token) == "PARSEC_AUTH_DENIED"
    assert await redeem.refused(first.token) == "PARSEC_AUTH_DENIED"


async def test_access_tokens_carry_their_family_and_die_with_it(
    tokens: ParsecTokens, redeem: Rotator, revocations: Revocations
) -> None:
    """Every access token of a family carries its fid; once a reuse revokes the family,
    each of them (issued before or by the rotation) is refused as revoked."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    rotated = await redeem(first.token)
    access = tokens.verify(rotated.access_token, ACCESS)
    assert access.fid == first.claims.fid
    revocations.check(access)

    assert await redeem.refused(first.token) == "PARSEC_AUTH_DENIED"

    with pytest.raises(ParsecError) as caught:
        revocations.check(access)
    assert caught.value.code == "PARSEC_AUTH_DENIED"
    assert "family" in caught.value.message


async def test_a_revoked_user_cannot_redeem_its_refresh_tokens(
    tokens: ParsecTokens, redeem: Rotator, revocations: Revocations, clock: FakeClock
) -> None:
    """A refresh token of a user whose tokens were revoked mints nothing: a refresh token
    is one of the user's tokens, so it cannot outlive the revocation through rotation."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    other = tokens.issue_refresh("bob", CHANNEL, ttl=900)

    await revocations.revoke_user("alice", cutoff=NOW, until=NOW + 3600)

    assert await redeem.refused(first.token) == "PARSEC_AUTH_DENIED"
    assert (await redeem(other.token)).rotated


async def test_reuse_in_the_middle_of_a_chain_kills_its_newest_token(
    tokens: ParsecTokens, redeem: Rotator
) -> None:
    """Replaying an older token of a chain revokes the newest one too."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    second = await redeem(first.token)
    third = await redeem(second.refresh_token)

    assert await redeem.refused(second.refresh_token) == "PARSEC_AUTH_DENIED"
    assert await redeem.refused(third.refresh_token) == "PARSEC_AUTH_DENIED"


async def test_family_stays_revoked_after_the_reused_token_expires(
    tokens: ParsecTokens, redeem: Rotator, clock: FakeClock
) -> None:
    """A newer token of a revoked family is refused even once the replayed one has expired."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    clock.now = NOW + 800
    second = await redeem(first.token)
    clock.now = NOW + 850
    assert await redeem.refused(first.token) == "PARSEC_AUTH_DENIED"

    clock.now = NOW + 1000 + PRUNE_INTERVAL
    assert await redeem.refused(second.refresh_token) == "PARSEC_AUTH_DENIED"


async def test_reuse_leaves_other_families_alone(tokens: ParsecTokens, redeem: Rotator) -> None:
    """Revoking one family does not touch another one of the same user and channel."""
    mine = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    other = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    await redeem(mine.token)
    await redeem.refused(mine.token)

    assert (await redeem(other.token)).rotated


async def test_concurrent_redemptions_let_exactly_one_through(
    tokens: ParsecTokens, redeem: Rotator
) -> None:
    """Two racing redemptions of one token: one rotates, the other is denied."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)

    results = await asyncio.gather(redeem(first.token), redeem(first.token), return_exceptions=True)

    assert sum(isinstance(result, RotatedCredentials) for result in results) == 1
    denied = [result for result in results if isinstance(result, ParsecError)]
    assert [error.code for error in denied] == ["PARSEC_AUTH_DENIED"]


async def test_missing_channel_refuses_without_spending_the_token(
    tokens: ParsecTokens, redeem: Rotator, channels: Channels
) -> None:
    """channel_ttl's error comes through, and the token still works once the channel is back."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    ttl = channels.ttls.pop(CHANNEL)

    assert await redeem.refused(first.token) == "PARSEC_CHANNEL_NOT_FOUND"
    channels.ttls[CHANNEL] = ttl
    assert (await redeem(first.token)).rotated


async def test_expired_refresh_token_is_refused(
    tokens: ParsecTokens, redeem: Rotator, clock: FakeClock
) -> None:
    """A refresh token past its exp gets PARSEC_AUTH_EXPIRED."""
    first = tokens.issue_refresh("alice", CHANNEL, ttl=900)
    clock.now = NOW + 900

    assert await redeem.refused(first.token) == "PARSEC_AUTH_EXPIRED"


async def test_other_token_types_are_refused(tokens: ParsecTokens, redeem: Rotator) -> None:
    """Access and mgmt tokens cannot be redeemed; neither can garbage."""
    assert await redeem.refused(tokens.issue_access("alice", [CHANNEL]).token) == (
        "PARSEC_AUTH_DENIED"
    )
    assert await redeem.refused(tokens.issue_mgmt("operator").token) == "PARSEC_AUTH_DENIED"
    assert await redeem.refused("not-a-token") == "PARSEC_AUTH_DENIED"


@pytest.mark.parametrize("chs", [[], [CHANNEL, "private:app.jobs.43"]])
async def test_refresh_token_must_name_one_channel(
    ring: KeyRing, redeem: Rotator, chs: list[str]
) -> None:
    """A refresh token with no channel or several is denied."""
    payload = {"sub": "a", "typ": "refresh", "chs": chs, "jti": "j", "fid": "f"}
    token = jws.sign({**payload, "iat": NOW, "exp": NOW + 900}, ring.active)

    assert await redeem.refused(token) == "PARSEC_AUTH_DENIED"


async def test_jti_without_family_is_denied(ring: KeyRing, redeem: Rotator) -> None:
    """A refresh token with a jti but no fid is denied."""
    payload = {"sub": "a", "typ": "refresh", "chs": [CHANNEL], "jti": "j"}
    token = jws.sign({**payload, "iat": NOW, "exp": NOW + 900}, ring.active)

    assert await redeem.refused(token) == "PARSEC_AUTH_DENIED"


async def test_legacy_refresh_without_jti_gets_only_an_access_token(
    tokens: ParsecTokens, ring: KeyRing, redeem: Rotator
) -> None:
    """No jti: an access token not past the refresh's exp, no new refresh, rotated false."""
    payload = {"sub": "alice", "typ": "refresh", "chs": [CHANNEL], "iat": NOW, "exp": NOW + 120}
    legacy = jws.sign(payload, ring.active)

    result = await redeem(legacy)

    assert (result.rotated, result.refresh_token, result.refresh_expires) == (False, "", 0)
    assert result.access_expires == NOW + 120
    assert tokens.verify(result.access_token, ACCESS).chs == (CHANNEL,)


# -- the memory store -----------------------------------------------------------------------------


async def test_memory_store_forgets_redeemed_ids_after_their_exp(
    store: MemoryRefreshStore, clock: FakeClock
) -> None:
    """A jti is remembered until its exp, then forgotten."""
    assert await store.mark_redeemed("j", NOW + 10)
    clock.now = NOW + 9
    assert not await store.mark_redeemed("j", NOW + 10)
    clock.now = NOW + 10
    assert await store.mark_redeemed("j", NOW + 20)


async def test_memory_store_prunes_expired_entries(
    store: MemoryRefreshStore, clock: FakeClock
) -> None:
    """Expired ids are dropped, so memory follows the live tokens only."""
    await store.mark_redeemed("j1", NOW + 10)
    await store.mark_redeemed("j2", NOW + 10 * int(PRUNE_INTERVAL))
    assert len(store) == 2

    clock.now = NOW + PRUNE_INTERVAL
    assert not await store.mark_redeemed("j2", NOW + 10 * int(PRUNE_INTERVAL))
    assert len(store) == 1
