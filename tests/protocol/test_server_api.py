"""The Centrifugo server HTTP API (POST /api/<method>) and what clients observe of it."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from parsec import __version__

from .harness import Server


async def test_wrong_or_missing_api_key_is_401(server: Server) -> None:
    """A wrong or missing X-API-Key is answered 401 with an empty body."""
    wrong = await server.api("info", {}, key="nope")
    assert wrong.status_code == 401
    assert wrong.content == b""
    async with httpx.AsyncClient(trust_env=False) as http:
        missing = await http.post(server.base_url + "/api/info", content=b"{}")
    assert missing.status_code == 401


async def test_authorization_apikey_header_is_accepted(server: Server) -> None:
    """Authorization: apikey <key> works like X-API-Key."""
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            server.base_url + "/api/info",
            content=b"{}",
            headers={"Authorization": "apikey test-api-key"},
        )
    assert response.status_code == 200


async def test_api_key_in_the_query_string_is_not_accepted(server: Server) -> None:
    """?api_key= is no credential (keys in URLs end up in access logs): 401 as when
    the key is missing, even with the right key; the same call with the header works."""
    async with httpx.AsyncClient(trust_env=False) as http:
        for path in ["/api/info", "/api"]:
            body = b"{}" if path == "/api/info" else b'{"method": "info"}'
            response = await http.post(
                server.base_url + path, params={"api_key": "test-api-key"}, content=body
            )
            assert response.status_code == 401, path
            assert response.content == b""
            response = await http.post(
                server.base_url + path,
                params={"api_key": "wrong"},
                content=body,
                headers={"X-API-Key": "test-api-key"},
            )
            assert response.status_code == 200, path


async def test_malformed_body_is_400(server: Server) -> None:
    """A body that is not JSON, not an object, or wrongly typed is answered 400."""
    for body in [b"{not json", b"[1, 2]", b'"text"', b'{"channel": 5, "data": 1}']:
        response = await server.api("publish", body)
        assert response.status_code == 400, body


API_METHODS = [
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "refresh",
    "batch",
]
UNDECODABLE = [
    b"\xe8",
    b"\xff\xfe{\x00}\x00",
    b"NaN",
    b"\xef\xbb\xbf{}",
    b'{"channel": "\\ud800"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"commands": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]


async def test_undecodable_bodies_are_400_on_every_method_without_error_logs(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Non-UTF-8, non-JSON or absurdly nested bodies get Centrifugo's 400 on every
    method and on the legacy endpoint; never a 500, never an ERROR line."""
    for method in API_METHODS:
        for body in UNDECODABLE:
            response = await server.api(method, body)
            assert response.status_code == 400, (method, body[:20], response.text)
            assert response.text.startswith("bad request"), response.text
    response = await server.api("publish", b'{"channel": "chat:\xe8", "data": 1}')
    assert response.status_code == 400, response.text
    async with httpx.AsyncClient(trust_env=False) as http:
        for body in [*UNDECODABLE, b'{"method": "info", "params": \xe8}']:
            response = await http.post(
                server.base_url + "/api", content=body, headers={"X-API-Key": "test-api-key"}
            )
            assert response.status_code == 400, (body[:20], response.text)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_batch_commands_with_undecodable_bodies_get_107(server: Server) -> None:
    """Inside a batch, a command whose body is not a JSON object gets its own 107."""
    commands = [{"publish": 5}, {"info": [1]}, {"history": "x"}, {"info": {}}]
    response = await server.api("batch", {"commands": commands})
    replies = response.json()["replies"]
    assert [r.get("error", {}).get("code") for r in replies] == [107, 107, 107, None]


async def test_get_is_not_allowed(server: Server) -> None:
    """Only POST is served under /api."""
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(
            server.base_url + "/api/info", headers={"X-API-Key": "test-api-key"}
        )
    assert response.status_code == 405


