"""An org's own namespaces (``/api/v1/orgs/{slug}/namespaces``): they replace the
operator's for that org only, take effect at once (the org's Parsec restarts), and are
held to what the shared server allows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from parsec.db.schema import AuditEvent, Member, Org, User

from .conftest import Served

GAME = {
    "name": "game",
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "history_size": 5,
    "history_ttl": "60s",
}


async def test_an_orgs_namespaces_replace_the_operators_for_that_org_only(
    org_server: Served,
) -> None:
    alice = await org_server.tenancy.browser("alice")
    bob = await org_server.tenancy.browser("bob")
    before = (await alice.get("/api/v1/orgs/alice/namespaces")).json()
    assert before["own"] is False
    assert [n["name"] for n in before["namespaces"]] == ["chat"]

    token = (await org_server.exchange(alice))["token"]
    url = org_server.ws("/orgs/alice/connection/websocket")
    async with org_server.client(url, token) as (client, events):
        await events.next("connected")
        assert (await events.next("connecting")).code == 0  # the first connect
        reply = await alice.put("/api/v1/orgs/alice/namespaces", json={"namespaces": [GAME]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["own"] is True
        assert reply.json()["namespaces"][0]["history_ttl"] == 60
        # the org's Parsec restarted under the new rules: the SDK reconnects to it
        assert (await events.next("connecting")).code == 3001
        await events.next("connected")
        game = client.new_subscription("game:1", events=events)
        await game.subscribe()
        await events.next("subscribed")
        chat = client.new_subscription("chat:room", events=events)
        await chat.subscribe()
        refused = await events.next("unsubscribed")
        assert refused.code == 102  # unknown channel: chat is not alice's namespace now

    theirs = (await bob.get("/api/v1/orgs/bob/namespaces")).json()
    assert (theirs["own"], [n["name"] for n in theirs["namespaces"]]) == (False, ["chat"])

    back = await alice.delete("/api/v1/orgs/alice/namespaces")
    assert back.json()["own"] is False


@pytest.mark.parametrize(
    ("namespace", "key"),
    [
        ({"name": "xy", "channel_regex": "^(a+)+$"}, "namespaces[0].channel_regex"),
        ({"name": "xy", "history_size": 5000, "history_ttl": "1h"}, "namespaces[0].history_size"),
        ({"name": "xy", "history_size": 5, "history_ttl": "720h"}, "namespaces[0].history_ttl"),
        ({"name": "xy", "no_such_option": True}, "namespaces[0].no_such_option"),
        ({"allow_subscribe_for_client": True}, "namespaces[0].name"),
        ({"name": "xy", "history_size": "lots"}, "namespaces[0].history_size"),
    ],
)
async def test_a_bad_namespace_is_400_naming_its_key(
    org_server: Served, namespace: dict[str, Any], key: str
) -> None:
    alice = await org_server.tenancy.browser("alice")
    reply = await alice.put("/api/v1/orgs/alice/namespaces", json={"namespaces": [namespace]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "PARSEC_INVALID_ARGUMENT"
    assert key in reply.json()["error"]["message"]
    assert (await alice.get("/api/v1/orgs/alice/namespaces")).json()["own"] is False


async def test_only_an_admin_changes_them_and_it_is_audited(org_server: Served) -> None:
    alice = await org_server.tenancy.browser("alice")
    bob = await org_server.tenancy.browser("bob")
    accounts = org_server.server.parsec.accounts
    assert accounts is not None
    async with accounts.db.transaction() as session:
        org = await session.scalar(select(Org).where(Org.slug == "alice"))
        user = await session.scalar(select(User).where(User.username == "bob"))
        assert org is not None
        assert user is not None
        session.add(Member(org_id=org.id, user_id=user.id, role="member"))
    assert (await bob.get("/api/v1/orgs/alice/namespaces")).status_code == 200
    refused = await bob.put("/api/v1/orgs/alice/namespaces", json={"namespaces": [GAME]})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "PARSEC_PERMISSION_DENIED"
    assert (
        await alice.put("/api/v1/orgs/alice/namespaces", json={"namespaces": [GAME]})
    ).is_success
    async with accounts.db.session() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action == "org.namespaces_changed")
            )
        )
    assert actions == ["org.namespaces_changed"]
