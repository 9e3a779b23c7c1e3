"""Per-org NATS accounts (``AccountPool``) on a private nats-server in operator mode:
provisioning on first use, reuse after a restart, isolation between orgs at the broker,
user credentials for native clients, and healing after an operator-key rotation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats_helpers import WAIT_SECONDS
from operator_mode import OperatorServer, StartOperatorServer, operator_servers, options_for

import nats
from parsec.backends.nats import claims
from parsec.backends.nats.accounts import (
    AccountPool,
    MemoryAccountStore,
    OrgAccount,
    UserCredentials,
)
from parsec.backends.nats.connection import barrier
from parsec.backends.nats.operator import OperatorSetup, bootstrap
from parsec.errors import ParsecClientError
from parsec.testing import free_port

ORG_A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
ORG_B = uuid.UUID("00000000-0000-4000-8000-00000000000b")


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartOperatorServer]:
    async with operator_servers(tmp_path) as start:
        yield start


@pytest.fixture
def setup() -> OperatorSetup:
    return bootstrap("parsec-test")


@pytest.fixture
async def server(start_server: StartOperatorServer, setup: OperatorSetup) -> OperatorServer:
    return await start_server(setup)


@pytest.fixture
def store() -> MemoryAccountStore:
    return MemoryAccountStore()


@pytest.fixture
async def pool(
    server: OperatorServer, setup: OperatorSetup, store: MemoryAccountStore
) -> AsyncIterator[AccountPool]:
    async with AccountPool(options_for(setup, server.url), store) as instance:
        yield instance


class Inbox:
    """A subscription's messages, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(self, msg: Msg) -> None:
        self.queue.put_nowait(msg.data)

    async def next(self) -> bytes:
        async with asyncio.timeout(WAIT_SECONDS):
            return await self.queue.get()


async def subscribed(client: Client, subject: str) -> Inbox:
    inbox = Inbox()
    await client.subscribe(subject, cb=inbox.handle)
    await barrier(client, 5)
    return inbox


async def publish(client: Client, subject: str, data: bytes) -> None:
    await client.publish(subject, data)
    await barrier(client, 5)


@pytest.fixture
async def native(tmp_path: Path) -> AsyncIterator[list[Client]]:
    """Plain nats-py clients a test connects (closed after it)."""
    clients: list[Client] = []
    yield clients
    for client in clients:
        await client.close()


async def connect_native(
    clients: list[Client], url: str, creds: UserCredentials, where: Path
) -> Client:
    """A plain nats-py client logged in with ``creds``' ``.creds`` file, as a native
    NATS client would be."""
    path = where / f"{creds.public_key}.creds"
    path.write_text(creds.creds)
    client = Client()
    clients.append(client)  # closed even when connecting fails (its socket too)
    await client.connect(url, user_credentials=str(path), allow_reconnect=False)
    return client


async def test_an_org_gets_an_account_on_first_use(
    pool: AccountPool, store: MemoryAccountStore, setup: OperatorSetup
) -> None:
    """The first ``get`` makes, signs, stores and pushes the org's account, and
    connects to it; later calls return the same account."""
    assert store.accounts == {}
    account = await pool.get(ORG_A)
    stored = store.accounts[ORG_A]
    assert account.public_key == stored.public_key
    assert account.public_key.startswith("A")
    found = claims.decode(stored.jwt)
    assert found["iss"] == setup.operator_public_key
    assert found["sub"] == account.public_key
    assert found["nats"]["signing_keys"] == [account.signing_key.public_key]
    assert account.connection.connected
    inbox = await subscribed(account.client, "hello")
    await publish(account.client, "hello", b"world")
    assert await inbox.next() == b"world"
    assert await pool.get(ORG_A) is account
    assert store.saves == 1


async def test_concurrent_gets_for_one_org_provision_once(
    pool: AccountPool, store: MemoryAccountStore
) -> None:
    """Five ``get`` at once for a new org make one account and one connection."""
    accounts = await asyncio.gather(*(pool.get(ORG_A) for _ in range(5)))
    assert all(account is accounts[0] for account in accounts)
    assert store.saves == 1


async def test_a_restarted_pool_reuses_the_stored_account(
    server: OperatorServer, setup: OperatorSetup, store: MemoryAccountStore
) -> None:
    """A new pool over the same store connects to the stored account: nothing is made,
    signed or saved again."""
    async with AccountPool(options_for(setup, server.url), store) as first:
        before = await first.get(ORG_A)
    assert not before.connection.connected
    stored = store.accounts[ORG_A]
    async with AccountPool(options_for(setup, server.url), store) as second:
        after = await second.get(ORG_A)
        assert after.connection.connected
    assert after.public_key == before.public_key
    assert store.accounts[ORG_A] == stored
    assert store.saves == 1