async def test_error_shapes(server: Server) -> None:
    """Errors are HTTP 200 with {"error": {"code", "message"}}."""
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("frobnicate", {}, 104),
        ("publish", {"channel": "nope:x", "data": 1}, 102),
        ("publish", {"channel": "", "data": 1}, 107),
        ("publish", {"channel": "chat:x"}, 107),
        ("publish", {"channel": "public:Bad", "data": 1}, 107),
        ("history", {"channel": "plain:x", "limit": 1}, 108),
        ("presence", {"channel": "plain:x"}, 108),
        ("presence", {"channel": ""}, 107),
        ("disconnect", {}, 107),
        ("disconnect", {"user": "a", "disconnect": {"code": 1000, "reason": "x"}}, 107),
        ("subscribe", {"user": "a"}, 107),
        ("subscribe", {"user": "a", "channel": "nope:x"}, 102),
        ("unsubscribe", {"channel": "chat:x"}, 107),
        ("history", {"channel": "chat:x", "since": {"offset": 1, "epoch": "old"}}, 112),
    ]
    for method, body, code in cases:
        response = await server.api(method, body)
        assert response.status_code == 200, (method, body)
        payload = response.json()
        assert set(payload) == {"error"}, (method, body)
        assert payload["error"]["code"] == code, (method, body)
        assert isinstance(payload["error"]["message"], str)


async def test_publish_reaches_subscribers_and_returns_position(server: Server) -> None:
    """publish answers offset/epoch for a history channel and subscribers get the pub."""
    client = await server.client()
    epoch = (await client.call("subscribe", {"channel": "chat:api"}))["subscribe"]["epoch"]
    result = await server.api_result("publish", {"channel": "chat:api", "data": {"a": 1}})
    assert result == {"offset": 1, "epoch": epoch}
    assert await client.push("chat:api", "pub") == {"data": {"a": 1}, "offset": 1}


async def test_publish_without_history_returns_empty_result(server: Server) -> None:
    """publish to a channel without history answers {}."""
    assert await server.api_result("publish", {"channel": "plain:x", "data": 1}) == {}


async def test_publish_b64data_and_tags(server: Server) -> None:
    """b64data (base64 of JSON) and tags reach subscribers."""
    client = await server.client()
    await client.call("subscribe", {"channel": "plain:t"})
    await server.api_result(
        "publish", {"channel": "plain:t", "b64data": "eyJiIjogMn0=", "tags": {"k": "v"}}
    )
    assert await client.push("plain:t", "pub") == {"data": {"b": 2}, "tags": {"k": "v"}}


async def test_publish_idempotency_key_delivers_once(server: Server) -> None:
    """A repeated idempotency_key is not delivered twice."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:idem"})
    body = {"channel": "chat:idem", "data": 1, "idempotency_key": "k1"}
    first = await server.api_result("publish", body)
    again = await server.api_result("publish", body)
    assert first == again
    await server.api_result("publish", {"channel": "chat:idem", "data": 2})
    assert (await client.push("chat:idem", "pub"))["data"] == 1
    assert (await client.push("chat:idem", "pub"))["data"] == 2


async def test_disconnect_closes_with_the_given_code(server: Server) -> None:
    """disconnect closes the user's connections with the code and reason given."""
    client = await server.client("alice")
    bystander = await server.client("bob")
    body = {"user": "alice", "disconnect": {"code": 4501, "reason": "go away"}}
    assert await server.api_result("disconnect", body) == {}
    assert await client.closed() == (4501, "go away")
    reply = await bystander.call("presence_stats", {"channel": "plain:x"})
    assert reply["error"]["code"] == 108


async def test_disconnect_default_is_3503(server: Server) -> None:
    """disconnect without a code closes with 3503 force disconnect."""
    client = await server.client("alice")
    await server.api_result("disconnect", {"user": "alice"})
    assert await client.closed() == (3503, "force disconnect")


