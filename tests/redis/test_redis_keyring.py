"""The keyring in Redis: Parsec nodes (facades, in-process) sharing one Redis sign and verify
with one keyring, and a promote or retire on one node is in force on every node.

Nodes adopt a change on its pub/sub announcement, and look at the version every second in
any case, so the design converges within about a second; the tests wait for convergence
with a deadline of a few seconds (``WAIT``) so that a slow machine does not make them flaky.
Each test uses its own key prefix; its keys are deleted afterwards (``shared_redis``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from redis_helpers import REDIS_URL
from waiting import WAIT, until

from parsec import AuthOptions, BrokerOptions, Options, Parsec, ParsecError
from parsec.auth.jws import InvalidToken
from parsec.auth.keyring import FILE_NAME, KeyRing, KeyRingError
from parsec.backends.redis.keyring import RedisKeyRingStore


def options(prefix: str, state_dir: Path | None) -> Options:
    return Options(
        broker=BrokerOptions(url=REDIS_URL, key_prefix=prefix),
        auth=AuthOptions(state_dir=state_dir),
    )


@asynccontextmanager
async def node(prefix: str, state_dir: Path | None = None) -> AsyncIterator[Parsec]:
    """A started Parsec whose broker (and so keyring) is the shared Redis under ``prefix``."""
    async with Parsec(options(prefix, state_dir)) as parsec:
        yield parsec


async def twirp(parsec: Parsec, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """Call a ParsecService method of ``parsec`` as the operator; the JSON reply."""
    transport = httpx.ASGITransport(app=parsec.asgi_app())
    headers = {"Authorization": f"Bearer {parsec.issue_mgmt('operator').token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as http:
        response = await http.post(
            f"/twirp/parsec.ParsecService/{method}", json=body, headers=headers
        )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def signing_kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def verifies(parsec: Parsec, token: str) -> bool:
    try:
        parsec.verifier.verify_connection(token)
    except InvalidToken:
        return False
    return True


def kids(ring: KeyRing) -> set[str]:
    return {key.id for key in ring.keys()}


async def get(redis: Redis, key: str) -> bytes:
    """The value of ``key``, which must exist."""
    value = await redis.get(key)
    assert isinstance(value, bytes), f"{key} holds {value!r}"
    return value


async def stored_ring(redis: Redis, prefix: str) -> KeyRing:
    return KeyRing.from_json(await get(redis, f"{prefix}:keyring"))


async def test_a_promote_through_the_api_of_one_node_is_in_force_on_the_other(
    shared_redis: Redis, key_prefix: str
) -> None:
    """GenerateKey + PromoteKey on node A: node B signs with the new key and verifies A's
    tokens of it; B's tokens still verify on A."""
    async with node(key_prefix) as a, node(key_prefix) as b:
        new = (await twirp(a, "GenerateKey", {"alg": "ES256"}))["id"]
        await twirp(a, "PromoteKey", {"id": new})
        token_of_a = a.issuer.connection_token("alice")

        await until(lambda: b.keyring.active.id == new)

        token_of_b = b.issuer.connection_token("bob")
        assert signing_kid(token_of_a) == signing_kid(token_of_b) == new
        assert verifies(b, token_of_a)
        assert verifies(a, token_of_b)


async def test_a_retired_key_is_refused_on_the_other_node(
    shared_redis: Redis, key_prefix: str
) -> None:
    """After a rotation and a retire on A, B refuses tokens of the retired key."""
    async with node(key_prefix) as a, node(key_prefix) as b:
        old = a.keyring.active.id
        old_token = b.issuer.connection_token("alice")
        assert signing_kid(old_token) == old
        new = await a.generate_key()
        await a.promote_key(new.id)

        await until(lambda: b.keyring.active.id == new.id)
        assert verifies(b, old_token)  # verify-only: still good

        await a.retire_key(old)
        await until(lambda: not verifies(b, old_token))

        with pytest.raises(InvalidToken) as refused:
            b.verifier.verify_connection(old_token)
        assert refused.value.code == "PARSEC_AUTH_INVALID_SIGNATURE"


async def test_concurrent_changes_on_two_nodes_lose_nothing(
    shared_redis: Redis, key_prefix: str
) -> None:
    """Keys generated at the same time on two nodes all end up in the shared keyring, and
    two simultaneous promotes both take effect (one after the other)."""
    async with node(key_prefix) as a, node(key_prefix) as b:
        made = await asyncio.gather(*(n.generate_key() for _ in range(5) for n in (a, b)))
        generated = {key.id for key in made}

        stored = await stored_ring(shared_redis, key_prefix)
        assert generated <= kids(stored)
        await until(lambda: generated <= kids(a.keyring) and generated <= kids(b.keyring))

        first, second = made[0].id, made[1].id
        await asyncio.gather(a.promote_key(first), b.promote_key(second))

        stored = await stored_ring(shared_redis, key_prefix)
        assert stored.active.id in {first, second}
        roles = {key.id: key.role for key in stored.keys()}
        assert {roles[first], roles[second]} == {"active", "verify-only"}
        await until(lambda: a.keyring.active.id == b.keyring.active.id == stored.active.id)


