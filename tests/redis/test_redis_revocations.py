"""Revocations in Redis: Parsec nodes (facades, in-process) sharing one Redis refuse the
same tokens, and keep refusing them when Redis loses its data — the nodes write their
revocations back, as they write back the keyring.

The data loss is real: a private redis-server without persistence, stopped and started
again empty. Each test uses its own key prefix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from redis_helpers import REDIS_URL, RedisServer
from waiting import WAIT

from parsec import AuthOptions, BrokerOptions, Options, Parsec, ParsecError
from parsec.auth.parsec_tokens import IssuedToken, ParsecTokens

StartRedis = Callable[[bool], Awaitable[RedisServer]]
CHANNEL = "private:app.docs.1"


@asynccontextmanager
async def node(url: str, prefix: str, state_dir: Path | None = None) -> AsyncIterator[Parsec]:
    """A started Parsec whose broker (keyring, revocations…) is the Redis at ``url``."""
    options = Options(
        broker=BrokerOptions(url=url, key_prefix=prefix), auth=AuthOptions(state_dir=state_dir)
    )
    async with Parsec(options) as parsec:
        yield parsec


async def status(parsec: Parsec, bearer: str) -> int:
    """The HTTP status ``parsec`` answers a management call (ListKeys) made with ``bearer``."""
    transport = httpx.ASGITransport(app=parsec.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://parsec") as http:
        response = await http.post(
            "/twirp/parsec.ParsecService/ListKeys",
            json={},
            headers={"Authorization": f"Bearer {bearer}"},
        )
    return response.status_code


async def redeemable(parsec: Parsec, refresh_token: str) -> bool:
    try:
        await parsec.refresh_access(refresh_token)
    except ParsecError as exc:
        if exc.code != "PARSEC_AUTH_DENIED":
            raise
        return False
    return True


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Return once ``check()`` is true; fail after ``WAIT`` seconds."""
    async with asyncio.timeout(WAIT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


class Revoked:
    """What a test revokes through two nodes: a management token by id, every token of a
    user, and a refresh family by reuse (its live refresh token is ``family_refresh``)."""

    def __init__(self, by_id: IssuedToken, of_user: IssuedToken, family_refresh: str) -> None:
        self.by_id, self.of_user, self.family_refresh = by_id, of_user, family_refresh

    @classmethod
    async def made_through(cls, a: Parsec, b: Parsec) -> Revoked:
        by_id, of_user = a.issue_mgmt("ops"), a.issue_mgmt("mallory")
        assert by_id.claims.jti is not None
        await a.revoke_token(by_id.claims.jti)
        await b.revoke_user("mallory")
        creds = await a.create_private("alice", CHANNEL)
        rotated = await b.refresh_access(creds.refresh_token)
        assert not await redeemable(a, creds.refresh_token)  # reuse: the family is revoked
        return cls(by_id, of_user, rotated.refresh_token)

    async def refused_by(self, parsec: Parsec) -> bool:
        """Whether ``parsec`` refuses all three (401, 401, no rotation)."""
        return (
            await status(parsec, self.by_id.token) == 401
            and await status(parsec, self.of_user.token) == 401
            and not await redeemable(parsec, self.family_refresh)
        )


async def test_revoked_stays_revoked_on_both_nodes_when_redis_loses_its_data(
    redis_server: StartRedis, key_prefix: str
) -> None:
    """Two nodes on a Redis without persistence revoke a token, a user and a family; the
    Redis is killed and restarted empty. Both nodes keep refusing all three, without a
    moment's gap; they write the revocations back into Redis, and a node started after
    the loss refuses them too. An unrevoked token keeps working throughout."""
    redis = await redis_server(False)
    async with node(redis.url, key_prefix) as a, node(redis.url, key_prefix) as b:
        revoked = await Revoked.made_through(a, b)
        good = a.issue_mgmt("operator").token
        assert await revoked.refused_by(a)
        assert await revoked.refused_by(b)

        await redis.stop()
        await redis.start()
        client = Redis.from_url(redis.url)
        try:
            assert await revoked.refused_by(a)
            assert await revoked.refused_by(b)

            async def written_back() -> bool:
                return await client.hlen(f"{key_prefix}:revocations") >= 5

            await eventually(written_back)
        finally:
            await client.aclose()

        async with node(redis.url, key_prefix) as late:
            assert await revoked.refused_by(late)
        assert await revoked.refused_by(a)
        assert await revoked.refused_by(b)
        assert await status(a, good) == await status(b, good) == 200


async def test_a_node_restarted_after_redis_lost_its_data_writes_back_its_file(
    redis_server: StartRedis, key_prefix: str, tmp_path: Path
) -> None:
    """Every node is down when Redis loses its data: a node that restarts with its state
    directory refuses what was revoked (from ``revocations.json``, as the keyring comes
    from ``keyring.json``) and writes it back, so a node without a state directory
    started next refuses it as well."""
    redis = await redis_server(False)
    state = tmp_path / "state"
    async with node(redis.url, key_prefix, state) as a, node(redis.url, key_prefix) as b:
        revoked = await Revoked.made_through(a, b)
        await eventually(lambda: _holds(a, 3))

    await redis.stop()
    await redis.start()

    async with node(redis.url, key_prefix, state) as again:
        assert await revoked.refused_by(again)
        async with node(redis.url, key_prefix) as fresh:
            assert await revoked.refused_by(fresh)


def _texts(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A Redis hash's fields and values as text."""
    return {_text(k): _text(v) for k, v in fields.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _holds(parsec: Parsec, count: int) -> bool:
    return len(parsec.revocations) >= count


@pytest.mark.parametrize("flush", ["FLUSHALL", "DEL"])
async def test_a_flushed_store_is_written_back_within_seconds(
    redis_server: StartRedis, key_prefix: str, flush: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis flushed under running nodes (or the revocations key deleted or evicted): both
    keep refusing, and the first node to look writes back what it holds, with a warning
    naming the key."""
    redis = await redis_server(False)
    client = Redis.from_url(redis.url)
    try:
        async with node(redis.url, key_prefix) as a, node(redis.url, key_prefix) as b:
            revoked = await Revoked.made_through(a, b)
            key = f"{key_prefix}:revocations"
            await eventually(lambda: _holds(a, 3))
            before = _texts(await client.hgetall(key))
            assert len(before) == 5  # 3 revocations, the generation and the version

            with caplog.at_level(logging.WARNING, logger="parsec.auth"):
                if flush == "FLUSHALL":
                    await client.flushall()
                else:
                    await client.delete(key)
                assert await revoked.refused_by(a)
                assert await revoked.refused_by(b)

                async def written_back() -> bool:
                    return await client.hlen(key) == len(before)

                await eventually(written_back)
            assert f"redis key '{key}' lost its data" in caplog.text
            after = _texts(await client.hgetall(key))
            entries = {k: v for k, v in after.items() if not k.startswith("~")}
            assert entries == {k: v for k, v in before.items() if not k.startswith("~")}
            assert after["~gen"] != before["~gen"]
    finally:
        await client.aclose()


async def test_revocations_reach_the_other_node_at_once(key_prefix: str) -> None:
    """On the shared Redis, a revocation made on one node is in force on the other
    within milliseconds (over the controller, not the next look at the store)."""
    async with node(REDIS_URL, key_prefix) as a, node(REDIS_URL, key_prefix) as b:
        token = b.issue_mgmt("ops")
        assert token.claims.jti is not None
        arrived = asyncio.Event()
        b.revocations.listeners.append(arrived.set)
        loop = asyncio.get_running_loop()
        started = loop.time()

        await a.revoke_token(token.claims.jti)
        await asyncio.wait_for(arrived.wait(), WAIT)

        assert loop.time() - started < 0.5
        assert await status(b, token.token) == 401


async def test_a_node_that_cannot_tell_yet_refuses_older_management_tokens(
    redis_server: StartRedis, key_prefix: str, tmp_path: Path
) -> None:
    """A node starts on a Redis that lost its data with the cluster's keyring but not its
    revocations (a new machine given keyring.json): for a few seconds, until the nodes
    still running would have written theirs back, it refuses management calls with
    tokens issued before it started (fail closed); tokens issued since work at once,
    and older unrevoked ones work once it has settled."""
    redis = await redis_server(False)
    state = tmp_path / "state"
    async with node(redis.url, key_prefix, state) as first:
        earlier = ParsecTokens(first.keyring, clock=lambda: time.time() - 5)
        revoked, older = earlier.issue_mgmt("ops"), earlier.issue_mgmt("operator")
        assert revoked.claims.jti is not None
        await first.revoke_token(revoked.claims.jti)
    await redis.stop()
    await redis.start()
    (state / "revocations.json").unlink()

    async with node(redis.url, key_prefix, state) as newcomer:
        assert await status(newcomer, revoked.token) == 401
        assert await status(newcomer, older.token) == 401
        assert await status(newcomer, newcomer.issue_mgmt("operator").token) == 200

        async def settled() -> bool:
            return await status(newcomer, older.token) == 200

        await eventually(settled)
