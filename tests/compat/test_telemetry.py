"""``GET /parsec/telemetry`` on a real ``parsec serve``: the snapshot follows what the
test did (a subscriber, N publications kept in history, tokens issued and revoked); an
operator management token is required; the manifest names the route and the region."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cent
import httpx
import pytest

from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.scopes import Scope

from .parsec_process import ParsecServer, ServerFactory
from .sdk_events import EventLog, sdk_client

PUBLICATIONS = 7


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[ServerFactory]:
    made = ServerFactory(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _mgmt(server: ParsecServer, *scopes: Scope) -> str:
    tokens = ParsecTokens(KeyRing.open(server.state_dir))
    return tokens.issue_mgmt("ops", scopes=list(scopes) if scopes else None).token


def _telemetry(server: ParsecServer, bearer: str | None) -> httpx.Response:
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    return httpx.get(f"{server.http_url}/parsec/telemetry", headers=headers, trust_env=False)


async def test_the_snapshot_shows_subscribers_publications_and_tokens(
    factory: ServerFactory,
) -> None:
    server = factory.start(args=["--region", "eu-test"])
    channel = f"chat:{uuid.uuid4().hex[:8]}"
    bearer = _mgmt(server)
    async with (
        sdk_client(server, "ana") as (client, events),
        cent.AsyncClient(server.api_url, server.api_key) as api,
    ):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        await client.new_subscription(channel, events=log).subscribe()
        await log.next("subscribed")
        before = _telemetry(server, bearer).json()
        for n in range(PUBLICATIONS):
            await api.publish(cent.PublishRequest(channel=channel, data={"n": n}))
        private = server.create_private(f"private:tests.room.{uuid.uuid4().hex[:8]}", "bob")
        server.manage("RevokeUser", {"user_id": "mallory"})
        snapshot: dict[str, Any] = _telemetry(server, bearer).json()

    assert snapshot["channels"] == {"total_active": 1, "by_pattern": {"chat": 1}}
    assert snapshot["presence"] == {
        "total_users": 1,
        "total_agents": 1,
        "average_per_channel": 1.0,
    }
    assert snapshot["envelopes"]["by_aspect"]["chat"] > 0
    assert snapshot["envelopes"]["rate_per_second"] >= snapshot["envelopes"]["by_aspect"]["chat"]
    assert snapshot["history"] == {
        "total_envelopes_buffered": PUBLICATIONS,
        "buffer_utilization_pct": round(100 * PUBLICATIONS / 100, 2),  # chat keeps 100
    }
    issued = len([key for key in ("access_token", "refresh_token") if key in private])
    assert issued == 2, private
    tokens = snapshot["tokens"]
    assert tokens["issued_last_hour"] - before["tokens"]["issued_last_hour"] == issued
    assert tokens["active_count"] - before["tokens"]["active_count"] == issued
    assert tokens["revoked_last_hour"] - before["tokens"]["revoked_last_hour"] == 1
    assert snapshot["alerts"] == []
    assert snapshot["region"] == "eu-test"
    assert snapshot["at"].endswith("Z")


def test_telemetry_needs_an_operator_management_token(factory: ServerFactory) -> None:
    server = factory.start()
    missing = _telemetry(server, None)
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthenticated"
    assert missing.json()["meta"]["parsec_code"] == "PARSEC_AUTH_MISSING"
    bad = _telemetry(server, "not-a-token")
    assert (bad.status_code, bad.json()["code"]) == (401, "unauthenticated")
    narrow = _telemetry(server, _mgmt(server, Scope("public:team.*", ("manage",))))
    assert (narrow.status_code, narrow.json()["code"]) == (403, "permission_denied")
    assert _telemetry(server, _mgmt(server)).status_code == 200


def test_the_manifest_names_the_telemetry_route_and_the_region(factory: ServerFactory) -> None:
    server = factory.start(args=["--region", "eu-test"])
    payload = httpx.get(f"{server.http_url}/manifest", trust_env=False).json()["payload"]
    assert (payload["telemetry"], payload["region"]) == ("/parsec/telemetry", "eu-test")
