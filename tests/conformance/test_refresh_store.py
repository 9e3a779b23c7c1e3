"""RefreshStore conformance: the guarantees stated in ``parsec.auth.refresh.RefreshStore``."""

from __future__ import annotations

import asyncio

from parsec.auth.refresh import RefreshStore

from .factories import BackendFactory

TTL = 600


def expiry(backend: BackendFactory, seconds: int = TTL) -> int:
    """A unix time ``seconds`` after the backend's now."""
    return int(backend.now()) + seconds


async def test_first_redemption_succeeds_and_later_ones_fail(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """mark_redeemed is True the first time and False every later time."""
    exp = expiry(backend)

    assert await refresh_store.mark_redeemed("jti-1", exp)
    assert not await refresh_store.mark_redeemed("jti-1", exp)
    assert not await refresh_store.mark_redeemed("jti-1", exp)


async def test_ids_are_independent(refresh_store: RefreshStore, backend: BackendFactory) -> None:
    """Redeeming one jti does not redeem another."""
    exp = expiry(backend)
    await refresh_store.mark_redeemed("jti-1", exp)

    assert await refresh_store.mark_redeemed("jti-2", exp)


async def test_concurrent_redemptions_let_exactly_one_through(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """Of many concurrent redemptions of one jti, exactly one gets True."""
    exp = expiry(backend)

    results = await asyncio.gather(*(refresh_store.mark_redeemed("jti", exp) for _ in range(20)))

    assert results.count(True) == 1


async def test_redemption_is_remembered_until_exp(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """A redeemed jti is still refused one second before its exp."""
    await refresh_store.mark_redeemed("jti", expiry(backend))

    await backend.advance(TTL - 1)

    assert not await refresh_store.mark_redeemed("jti", expiry(backend))


async def test_revoked_family_is_reported(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """A revoked family is revoked; other and unknown families are not."""
    await refresh_store.revoke_family("fid-1", expiry(backend))

    assert await refresh_store.is_family_revoked("fid-1")
    assert not await refresh_store.is_family_revoked("fid-2")


async def test_family_revocation_is_idempotent(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """Revoking a family twice keeps it revoked."""
    await refresh_store.revoke_family("fid", expiry(backend))
    await refresh_store.revoke_family("fid", expiry(backend))

    assert await refresh_store.is_family_revoked("fid")


async def test_family_revocation_lasts_until_exp(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """A family stays revoked one second before its exp."""
    await refresh_store.revoke_family("fid", expiry(backend))

    await backend.advance(TTL - 1)

    assert await refresh_store.is_family_revoked("fid")


async def test_a_later_exp_extends_a_family_revocation(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """Revoking again with a later exp keeps the family revoked past the first exp."""
    await refresh_store.revoke_family("fid", expiry(backend, 10))
    await refresh_store.revoke_family("fid", expiry(backend, TTL))

    await backend.advance(TTL - 1)

    assert await refresh_store.is_family_revoked("fid")


async def test_redeemed_ids_and_revoked_families_do_not_mix(
    refresh_store: RefreshStore, backend: BackendFactory
) -> None:
    """A redeemed jti does not revoke a family of the same text, nor the reverse."""
    await refresh_store.mark_redeemed("same", expiry(backend))
    assert not await refresh_store.is_family_revoked("same")

    await refresh_store.revoke_family("other", expiry(backend))
    assert await refresh_store.mark_redeemed("other", expiry(backend))