async def test_two_orgs_never_hear_each_other(pool: AccountPool) -> None:
    """The server users of two orgs use one subject name; each hears only its own."""
    a, b = await pool.get(ORG_A), await pool.get(ORG_B)
    assert a.public_key != b.public_key
    heard_a = await subscribed(a.client, "chat.room")
    heard_b = await subscribed(b.client, "chat.room")
    await publish(a.client, "chat.room", b"from A")
    await publish(b.client, "chat.room", b"from B")
    assert await heard_a.next() == b"from A"
    assert await heard_b.next() == b"from B"
    await publish(b.client, "chat.room", b"B again")
    await publish(a.client, "chat.room", b"A again")
    assert await heard_a.next() == b"A again"  # never B's, published first
    assert await heard_b.next() == b"B again"
    assert heard_a.queue.empty()
    assert heard_b.queue.empty()


async def test_native_clients_with_org_credentials_stay_in_their_org(
    pool: AccountPool, server: OperatorServer, native: list[Client], tmp_path: Path
) -> None:
    """A native client with org A's credentials does not receive what org B publishes
    on the same subject, and the other way round; each receives its own org's."""
    creds_a = await pool.user_credentials(ORG_A, "alice", ttl=600)
    creds_b = await pool.user_credentials(ORG_B, "bob", ttl=600)
    alice = await connect_native(native, server.url, creds_a, tmp_path)
    bob = await connect_native(native, server.url, creds_b, tmp_path)
    heard_alice = await subscribed(alice, "orders.new")
    heard_bob = await subscribed(bob, "orders.new")
    a, b = await pool.get(ORG_A), await pool.get(ORG_B)
    await publish(b.client, "orders.new", b"B's order")
    await publish(a.client, "orders.new", b"A's order")
    assert await heard_alice.next() == b"A's order"
    assert await heard_bob.next() == b"B's order"
    await publish(alice, "orders.new", b"alice's")
    await publish(bob, "orders.new", b"bob's")
    assert await heard_alice.next() == b"alice's"
    assert await heard_bob.next() == b"bob's"
    assert heard_alice.queue.empty()
    assert heard_bob.queue.empty()


async def test_user_credentials_carry_the_permissions_they_were_given(
    pool: AccountPool, server: OperatorServer, native: list[Client], tmp_path: Path
) -> None:
    """A user allowed to subscribe to ``chat.>`` only hears ``chat.…``; the server
    refuses its subscription elsewhere."""
    creds = await pool.user_credentials(
        ORG_A, "reader", allow_pub=["chat.>"], allow_sub=["chat.>"], ttl=600
    )
    account = await pool.get(ORG_A)
    found = claims.decode(creds.jwt)
    assert found["iss"] == account.signing_key.public_key
    assert found["nats"]["issuer_account"] == account.public_key
    assert "-----BEGIN NATS USER JWT-----" in creds.creds
    assert creds.seed in creds.creds
    assert creds.seed not in repr(creds)
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    path = tmp_path / "reader.creds"
    path.write_text(creds.creds)
    reader = Client()
    native.append(reader)
    await reader.connect(
        server.url, user_credentials=str(path), allow_reconnect=False, error_cb=on_error
    )
    heard = await subscribed(reader, "chat.general")
    await publish(account.client, "chat.general", b"hi")
    assert await heard.next() == b"hi"
    await reader.subscribe("billing.>")
    async with asyncio.timeout(WAIT_SECONDS):
        refused = await errors.get()
    assert "permissions violation" in str(refused).lower()


async def test_expired_user_credentials_are_refused(
    server: OperatorServer, setup: OperatorSetup, store: MemoryAccountStore, tmp_path: Path
) -> None:
    """Credentials minted an hour ago with a 10-minute TTL no longer connect; fresh
    ones do."""
    hour_ago = AccountPool(options_for(setup, server.url), store, clock=lambda: time.time() - 3600)
    async with hour_ago, AccountPool(options_for(setup, server.url), store) as now:
        stale = await hour_ago.user_credentials(ORG_A, "late", ttl=600)
        fresh = await now.user_credentials(ORG_A, "on-time", ttl=600)
    assert stale.expires_at < time.time() < fresh.expires_at
    clients: list[Client] = []
    try:
        with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
            await connect_native(clients, server.url, stale, tmp_path)
        client = await connect_native(clients, server.url, fresh, tmp_path)
        assert client.is_connected
    finally:
        for client in clients:
            await client.close()


async def test_a_rotated_operator_key_reprovisions_the_account(
    server: OperatorServer,
    setup: OperatorSetup,
    store: MemoryAccountStore,
    native: list[Client],
    tmp_path: Path,
) -> None:
    """After the operator key rotates (the server trusts a new operator; the pool's
    options carry its seed), ``get`` re-signs the stored account with the new key,
    pushes it and connects: the org keeps its account and its signing key, so user
    credentials issued before the rotation still connect."""
    async with AccountPool(options_for(setup, server.url), store) as old_pool:
        before = await old_pool.get(ORG_A)
        old_creds = await old_pool.user_credentials(ORG_A, "alice", ttl=600)
    rotated = bootstrap("parsec-test", system_account_seed=setup.system_account_seed)
    await server.restart(setup=rotated)
    async with AccountPool(options_for(rotated, server.url), store) as new_pool:
        after = await new_pool.get(ORG_A)
        assert after.public_key == before.public_key
        assert claims.issuer(store.accounts[ORG_A].jwt) == rotated.operator_public_key
        assert store.saves == 2
        heard = await subscribed(after.client, "after.rotation")
        alice = await connect_native(native, server.url, old_creds, tmp_path)
        await publish(alice, "after.rotation", b"still here")
        assert await heard.next() == b"still here"


