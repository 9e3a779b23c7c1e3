"""``Database`` on SQLite and PostgreSQL: what the schema enforces, timestamps in UTC,
sessions and transactions, the lifecycle, and failures that say what went wrong without
a password."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from db_targets import Target
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from parsec.db import Database, DatabaseConfigError, DatabaseUnavailable, upgrade
from parsec.db import database as database_module
from parsec.db.database import DatabaseState
from parsec.db.schema import ApiKey, AuditEvent, Identity, Member, Org, User


async def add_user_and_org(db: Database, slug: str = "acme") -> tuple[User, Org]:
    async with db.transaction() as session:
        user = User(username=f"ana-{uuid.uuid4().hex[:6]}", email="ana@example.test")
        session.add(user)
        await session.flush()
        org = Org(slug=slug, name="Acme", owner_user_id=user.id)
        session.add(org)
    return user, org


async def test_org_slugs_are_unique(migrated: Database) -> None:
    await add_user_and_org(migrated, "acme")
    with pytest.raises(IntegrityError):
        await add_user_and_org(migrated, "acme")


async def test_a_member_role_outside_owner_admin_member_is_refused(migrated: Database) -> None:
    user, org = await add_user_and_org(migrated)
    with pytest.raises(IntegrityError):
        async with migrated.transaction() as session:
            session.add(Member(org_id=org.id, user_id=user.id, role="superuser"))
    async with migrated.transaction() as session:
        session.add(Member(org_id=org.id, user_id=user.id, role="admin"))
    with pytest.raises(IntegrityError):  # one row per (org, user)
        async with migrated.transaction() as session:
            session.add(Member(org_id=org.id, user_id=user.id, role="member"))


async def test_an_identity_belongs_to_one_user(migrated: Database) -> None:
    """(provider, subject) is unique: one GitHub account cannot log in as two users."""
    ana, _ = await add_user_and_org(migrated, "one")
    bob, _ = await add_user_and_org(migrated, "two")
    async with migrated.transaction() as session:
        session.add(Identity(user_id=ana.id, provider="github", subject="583231"))
        session.add(Identity(user_id=ana.id, provider="oidc:https://sso.test", subject="583231"))
    with pytest.raises(IntegrityError):
        async with migrated.transaction() as session:
            session.add(Identity(user_id=bob.id, provider="github", subject="583231"))


async def test_foreign_keys_are_enforced_and_cascade(migrated: Database) -> None:
    """On SQLite too (foreign keys ON): no member of a missing org; deleting an org
    deletes its API keys."""
    user, org = await add_user_and_org(migrated)
    with pytest.raises(IntegrityError):
        async with migrated.transaction() as session:
            session.add(Member(org_id=uuid.uuid4(), user_id=user.id, role="member"))
    async with migrated.transaction() as session:
        session.add(ApiKey(org_id=org.id, name="ci", prefix="pk_abc", key_hash="h", scopes=["x"]))
    async with migrated.transaction() as session:
        await session.delete(await session.get_one(Org, org.id))
    async with migrated.session() as session:
        assert (await session.scalars(select(ApiKey))).all() == []


async def test_timestamps_come_back_aware_and_in_utc(migrated: Database) -> None:
    """A time given in any zone is stored as UTC and read back aware; a naive one is
    refused before it reaches the database."""
    moment = datetime(2026, 12, 7, 16, 30, tzinfo=timezone(timedelta(hours=2)))
    async with migrated.transaction() as session:
        session.add(AuditEvent(actor_kind="system", action="test", at=moment, detail={"n": 1}))
    async with migrated.session() as session:
        event = (await session.scalars(select(AuditEvent))).one()
    assert event.at == moment
    assert event.at.tzinfo is UTC
    assert event.detail == {"n": 1}
    with pytest.raises(StatementError, match="naive datetime"):
        async with migrated.transaction() as session:
            session.add(AuditEvent(actor_kind="system", action="t", at=datetime(2026, 1, 1)))


async def test_a_failing_transaction_leaves_nothing(migrated: Database) -> None:
    async def fail_midway() -> None:
        async with migrated.transaction() as session:
            session.add(User(username="ghost"))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()
    async with migrated.session() as session:
        assert (await session.scalars(select(User))).all() == []


async def test_aclose_is_idempotent_and_a_closed_database_stays_closed(target: Target) -> None:
    db = target.database()
    states = [db.state]
    async with db:
        assert await db.__aenter__() is db  # entering an open database again is a no-op
        states.append(db.state)
    states.append(db.state)
    assert states == [DatabaseState.UNOPENED, DatabaseState.OPEN, DatabaseState.CLOSED]
    await db.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        db.session()
    with pytest.raises(RuntimeError, match="reopened"):
        await db.__aenter__()


async def test_sqlite_files_are_private_and_in_wal_mode(tmp_path: Path) -> None:
    """The missing directory is made 0700 and the file 0600 (API key hashes and NATS
    seeds live there); WAL, foreign keys and a busy timeout are on."""
    path = tmp_path / "state" / "parsec.db"
    async with Database(f"sqlite+aiosqlite:///{path}") as db, db.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
        busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    assert (mode, keys, busy) == ("wal", 1, 5000)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def hold_lock(path: Path, *, whole_file: bool) -> sqlite3.Connection:
    """Another process's view: a connection that keeps the write lock (or, with
    ``whole_file``, the whole file, as a closing process's WAL cleanup does) until it
    closes."""
    holder = sqlite3.connect(path, isolation_level=None)
    if whole_file:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
    if whole_file:
        holder.execute("COMMIT")
    return holder


@pytest.mark.parametrize("step", ["open", "upgrade"])
async def test_sqlite_held_past_the_busy_timeout_waits_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Two processes starting on one state dir: the one that finds the file locked
    longer than SQLite's busy timeout keeps trying, and opens (or migrates) once the
    other lets go, instead of failing with "database is locked"."""
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT", 0.1)
    url = f"sqlite+aiosqlite:///{tmp_path / 'parsec.db'}"
    async with Database(url):
        pass
    db = Database(url)
    if step == "upgrade":
        await db.__aenter__()
    holder = hold_lock(tmp_path / "parsec.db", whole_file=step == "open")
    asyncio.get_running_loop().call_later(0.8, holder.close)
    try:
        if step == "open":
            await db.__aenter__()
        else:
            assert (await upgrade(db)).changed
        assert db.state is DatabaseState.OPEN
    finally:
        holder.close()
        await db.aclose()


