"""Publication size limits on every publish path of a real server: the client
``publish`` command, the server API (publish, broadcast, batch, legacy ``/api``),
ParsecService ``Publish`` and the library's ``Parsec.publish``.

A publication over its channel's limit is refused before anything is stored: the
channel's history and its subscribers never see it. One exactly at the limit passes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import pytest_asyncio

from parsec import Namespace
from parsec.errors import ParsecError

from .conftest import ServerFactory
from .harness import WAIT, RawClient, Server

LIMIT = 4096
"""The test server's ``server.max_publication_size``."""
SMALL = 1000
"""The ``small`` namespace's own, lower limit."""
BIG = 20000
"""The ``big`` namespace's own, higher limit."""
PUBLIC = "public:size.room"


@pytest.fixture
def websocket_transport() -> str:
    """The limits are the engine's, the same on either transport."""
    return "native"


def _namespace(name: str, limit: int = 0) -> Namespace:
    return Namespace(
        name=name,
        history_size=10,
        history_ttl=300.0,
        allow_subscribe_for_client=True,
        allow_publish_for_client=True,
        allow_history_for_client=True,
        max_publication_size=limit,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def server(make_server: ServerFactory) -> Server:
    return await make_server(
        namespaces=[_namespace("chat"), _namespace("small", SMALL), _namespace("big", BIG)],
        server={"max_publication_size": LIMIT},
    )


def text(size: int) -> str:
    """A JSON string value whose compact JSON is exactly ``size`` bytes."""
    return "a" * (size - 2)


async def _offset(server: Server, channel: str) -> int:
    """The channel's stream top: how many publications it ever stored."""
    history = await server.parsec.node.history(channel)
    return history.position.offset


def _error(payload: dict[str, Any]) -> dict[str, Any]:
    assert set(payload) == {"error"}, payload
    error: dict[str, Any] = payload["error"]
    return error


async def _subscribed(server: Server, channel: str) -> RawClient:
    client = await server.client("watcher")
    reply = await client.call("subscribe", {"channel": channel})
    assert "subscribe" in reply, reply
    return client


# -- the server API ---------------------------------------------------------------------


async def test_api_publish_over_the_limit_is_106_and_stores_nothing(server: Server) -> None:
    """A publication one byte over the limit gets a Centrifugo error (106, a message
    naming both sizes); history and subscribers never see it. At the limit passes."""
    watcher = await _subscribed(server, "chat:a")

    at_limit = await server.api_result("publish", {"channel": "chat:a", "data": text(LIMIT)})
    refused = await server.api("publish", {"channel": "chat:a", "data": text(LIMIT + 1)})
    await server.api_result("publish", {"channel": "chat:a", "data": "after"})

    assert at_limit["offset"] == 1
    assert refused.status_code == 200
    error = _error(refused.json())
    assert error["code"] == 106
    assert f"{LIMIT + 1} bytes" in error["message"]
    assert str(LIMIT) in error["message"]
    assert await _offset(server, "chat:a") == 2
    first, second = await watcher.push("chat:a", "pub"), await watcher.push("chat:a", "pub")
    assert (first["offset"], second["offset"], second["data"]) == (1, 2, "after")


async def test_api_counts_compact_json_b64data_and_tags(server: Server) -> None:
    """The size is that of what would be stored: compact JSON (whitespace the request
    carried does not count), b64data decoded, tags included."""
    spaced = b'{"channel": "chat:b", "data": ' + json.dumps(text(LIMIT)).encode() + b" " * 500
    spaced += b"}"
    b64 = base64.b64encode(json.dumps(text(LIMIT + 1)).encode()).decode()
    tags = {"k": "v" * LIMIT}

    assert (await server.api("publish", spaced)).json()["result"]["offset"] == 1
    b64_refused = await server.api("publish", {"channel": "chat:b", "b64data": b64})
    tags_refused = await server.api("publish", {"channel": "chat:b", "data": 1, "tags": tags})

    assert _error(b64_refused.json())["code"] == 106
    assert _error(tags_refused.json())["code"] == 106
    assert await _offset(server, "chat:b") == 1


async def test_namespace_limits_override_the_server_limit(server: Server) -> None:
    """A namespace's own ``max_publication_size`` wins over the server's, lower or
    higher; broadcast checks each channel against its own limit."""
    over_small = await server.api("publish", {"channel": "small:c", "data": text(SMALL + 1)})
    at_small = await server.api_result("publish", {"channel": "small:c", "data": text(SMALL)})
    broadcast = await server.api_result(
        "broadcast", {"channels": ["chat:c", "big:c"], "data": text(BIG)}
    )
    over_big = await server.api("publish", {"channel": "big:c", "data": text(BIG + 1)})

    assert _error(over_small.json())["code"] == 106
    assert at_small["offset"] == 1
    chat_reply, big_reply = broadcast["responses"]
    assert _error(chat_reply)["code"] == 106
    assert big_reply["result"]["offset"] == 1
    assert _error(over_big.json())["code"] == 106
    assert await _offset(server, "chat:c") == 0
    assert await _offset(server, "big:c") == 1
    assert await _offset(server, "small:c") == 1


async def test_batch_refuses_the_oversized_command_only(server: Server) -> None:
    """In a batch, the oversized publish gets its error reply and the others go through."""
    payload = await server.api(
        "batch",
        {
            "commands": [
                {"publish": {"channel": "chat:d", "data": text(LIMIT)}},
                {"publish": {"channel": "chat:d", "data": text(LIMIT + 1)}},
                {"publish": {"channel": "chat:d", "data": 3}},
            ]
        },
    )

    first, refused, third = payload.json()["replies"]
    assert first == {"publish": {"offset": 1, "epoch": first["publish"]["epoch"]}}
    assert _error(refused)["code"] == 106
    assert third["publish"]["offset"] == 2
    assert await _offset(server, "chat:d") == 2


async def test_legacy_api_refuses_an_oversized_publish(server: Server) -> None:
    """``POST /api`` with newline-delimited commands applies the same limit."""
    lines = [
        {"method": "publish", "params": {"channel": "chat:e", "data": text(LIMIT + 1)}},
        {"method": "publish", "params": {"channel": "chat:e", "data": text(LIMIT)}},
    ]
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        response = await http.post(
            "/api",
            content="\n".join(json.dumps(line) for line in lines).encode(),
            headers={"X-API-Key": "test-api-key"},
            timeout=WAIT,
        )

    refused, accepted = (json.loads(line) for line in response.content.split(b"\n"))
    assert _error(refused)["code"] == 106
    assert accepted["result"]["offset"] == 1
    assert await _offset(server, "chat:e") == 1


# -- the client protocol ----------------------------------------------------------------


async def test_client_publish_over_the_limit_is_106_and_the_connection_stays(
    server: Server,
) -> None:
    """A client's oversized publish is answered with error 106; nothing is stored and
    the same connection publishes a publication at the limit next."""
    client = await server.client()

    refused = await client.call("publish", {"channel": "small:f", "data": text(SMALL + 1)})
    accepted = await client.call("publish", {"channel": "small:f", "data": text(SMALL)})

    assert refused["error"]["code"] == 106
    assert "publication too large" in refused["error"]["message"]
    assert accepted == {"id": accepted["id"], "publish": {}}
    assert await _offset(server, "small:f") == 1


# -- the library and ParsecService ------------------------------------------------------


async def test_library_publish_raises_payload_too_large(server: Server) -> None:
    """``Parsec.publish`` raises ParsecError PARSEC_PAYLOAD_TOO_LARGE and stores nothing."""
    with pytest.raises(ParsecError) as caught:
        await server.parsec.publish("chat:g", json.dumps(text(LIMIT + 1)).encode())
    await server.parsec.publish("chat:g", text(LIMIT))

    assert caught.value.code == "PARSEC_PAYLOAD_TOO_LARGE"
    assert caught.value.http_status == 413
    assert await _offset(server, "chat:g") == 1


async def test_parsec_service_publish_over_the_limit_is_413(server: Server) -> None:
    """ParsecService Publish of an oversized payload is a 413 Twirp error with
    PARSEC_PAYLOAD_TOO_LARGE; the channel's history is unchanged."""
    await server.managed(PUBLIC)
    token = server.parsec.issue_mgmt("operator").token

    async def publish(size: int) -> httpx.Response:
        data = base64.b64encode(json.dumps(text(size)).encode()).decode()
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            return await http.post(
                "/twirp/parsec.ParsecService/Publish",
                json={"name": PUBLIC, "data": data},
                headers={"Authorization": f"Bearer {token}"},
                timeout=WAIT,
            )

    refused = await publish(LIMIT + 1)
    accepted = await publish(LIMIT)

    assert refused.status_code == 413
    body = refused.json()
    assert body["code"] == "invalid_argument"
    assert body["meta"] == {"parsec_code": "PARSEC_PAYLOAD_TOO_LARGE"}
    assert str(LIMIT) in body["msg"]
    assert accepted.status_code == 200
    assert accepted.json()["offset"] == "1"
    assert await _offset(server, PUBLIC) == 1