async def test_two_nodes_starting_at_once_on_an_empty_redis_end_with_one_keyring(
    shared_redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    """Two nodes, each with a keyring file of its own, starting together on an empty Redis
    end up with one keyring: the one that won the seeding, in Redis and in both files."""
    seeds = {KeyRing.open(tmp_path / n).active.id for n in ("a", "b")}
    parsecs = [Parsec(options(key_prefix, tmp_path / n)) for n in ("a", "b")]
    try:
        await asyncio.gather(*(parsec.start() for parsec in parsecs))
        a, b = parsecs
        stored = await stored_ring(shared_redis, key_prefix)

        assert a.keyring.snapshot_json() == b.keyring.snapshot_json() == stored.snapshot_json()
        assert stored.active.id in seeds
        for name in ("a", "b"):
            assert (tmp_path / name / FILE_NAME).read_bytes() == stored.snapshot_json()
    finally:
        await asyncio.gather(*(parsec.aclose() for parsec in parsecs))


async def test_a_node_started_later_adopts_the_clusters_keyring(
    shared_redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    """A node joining a running cluster takes its keyring (not its own keyring.json), and
    the file becomes a copy of it for local tools."""
    async with node(key_prefix, tmp_path / "a") as a:
        new = await a.generate_key("EdDSA")
        await a.promote_key(new.id)
        own = KeyRing.open(tmp_path / "b").active.id

        async with node(key_prefix, tmp_path / "b") as b:
            assert b.keyring.active.id == new.id
            assert kids(b.keyring) == kids(a.keyring)
            assert own not in kids(b.keyring)
            assert KeyRing.open(tmp_path / "b").active.id == new.id
            assert verifies(b, a.issuer.connection_token("alice"))


async def test_a_node_without_a_state_dir_shares_the_keyring_without_a_warning(
    shared_redis: Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis and no state directory the keyring is not ephemeral: no warning says so,
    and a node started later still verifies the first node's tokens."""
    async with node(key_prefix) as a:
        token = a.issuer.connection_token("alice")
        async with node(key_prefix) as b:
            assert verifies(b, token)
    assert "ephemeral" not in caplog.text


async def test_a_change_whose_announcement_is_lost_still_converges(
    shared_redis: Redis, key_prefix: str
) -> None:
    """A document changed in Redis with its version bumped but nothing published (a lost
    pub/sub message) is adopted by the next look at the version."""
    async with node(key_prefix) as a:
        changed = await stored_ring(shared_redis, key_prefix)
        new = changed.generate()
        await shared_redis.set(f"{key_prefix}:keyring", changed.snapshot_json())
        await shared_redis.incr(f"{key_prefix}:keyring:version")

        await until(lambda: a.keyring.get(new.id) is not None)


async def test_the_layout_in_redis(shared_redis: Redis, key_prefix: str) -> None:
    """``<p>:keyring`` holds the keyring.json v2 document, ``<p>:keyring:version`` an integer
    that every change increments, and the new version is published on
    ``<p>:keyring:events``."""
    async with node(key_prefix) as a:
        document = json.loads(await get(shared_redis, f"{key_prefix}:keyring"))
        assert document["format_version"] == "2"
        assert document["active_key_id"] == a.keyring.active.id
        version = int(await get(shared_redis, f"{key_prefix}:keyring:version"))

        pubsub = shared_redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{key_prefix}:keyring:events")
        try:
            await a.generate_key()
            async with asyncio.timeout(WAIT):
                message = None
                while message is None:
                    message = await pubsub.get_message(timeout=WAIT)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

        assert int(message["data"]) == version + 1
        assert int(await get(shared_redis, f"{key_prefix}:keyring:version")) == version + 1


async def test_a_corrupted_document_is_a_clear_error(shared_redis: Redis, key_prefix: str) -> None:
    """A node cannot start on a corrupted ``<p>:keyring`` (KeyRingError PARSEC_INTERNAL
    naming the key); a running node keeps verifying with its last good keyring and key
    changes through it fail with PARSEC_INTERNAL until the document is fixed."""
    key = f"{key_prefix}:keyring"
    async with node(key_prefix) as a:
        token = a.issuer.connection_token("alice")
        good = await get(shared_redis, key)
        await shared_redis.set(key, b'{"format_version": "2", "keys": "garbage"}')
        await shared_redis.incr(f"{key_prefix}:keyring:version")

        with pytest.raises(KeyRingError) as refused:
            async with node(key_prefix):
                pass
        with pytest.raises(ParsecError) as failed:
            await a.promote_key(a.keyring.active.id)
        still = verifies(a, token)

        await shared_redis.set(key, good)
        await shared_redis.incr(f"{key_prefix}:keyring:version")
        new = await a.generate_key()

    assert refused.value.code == "PARSEC_INTERNAL"
    assert str(refused.value).startswith(f"redis key {key!r} is not a valid keyring")
    assert failed.value.code == "PARSEC_INTERNAL"
    assert still
    assert new.role == "verify-only"


async def test_the_store_reports_an_unreachable_redis_with_a_code(key_prefix: str) -> None:
    """Loading the keyring from a Redis nobody listens on fails fast with
    PARSEC_BROKER_NOT_READY, not a hang."""
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = RedisKeyRingStore(client, prefix=key_prefix)
    try:
        with pytest.raises(KeyRingError) as failure:
            await store.load()
    finally:
        await store.aclose()
        await client.aclose()
    assert failure.value.code == "PARSEC_BROKER_NOT_READY"