async def test_sqlite_locked_for_good_is_unavailable_in_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(database_module, "LOCKED_RETRY_BUDGET", 0.5)
    url = f"sqlite+aiosqlite:///{tmp_path / 'parsec.db'}"
    async with Database(url):
        pass
    holder = hold_lock(tmp_path / "parsec.db", whole_file=True)
    try:
        with pytest.raises(DatabaseUnavailable, match="database is locked"):
            await Database(url).__aenter__()
    finally:
        holder.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_postgres_is_unavailable_without_the_password() -> None:
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{free_port()}/test"
    db = Database(url)
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.__aenter__()
    message = str(caught.value)
    assert "hunter2" not in message
    assert "postgres:***@127.0.0.1" in message
    assert "refused" in message.lower()
    assert db.state is DatabaseState.CLOSED


async def test_a_wrong_postgres_database_says_so() -> None:
    db = Database("postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/no_such_db_here")
    with pytest.raises(DatabaseUnavailable, match='"no_such_db_here" does not exist') as caught:
        await db.__aenter__()
    assert "hunter2" not in str(caught.value)


async def test_an_sqlite_file_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseUnavailable, match="cannot create the SQLite database"):
        await Database(f"sqlite+aiosqlite:///{blocker / 'sub' / 'parsec.db'}").__aenter__()


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/x", "sqlite+aiosqlite:///:memory:", "nonsense"]
)
def test_a_url_parsec_cannot_use_is_refused_at_once(url: str) -> None:
    with pytest.raises(DatabaseConfigError) as caught:
        Database(url)
    assert "hunter2" not in str(caught.value)
    assert caught.value.exit_code == 2
