"""The orgs' NATS accounts on the database (``SqlAccountStore``, SQLite and
PostgreSQL): the orgs row's ``nats_*`` columns, an audit event per save, and an
``AccountPool`` provisioning through it on a private operator-mode nats-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from operator_mode import StartOperatorServer, operator_servers, options_for
from sqlalchemy import select

from parsec.accounts.directory import Directory
from parsec.accounts.nats_accounts import SqlAccountStore, UnknownOrg
from parsec.backends.nats import claims
from parsec.backends.nats.accounts import AccountPool, StoredAccount
from parsec.backends.nats.operator import bootstrap
from parsec.db import Database
from parsec.db.schema import AuditEvent, Org


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartOperatorServer]:
    async with operator_servers(tmp_path) as start:
        yield start


async def _org(db: Database, login: str) -> uuid.UUID:
    """A user's personal org, made by a first login."""
    await Directory(db).login("github", login, username=login, email=None, name=None)
    async with db.session() as session:
        org = await session.scalar(select(Org).where(Org.slug == login))
    assert org is not None
    return org.id


async def _audit(db: Database, org_id: uuid.UUID) -> list[tuple[str, str | None, str]]:
    async with db.session() as session:
        events = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.org_id == org_id, AuditEvent.action.like("org.nats%"))
            .order_by(AuditEvent.id)
        )
        return [(e.action, e.target, e.actor_kind) for e in events]


async def test_the_store_keeps_an_account_on_the_org_row(migrated: Database) -> None:
    """None until saved; then the three columns, and an audit event per save that
    names the account's public key and never the seed."""
    store = SqlAccountStore(migrated)
    org_id = await _org(migrated, "alice")
    assert await store.load(org_id) is None
    first = StoredAccount("APUBLIC1", "jwt-1", "SASEED1")
    await store.save(org_id, first)
    assert await store.load(org_id) == first
    second = StoredAccount("APUBLIC1", "jwt-2", "SASEED1")
    await store.save(org_id, second)
    assert await store.load(org_id) == second
    assert await _audit(migrated, org_id) == [
        ("org.nats_account_provisioned", "APUBLIC1", "system"),
        ("org.nats_account_resigned", "APUBLIC1", "system"),
    ]


async def test_an_unknown_org_is_refused(migrated: Database) -> None:
    """Loading or saving for an org that does not exist raises UnknownOrg."""
    store = SqlAccountStore(migrated)
    missing = uuid.uuid4()
    with pytest.raises(UnknownOrg):
        await store.load(missing)
    with pytest.raises(UnknownOrg):
        await store.save(missing, StoredAccount("A", "j", "S"))


async def test_a_pool_provisions_through_the_database(
    migrated: Database, start_server: StartOperatorServer
) -> None:
    """A pool over the SQL store provisions each org once into its row; a new pool
    over the same database reuses it."""
    setup = bootstrap("parsec-test")
    server = await start_server(setup)
    store = SqlAccountStore(migrated)
    alice, bob = await _org(migrated, "alice"), await _org(migrated, "bob")
    async with AccountPool(options_for(setup, server.url), store) as pool:
        a, b = await pool.get(alice), await pool.get(bob)
    assert a.public_key != b.public_key
    async with migrated.session() as session:
        row = await session.get(Org, alice)
    assert row is not None
    assert row.nats_account_public_key == a.public_key
    assert row.nats_account_jwt is not None
    assert claims.issuer(row.nats_account_jwt) == setup.operator_public_key
    async with AccountPool(options_for(setup, server.url), store) as again:
        assert (await again.get(alice)).public_key == a.public_key
    assert [action for action, _, _ in await _audit(migrated, alice)] == [
        "org.nats_account_provisioned"
    ]