async def test_disconnect_one_client_or_all_but_whitelist(server: Server) -> None:
    """client targets one connection; whitelist spares the listed ones."""
    first = await server.open()
    first_id = (await first.connect(server.token("alice")))["connect"]["client"]
    second = await server.open()
    second_id = (await second.connect(server.token("alice")))["connect"]["client"]
    await server.api_result("disconnect", {"user": "alice", "client": first_id})
    assert (await first.closed())[0] == 3503
    third = await server.client("alice")
    await server.api_result("disconnect", {"user": "alice", "whitelist": [second_id]})
    assert (await third.closed())[0] == 3503
    reply = await second.call("presence_stats", {"channel": "plain:x"})
    assert reply["error"]["code"] == 108


async def test_unsubscribe_pushes_2000_and_stops_publications(server: Server) -> None:
    """unsubscribe sends the client an unsubscribe push 2000; pubs stop."""
    client = await server.client("alice")
    await client.call("subscribe", {"channel": "chat:u"})
    await client.call("subscribe", {"channel": "plain:marker"})
    assert await server.api_result("unsubscribe", {"user": "alice", "channel": "chat:u"}) == {}
    assert await client.push("chat:u", "unsubscribe") == {
        "code": 2000,
        "reason": "server unsubscribe",
    }
    await server.api_result("publish", {"channel": "chat:u", "data": "lost"})
    await server.api_result("publish", {"channel": "plain:marker", "data": "marker"})
    assert (await client.push("plain:marker", "pub"))["data"] == "marker"
    assert not client.inbox
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:u"})


async def test_subscribe_pushes_subscribe_then_publications(server: Server) -> None:
    """subscribe adds a server-side subscription: a subscribe push, then pubs."""
    client = await server.client("alice")
    body = {"user": "alice", "channel": "chat:srv", "data": {"welcome": True}}
    assert await server.api_result("subscribe", body) == {}
    push = await client.push("chat:srv", "subscribe")
    assert push["recoverable"] is True
    assert push["positioned"] is True
    assert push["data"] == {"welcome": True}
    await server.api_result("publish", {"channel": "chat:srv", "data": "hello"})
    assert await client.push("chat:srv", "pub") == {"data": "hello", "offset": 1}


async def test_subscribe_for_unknown_user_is_ok(server: Server) -> None:
    """subscribe for a user with no connection answers {} and does nothing."""
    result = await server.api_result("subscribe", {"user": "ghost", "channel": "chat:x"})
    assert result == {}


async def test_refresh_expired_closes_3005(server: Server) -> None:
    """refresh with expired true closes the user's connections with 3005."""
    client = await server.client("alice")
    assert await server.api_result("refresh", {"user": "alice", "expired": True}) == {}
    assert await client.closed() == (3005, "connection expired")


async def test_an_unknown_namespace_is_named_and_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing into an unknown namespace answers 102 naming the namespace, and the
    server logs it at INFO."""
    caplog.set_level(logging.INFO, logger="parsec.api")
    response = await server.api("publish", {"channel": "nope:b", "data": 1})
    message = "unknown channel: namespace 'nope' is not configured"
    assert response.json() == {"error": {"code": 102, "message": message}}
    (record,) = [r for r in caplog.records if r.name == "parsec.api"]
    assert record.levelno == logging.INFO
    why = "no [[namespaces]] entry of that name"
    assert record.getMessage() == f"server API publish refused: {message} ({why})"


async def test_batch_replies_in_order(server: Server) -> None:
    """batch runs each command and answers replies keyed by method, in order."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:b"})
    body = {
        "commands": [
            {"publish": {"channel": "chat:b", "data": 1}},
            {"presence_stats": {"channel": "chat:b"}},
            {"publish": {"channel": "nope:b", "data": 1}},
        ]
    }
    response = await server.api("batch", body)
    replies = response.json()["replies"]
    assert replies[0]["publish"]["offset"] == 1
    assert replies[1] == {"presence_stats": {"num_clients": 1, "num_users": 1}}
    message = "unknown channel: namespace 'nope' is not configured"
    assert replies[2] == {"error": {"code": 102, "message": message}}
    assert (await client.push("chat:b", "pub"))["data"] == 1


