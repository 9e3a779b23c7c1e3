"""RevocationStore conformance: the guarantees stated in ``parsec.auth.revocation``."""

from __future__ import annotations

import pytest

from parsec.auth.revocation import RevocationStore
from parsec.errors import ParsecError

from .factories import BackendFactory

TTL = 600


def expiry(backend: BackendFactory, seconds: int = TTL) -> int:
    """A unix time ``seconds`` after the backend's now."""
    return int(backend.now()) + seconds


async def test_revoked_id_is_reported(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """A revoked jti is revoked; other and unknown ids are not."""
    await revocation_store.revoke("jti-1", user="alice", reason="leaked", until=expiry(backend))

    assert await revocation_store.is_revoked("jti-1")
    assert not await revocation_store.is_revoked("jti-2")


async def test_revocation_is_idempotent(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """Revoking a jti twice keeps it revoked."""
    await revocation_store.revoke("jti", until=expiry(backend))
    await revocation_store.revoke("jti", until=expiry(backend))

    assert await revocation_store.is_revoked("jti")


async def test_revocation_lasts_until_its_end(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """A revoked jti is still revoked one second before ``until``."""
    await revocation_store.revoke("jti", until=expiry(backend))

    await backend.advance(TTL - 1)

    assert await revocation_store.is_revoked("jti")


async def test_a_later_end_extends_a_revocation(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """Revoking again with a later ``until`` keeps the jti revoked past the first one."""
    await revocation_store.revoke("jti", until=expiry(backend, 10))
    await revocation_store.revoke("jti", until=expiry(backend, TTL))

    await backend.advance(TTL - 1)

    assert await revocation_store.is_revoked("jti")


async def test_user_cutoff_is_reported(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """A revoked user has its cutoff; other users have none."""
    cutoff = int(backend.now())
    await revocation_store.revoke_user("alice", cutoff=cutoff, reason="offboarded")

    assert await revocation_store.user_cutoff("alice") == cutoff
    assert await revocation_store.user_cutoff("bob") is None


async def test_user_cutoff_only_moves_forward(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """A later cutoff replaces the current one; an earlier one changes nothing."""
    now = int(backend.now())
    await revocation_store.revoke_user("alice", cutoff=now)
    await revocation_store.revoke_user("alice", cutoff=now + 10)
    await revocation_store.revoke_user("alice", cutoff=now + 5)

    assert await revocation_store.user_cutoff("alice") == now + 10


async def test_user_cutoff_outlives_the_tokens_of_the_moment(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """A cutoff is still there a day later: long-lived mgmt tokens stay refused."""
    cutoff = int(backend.now())
    await revocation_store.revoke_user("alice", cutoff=cutoff)

    await backend.advance(86400)

    assert await revocation_store.user_cutoff("alice") == cutoff


async def test_ids_and_users_do_not_mix(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """Revoking a jti sets no user cutoff of the same text, nor the reverse."""
    await revocation_store.revoke("same", user="same", until=expiry(backend))
    assert await revocation_store.user_cutoff("same") is None

    await revocation_store.revoke_user("other", cutoff=int(backend.now()))
    assert not await revocation_store.is_revoked("other")


async def test_empty_jti_is_an_invalid_argument(
    revocation_store: RevocationStore, backend: BackendFactory
) -> None:
    """Revoking an empty jti raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        await revocation_store.revoke("", until=expiry(backend))

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


async def test_empty_user_is_an_invalid_argument(revocation_store: RevocationStore) -> None:
    """Revoking an empty user raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        await revocation_store.revoke_user("", cutoff=0)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
