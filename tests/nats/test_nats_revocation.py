"""Revocations on NATS: each node keeps them in memory, the controller carries them to
the other nodes at once, and a node that starts later asks the others for theirs. A
revocation made through node A ends the connection a centrifuge-python client holds on
node B, and node C, started afterwards, refuses the token too."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from typing import Any

import centrifuge
import httpx
import jwt
from nats_helpers import NATS_URL, WAIT_SECONDS, unique_prefix
from websockets.asyncio.client import connect

from parsec import BrokerOptions, Namespace, Options
from parsec.auth import jws
from parsec.testing import TestServer, serve_for_tests


class Events:
    """centrifuge-python client handlers (``on_<kind>``), each event queued by kind."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)

    async def next(self, kind: str, matches: Any = None) -> Any:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                ctx = await self._queues[kind].get()
                if matches is None or matches(ctx):
                    return ctx

    async def on_connecting(self, ctx: Any) -> None:
        self._queues["connecting"].put_nowait(ctx)

    async def on_connected(self, ctx: Any) -> None:
        self._queues["connected"].put_nowait(ctx)

    async def on_disconnected(self, ctx: Any) -> None:
        self._queues["disconnected"].put_nowait(ctx)


def _options(prefix: str) -> Options:
    return Options(
        broker=BrokerOptions(url=NATS_URL, key_prefix=prefix),
        namespaces=[Namespace(name="chat", allow_subscribe_for_client=True)],
    )


async def _revoke_token(server: TestServer, uid: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{server.api_url}/revoke_token",
            json={"uid": uid},
            headers={"X-API-Key": server.api_key},
        )
    assert response.json() == {"result": {}}


async def _connect_reply(server: TestServer, token: str) -> dict[str, Any]:
    async with connect(server.ws_url, proxy=None) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
        reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


async def test_a_revocation_reaches_every_nats_node_and_nodes_started_later() -> None:
    """revoke_token through node A closes the connection a client holds on node B within
    a second (3005 "token revoked"); node C, started afterwards, answers a connect with
    a token of that id 109 "token revoked"."""
    prefix = unique_prefix()
    async with serve_for_tests(_options(prefix)) as a, serve_for_tests(_options(prefix)) as b:
        token = b.connection_token("alice")
        uid = jwt.decode(token, options={"verify_signature": False})["jti"]
        events = Events()
        client = centrifuge.Client(b.ws_url, events=events, token=token, proxy=None)
        await client.connect()
        await events.next("connected")
        try:
            started = time.monotonic()
            await _revoke_token(a, uid)
            ctx = await events.next("connecting", lambda ctx: ctx.code != 0)
            assert (ctx.code, ctx.reason) == (3005, "token revoked")
            assert time.monotonic() - started < 1.0
        finally:
            before = asyncio.all_tasks()
            await client.disconnect()
            closing = asyncio.all_tasks() - before
            if closing:
                await asyncio.wait(closing, timeout=5)

        async with serve_for_tests(_options(prefix)) as c:
            now = int(time.time())
            same_id = jws.sign(
                {"sub": "alice", "jti": uid, "iat": now, "exp": now + 60},
                c.parsec.keyring.active,
            )
            other_id = jws.sign(
                {"sub": "alice", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 60},
                c.parsec.keyring.active,
            )
            assert await _connect_reply(c, same_id) == {
                "id": 1,
                "error": {"code": 109, "message": "token revoked"},
            }
            assert "connect" in await _connect_reply(c, other_id)