async def test_parallel_batch(server: Server) -> None:
    """A parallel batch answers every command in request order."""
    body = {
        "commands": [{"publish": {"channel": f"plain:p{n}", "data": n}} for n in range(5)],
        "parallel": True,
    }
    replies = (await server.api("batch", body)).json()["replies"]
    assert replies == [{"publish": {}}] * 5


async def test_broadcast_publishes_to_each_channel(server: Server) -> None:
    """broadcast publishes to every channel, one response per channel."""
    client = await server.client()
    await client.call("subscribe", {"channel": "chat:x"})
    await client.call("subscribe", {"channel": "plain:y"})
    body = {"channels": ["chat:x", "plain:y", "nope:z"], "data": {"all": 1}}
    responses = (await server.api_result("broadcast", body))["responses"]
    assert responses[0]["result"]["offset"] == 1
    assert responses[1] == {"result": {}}
    assert responses[2]["error"]["code"] == 102
    assert (await client.push("chat:x", "pub"))["data"] == {"all": 1}
    assert (await client.push("plain:y", "pub"))["data"] == {"all": 1}


async def test_channels_lists_active_channels(server: Server) -> None:
    """channels lists channels with subscribers and their client counts, by pattern."""
    for user in ["alice", "bob"]:
        client = await server.client(user)
        await client.call("subscribe", {"channel": "chat:one"})
    solo = await server.client("carol")
    await solo.call("subscribe", {"channel": "plain:two"})
    result = await server.api_result("channels", {})
    assert result == {"channels": {"chat:one": {"num_clients": 2}, "plain:two": {"num_clients": 1}}}
    assert await server.api_result("channels", {"pattern": "chat:*"}) == {
        "channels": {"chat:one": {"num_clients": 2}}
    }


async def test_info_reports_this_node(server: Server) -> None:
    """info reports the node with its uid, name, version and counters."""
    client = await server.client("alice")
    await client.call("subscribe", {"channel": "chat:i"})
    (node,) = (await server.api_result("info", {}))["nodes"]
    assert node["uid"]
    assert node["name"] == "parsec"
    assert node["version"] == __version__
    assert node["num_clients"] == 1
    assert node["num_users"] == 1
    assert node["num_channels"] == 1
    assert node["num_subs"] == 1


async def test_presence_and_history_via_api(server: Server) -> None:
    """presence, presence_stats, history and history_remove answer Centrifugo shapes."""
    client = await server.open()
    client_id = (await client.connect(server.token("alice")))["connect"]["client"]
    await client.call("subscribe", {"channel": "chat:p"})
    await server.api_result("publish", {"channel": "chat:p", "data": 1})
    presence = await server.api_result("presence", {"channel": "chat:p"})
    assert presence == {"presence": {client_id: {"user": "alice", "client": client_id}}}
    stats = await server.api_result("presence_stats", {"channel": "chat:p"})
    assert stats == {"num_clients": 1, "num_users": 1}
    history = await server.api_result("history", {"channel": "chat:p", "limit": 10})
    assert history["publications"] == [{"data": 1, "offset": 1}]
    assert await server.api_result("history_remove", {"channel": "chat:p"}) == {}
    emptied = await server.api_result("history", {"channel": "chat:p", "limit": 10})
    assert emptied["publications"] == []
    assert emptied["offset"] == 1


async def test_legacy_api_endpoint(server: Server) -> None:
    """POST /api with newline-delimited {method, params} commands answers each."""
    lines = [
        json.dumps({"method": "publish", "params": {"channel": "plain:l", "data": 1}}),
        json.dumps({"method": "info", "params": {}}),
    ]
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            server.base_url + "/api",
            content="\n".join(lines).encode(),
            headers={"X-API-Key": "test-api-key"},
        )
    replies = [json.loads(line) for line in response.text.split("\n")]
    assert replies[0] == {"result": {}}
    assert "nodes" in replies[1]["result"]
