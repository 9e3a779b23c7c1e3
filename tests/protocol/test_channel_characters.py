"""Characters no channel name may hold: control characters are refused on every path
that names a channel — client commands, the server API, ParsecService and the library —
exactly as non-ASCII characters are, while printable ASCII (space, ``.``, ``*``, ``>``)
stays valid in operator namespaces."""

from __future__ import annotations

import httpx
import pytest

from parsec.errors import ParsecError

from .harness import Server

CONTROLS = ["\x00", "\n", "\x7f", "\t", "\x1f"]
"""NUL, newline, DEL, and space-like controls (tab, unit separator)."""
BAD_REQUEST = 107


def _bad_names(namespace: str) -> list[str]:
    """Names in ``namespace`` with a control character at the end and in the middle."""
    names = []
    for control in CONTROLS:
        names += [f"{namespace}:{control}", f"{namespace}:room{control}x"]
    return names


@pytest.mark.parametrize("method", ["subscribe", "publish", "history", "presence"])
async def test_client_commands_refuse_control_characters(server: Server, method: str) -> None:
    """Every channel command answers 107 for a name holding a control character, and
    the connection stays usable."""
    client = await server.client()
    for channel in _bad_names("chat") + _bad_names("plain") + list(CONTROLS):
        body: dict[str, object] = {"channel": channel}
        if method == "publish":
            body["data"] = {"n": 1}
        if method == "history":
            body["limit"] = 1
        reply = await client.call(method, body)
        assert reply.get("error", {}).get("code") == BAD_REQUEST, (channel, reply)
    assert "subscribe" in await client.call("subscribe", {"channel": "chat:fine"})


async def test_presence_stats_refuses_control_characters(server: Server) -> None:
    """presence_stats is refused like presence."""
    client = await server.client()
    for channel in _bad_names("chat"):
        reply = await client.call("presence_stats", {"channel": channel})
        assert reply["error"]["code"] == BAD_REQUEST, channel


async def test_connection_token_subscriptions_refuse_control_characters(server: Server) -> None:
    """A server-side subscription (connection token ``subs``) to such a name is not made."""
    client = await server.open()
    token = server.token("alice", channels=["chat:\n", "chat:ok"])
    reply = await client.connect(token)
    assert set(reply["connect"]["subs"]) == {"chat:ok"}


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("publish", {"data": {"n": 1}}),
        ("subscribe", {"user": "alice"}),
        ("unsubscribe", {"user": "alice"}),
        ("presence", {}),
        ("presence_stats", {}),
        ("history", {"limit": 1}),
        ("history_remove", {}),
    ],
)
async def test_server_api_refuses_control_characters(
    server: Server, method: str, extra: dict[str, object]
) -> None:
    """Every server API method that names a channel answers error 107 for it."""
    for channel in _bad_names("chat") + _bad_names("plain"):
        response = await server.api(method, {"channel": channel, **extra})
        assert response.status_code == 200, (channel, response.text)
        assert response.json()["error"]["code"] == BAD_REQUEST, (channel, response.text)


async def test_server_api_broadcast_refuses_each_bad_channel(server: Server) -> None:
    """broadcast answers 107 for each bad name and publishes to the good ones."""
    channels = ["chat:ok", *_bad_names("chat")]
    response = await server.api("broadcast", {"channels": channels, "data": {"n": 1}})
    replies = response.json()["result"]["responses"]
    assert "result" in replies[0]
    assert [r["error"]["code"] for r in replies[1:]] == [BAD_REQUEST] * (len(channels) - 1)


async def test_server_api_batch_refuses_control_characters(server: Server) -> None:
    """A batch command on such a name gets its own 107 reply."""
    body = {"commands": [{"publish": {"channel": "chat:\x00", "data": {}}}]}
    response = await server.api("batch", body)
    assert response.json()["replies"][0]["error"]["code"] == BAD_REQUEST


async def test_printable_ascii_stays_valid(server: Server) -> None:
    """Space, '.', '*' and '>' are printable: operator namespaces keep accepting them
    (the NATS broker escapes them in subjects)."""
    client = await server.client()
    for channel in ["chat:a b", "chat:a.b", "chat:*", "chat:>", "chat:~!"]:
        assert "subscribe" in await client.call("subscribe", {"channel": channel}), channel
        assert "result" in (await server.api("publish", {"channel": channel, "data": 1})).json()


async def test_parsec_service_refuses_control_characters(server: Server) -> None:
    """Every ParsecService channel method answers 400 PARSEC_CHANNEL_INVALID."""
    token = server.parsec.issue_mgmt("operator").token
    methods = {
        "OpenPublic": {},
        "CreatePrivate": {"subject": "alice"},
        "GetChannel": {},
        "DeleteChannel": {},
        "Presence": {},
        "Publish": {"data": "e30="},
        "PublishOrSink": {"data": "e30=", "sink": "log"},
    }
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        for method, extra in methods.items():
            for control in CONTROLS:
                for name in [f"public:app.lobby{control}", f"private:app.room.r{control}1"]:
                    response = await http.post(
                        f"/twirp/parsec.ParsecService/{method}",
                        json={"name": name, **extra},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert response.status_code == 400, (method, name, response.text)
                    body = response.json()
                    assert body["meta"]["parsec_code"] == "PARSEC_CHANNEL_INVALID", body


async def test_library_refuses_control_characters(server: Server) -> None:
    """Parsec.publish, open_public and create_private raise PARSEC_CHANNEL_INVALID."""
    parsec = server.parsec
    for control in CONTROLS:
        for channel in [f"chat:{control}", f"plain:x{control}", f"public:app.x{control}"]:
            with pytest.raises(ParsecError) as caught:
                await parsec.publish(channel, {"n": 1})
            assert caught.value.code == "PARSEC_CHANNEL_INVALID", channel
        with pytest.raises(ParsecError, match="PARSEC_CHANNEL_INVALID"):
            await parsec.open_public(f"public:app.x{control}")
        with pytest.raises(ParsecError, match="PARSEC_CHANNEL_INVALID"):
            await parsec.create_private("alice", f"private:app.x.{control}")