async def test_an_account_the_server_lost_is_pushed_again(
    server: OperatorServer, setup: OperatorSetup, store: MemoryAccountStore
) -> None:
    """When the server refuses a stored account signed by the current operator
    ("Authorization Violation": its resolver lost it), ``get`` re-signs and pushes it
    once, then connects."""
    async with AccountPool(options_for(setup, server.url), store) as first:
        before = await first.get(ORG_A)
    await server.restart(fresh_resolver=True)
    async with AccountPool(options_for(setup, server.url), store) as second:
        after = await second.get(ORG_A)
        assert after.connection.connected
    assert after.public_key == before.public_key
    assert store.saves == 2


async def test_an_account_refused_after_reprovisioning_fails_loudly(
    server: OperatorServer, setup: OperatorSetup, store: MemoryAccountStore
) -> None:
    """A pool whose operator the server does not trust (but whose system account it
    knows) gets a refusal twice: ``get`` raises PARSEC_BROKER_INTERNAL naming the org,
    caches nothing, and shows no seed."""
    stranger = bootstrap("stranger")
    options = options_for(setup, server.url)
    options.operator_seed = stranger.operator_seed
    options.operator_jwt = stranger.operator_jwt
    async with AccountPool(options, store) as pool:
        for _attempt in range(2):  # nothing cached: the second get tries again
            with pytest.raises(ParsecClientError) as raised:
                await pool.get(ORG_A)
            error = raised.value.parsec_error
            assert error.code == "PARSEC_BROKER_INTERNAL"
            assert str(ORG_A) in error.message
            assert stranger.operator_public_key in error.message
            assert stranger.operator_seed not in error.message


async def test_a_system_account_the_server_does_not_know_is_a_clear_error(
    server: OperatorServer, store: MemoryAccountStore
) -> None:
    """System-account credentials of another operator: PARSEC_BROKER_INTERNAL naming
    the [nats] keys to check."""
    stranger = bootstrap("stranger")
    async with AccountPool(options_for(stranger, server.url), store) as pool:
        with pytest.raises(ParsecClientError) as raised:
            await pool.get(ORG_A)
    assert raised.value.parsec_error.code == "PARSEC_BROKER_INTERNAL"
    assert "system_account_seed" in raised.value.parsec_error.message
    assert stranger.system_account_seed not in raised.value.parsec_error.message


async def test_an_unreachable_nats_is_not_ready(
    setup: OperatorSetup, store: MemoryAccountStore
) -> None:
    """No NATS at the URL: ``get`` raises PARSEC_BROKER_NOT_READY within its bound."""
    url = f"nats://127.0.0.1:{free_port()}"
    async with AccountPool(options_for(setup, url), store, within=0.5) as pool:
        with pytest.raises(ParsecClientError) as raised:
            await pool.get(ORG_A)
    assert raised.value.parsec_error.code == "PARSEC_BROKER_NOT_READY"


async def test_forget_closes_and_evicts(pool: AccountPool, store: MemoryAccountStore) -> None:
    """``forget`` closes the org's connection; a later ``get`` reconnects to the same
    stored account (no new provisioning)."""
    first = await pool.get(ORG_A)
    await pool.forget(ORG_A)
    await pool.forget(ORG_A)  # not held any more: nothing happens
    assert not first.connection.connected
    second = await pool.get(ORG_A)
    assert second is not first
    assert second.public_key == first.public_key
    assert second.connection.connected
    assert store.saves == 1


async def test_aclose_is_idempotent_and_final(pool: AccountPool) -> None:
    """``aclose`` closes every connection; twice is fine; the pool serves no more."""
    accounts: list[OrgAccount] = [await pool.get(ORG_A), await pool.get(ORG_B)]
    await pool.aclose()
    await pool.aclose()
    assert not any(account.connection.connected for account in accounts)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.get(ORG_A)
    with pytest.raises(RuntimeError, match="cannot be reopened"):
        async with pool:
            pass


async def test_bad_user_credential_requests_are_refused(pool: AccountPool) -> None:
    """A TTL of zero or a subject with a space is a ValueError, before anything is
    made."""
    with pytest.raises(ValueError, match="ttl"):
        await pool.user_credentials(ORG_A, "x", ttl=0)
    with pytest.raises(ValueError, match="subject"):
        await pool.user_credentials(ORG_A, "x", allow_sub=["a b"], ttl=60)
