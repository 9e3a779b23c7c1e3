"""The StateLedger contract, run against every ledger: in memory, and on the database
(SQLite and PostgreSQL, the ``db_targets`` plugin) — there the expiry is the row's, and
the test clock only drives the purge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from db_targets import BACKENDS, empty_target
from sqlalchemy import select

from parsec.accounts.oauth_state import MemoryStateLedger, StateLedger
from parsec.accounts.sql_ledger import PURGE_EVERY, SQLStateLedger
from parsec.db import Database, upgrade
from parsec.db.schema import OAuthState

from .conftest import Clock

LedgerFactory = Callable[[Clock], StateLedger]


@pytest.fixture(params=["memory", *BACKENDS])
async def make_ledger(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LedgerFactory]:
    """A factory of each ledger: in memory, and on each database backend."""
    if request.param == "memory":
        yield lambda clock: MemoryStateLedger(clock=clock)
        return
    async with empty_target(request.param, tmp_path) as target, target.database() as db:
        await upgrade(db)
        yield lambda clock: SQLStateLedger(db, clock=clock)


async def test_the_first_claim_wins_and_later_ones_lose(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    """claim is True once per nonce, then False, however often it is repeated."""
    ledger = make_ledger(clock)
    assert await ledger.claim("n1", clock.now + 600)
    assert not await ledger.claim("n1", clock.now + 600)
    assert not await ledger.claim("n1", clock.now + 900)


async def test_nonces_are_independent(make_ledger: LedgerFactory, clock: Clock) -> None:
    """Claiming one nonce does not claim another."""
    ledger = make_ledger(clock)
    assert await ledger.claim("n1", clock.now + 600)
    assert await ledger.claim("n2", clock.now + 600)


async def test_a_nonce_is_remembered_until_it_expires(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    """Up to its expiry, a claimed nonce stays claimed, whatever else is claimed."""
    ledger = make_ledger(clock)
    assert await ledger.claim("n1", clock.now + 600)
    clock.now += 599
    for i in range(50):
        assert await ledger.claim(f"other-{i}", clock.now + 600)
    assert not await ledger.claim("n1", clock.now + 1)


async def test_concurrent_claims_have_exactly_one_winner(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    """Thirty concurrent claims of one nonce: exactly one True."""
    ledger = make_ledger(clock)
    results = await asyncio.gather(*(ledger.claim("hot", clock.now + 600) for _ in range(30)))
    assert results.count(True) == 1


async def test_the_sql_ledger_purges_expired_nonces(migrated: Database) -> None:
    """Once per purge interval a claim deletes the rows expired (past the grace) and
    keeps the live ones."""
    now = time.time()
    clock = [now]
    ledger = SQLStateLedger(migrated, clock=lambda: clock[0])
    assert await ledger.claim("expired", now - 3600)
    assert await ledger.claim("live", now + 600)
    clock[0] += PURGE_EVERY + 1
    assert await ledger.claim("later", clock[0] + 600)
    async with migrated.session() as session:
        kept = set((await session.scalars(select(OAuthState.nonce))).all())
    assert kept == {"live", "later"}
