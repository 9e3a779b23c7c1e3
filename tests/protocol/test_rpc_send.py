"""rpc (request/response to server handlers) and send (fire-and-forget messages)."""

from __future__ import annotations

import asyncio
from typing import Any

from parsec.engine.codes import ClientError, errors
from parsec.engine.commands import RPCCall

from .harness import WAIT, Server


async def test_rpc_without_handler_is_104(server: Server) -> None:
    """An rpc method nobody registered is answered with 104."""
    client = await server.client()
    reply = await client.call("rpc", {"method": "missing", "data": {}})
    assert reply == {"id": 2, "error": {"code": 104, "message": "method not found"}}


async def test_rpc_round_trip(server: Server) -> None:
    """The handler gets user, client, method and data; its return value is the reply."""
    calls: list[RPCCall] = []

    @server.parsec.rpc("echo")
    async def echo(call: RPCCall) -> Any:
        calls.append(call)
        return {"got": call.data, "user": call.user}

    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    reply = await client.call("rpc", {"method": "echo", "data": {"x": [1, "two"]}})
    assert reply == {"id": 2, "rpc": {"data": {"got": {"x": [1, "two"]}, "user": "alice"}}}
    assert calls == [RPCCall("alice", client_id, "echo", {"x": [1, "two"]})]


async def test_rpc_without_data_passes_none(server: Server) -> None:
    """An rpc with no data reaches the handler as None; a None result is null."""

    @server.parsec.rpc("nothing")
    async def nothing(call: RPCCall) -> Any:
        assert call.data is None
        return None

    client = await server.client()
    assert await client.call("rpc", {"method": "nothing"}) == {"id": 2, "rpc": {"data": None}}


async def test_rpc_handler_client_error_is_the_reply(server: Server) -> None:
    """A handler raising a ClientError answers with its code and message."""

    @server.parsec.rpc("strict")
    async def strict(call: RPCCall) -> Any:
        if call.data != "ok":
            raise errors.BAD_REQUEST
        raise ClientError(4001, "custom")

    client = await server.client()
    assert (await client.call("rpc", {"method": "strict", "data": 1}))["error"]["code"] == 107
    reply = await client.call("rpc", {"method": "strict", "data": "ok"})
    assert reply["error"] == {"code": 4001, "message": "custom"}


async def test_rpc_handler_crash_is_temporary_100(server: Server) -> None:
    """A handler that crashes answers 100 temporary; the connection stays open."""

    @server.parsec.rpc("crash")
    async def crash(call: RPCCall) -> Any:
        raise RuntimeError("boom")

    client = await server.client()
    reply = await client.call("rpc", {"method": "crash"})
    assert reply["error"] == {"code": 100, "message": "internal server error", "temporary": True}
    assert (await client.call("rpc", {"method": "missing"}))["error"]["code"] == 104


async def test_rpc_unencodable_result_is_100(server: Server) -> None:
    """A handler returning something that is not JSON answers 100, not a crash."""

    @server.parsec.rpc("odd")
    async def odd(call: RPCCall) -> Any:
        return object()

    client = await server.client()
    assert (await client.call("rpc", {"method": "odd"}))["error"]["code"] == 100


async def test_send_gets_no_reply_and_reaches_the_handler(server: Server) -> None:
    """send is not answered; the message handler receives its data."""
    received: asyncio.Queue[RPCCall] = asyncio.Queue()

    async def on_message(call: RPCCall) -> None:
        await received.put(call)

    server.parsec.node.message_handler = on_message
    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    await client.send({"send": {"data": {"hello": 1}}}, {"id": 2, "rpc": {"method": "x"}})
    assert await client.frame() == [
        {"id": 2, "error": {"code": 104, "message": "method not found"}}
    ]
    async with asyncio.timeout(WAIT):
        call = await received.get()
    assert call == RPCCall("alice", client_id, "", {"hello": 1})


async def test_send_without_handler_is_ignored(server: Server) -> None:
    """send with no message handler is dropped silently; the connection stays."""
    client = await server.client()
    await client.send({"send": {"data": 1}})
    assert (await client.call("rpc", {"method": "x"}))["error"]["code"] == 104


async def test_send_handler_crash_keeps_connection(server: Server) -> None:
    """A message handler that crashes does not affect the connection."""

    async def on_message(call: RPCCall) -> None:
        raise RuntimeError("boom")

    server.parsec.node.message_handler = on_message
    client = await server.client()
    await client.send({"send": {"data": 1}})
    assert (await client.call("rpc", {"method": "x"}))["error"]["code"] == 104


async def test_send_before_connect_closes_3501(server: Server) -> None:
    """send before connect closes the connection with 3501."""
    client = await server.open()
    await client.send({"send": {"data": 1}})
    assert (await client.closed())[0] == 3501
