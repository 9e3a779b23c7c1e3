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
