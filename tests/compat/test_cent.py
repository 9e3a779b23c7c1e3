"""``cent`` (PyPI, the Centrifugo server API client) against a real ``parsec serve``:
result shapes of every OSS method the suite uses, and API errors surfacing as
``CentApiResponseError`` with the server's code."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import cent
import centrifuge
import pytest
import requests

from .parsec_process import ParsecServer
from .sdk_events import EventLog, sdk_client

pytestmark = pytest.mark.compat


def plain_channel() -> str:
    """A fresh channel in the ``plain`` namespace (no history, no presence)."""
    return f"plain:{uuid.uuid4().hex[:10]}"


def publish_all(api: cent.Client, channel: str, count: int) -> list[cent.PublishResult]:
    """Publish ``{"n": 1}`` .. ``{"n": count}`` into ``channel``."""
    return [
        api.publish(cent.PublishRequest(channel=channel, data={"n": n}))
        for n in range(1, count + 1)
    ]


def test_publish_returns_offset_and_epoch(api: cent.Client, channel: str) -> None:
    """Publishing into a history channel returns consecutive offsets in one epoch."""
    first, second = publish_all(api, channel, 2)

    assert (first.offset, second.offset) == (1, 2)
    assert first.epoch
    assert second.epoch == first.epoch


def test_publish_without_history_returns_no_position(api: cent.Client) -> None:
    """Publishing where history is off succeeds with no offset and no epoch."""
    result = api.publish(cent.PublishRequest(channel=plain_channel(), data={"n": 1}))

    assert (result.offset, result.epoch) == (0, "")


@pytest.mark.parametrize(
    ("target", "data", "code"),
    [
        pytest.param("nope:room", {"n": 1}, 102, id="unknown-namespace"),
        pytest.param("", {"n": 1}, 107, id="empty-channel"),
    ],
)
def test_publish_errors_carry_the_server_code(
    api: cent.Client, target: str, data: object, code: int
) -> None:
    """A refused publish raises CentApiResponseError with the API error code."""
    with pytest.raises(cent.CentApiResponseError) as refused:
        api.publish(cent.PublishRequest(channel=target, data=data))

    assert refused.value.code == code
    assert refused.value.message


def test_history_reads_the_stream(api: cent.Client, channel: str) -> None:
    """History returns publications in order, the top position, since and reverse reads."""
    epoch = publish_all(api, channel, 3)[0].epoch

    full = api.history(cent.HistoryRequest(channel=channel, limit=10))
    top = api.history(cent.HistoryRequest(channel=channel))
    since = api.history(
        cent.HistoryRequest(
            channel=channel, limit=10, since=cent.StreamPosition(offset=1, epoch=epoch)
        )
    )
    newest = api.history(cent.HistoryRequest(channel=channel, limit=2, reverse=True))

    assert [(p.offset, p.data) for p in full.publications] == [
        (1, {"n": 1}),
        (2, {"n": 2}),
        (3, {"n": 3}),
    ]
    assert (full.offset, full.epoch) == (3, epoch)
    assert (top.publications, top.offset, top.epoch) == ([], 3, epoch)
    assert [p.offset for p in since.publications] == [2, 3]
    assert [p.offset for p in newest.publications] == [3, 2]


def test_history_since_another_epoch_is_unrecoverable(api: cent.Client, channel: str) -> None:
    """History since a position in another epoch answers 112."""
    publish_all(api, channel, 1)

    with pytest.raises(cent.CentApiResponseError) as refused:
        api.history(
            cent.HistoryRequest(
                channel=channel, limit=10, since=cent.StreamPosition(offset=0, epoch="other")
            )
        )

    assert refused.value.code == 112


def test_history_remove_keeps_the_position(api: cent.Client, channel: str) -> None:
    """history_remove drops the publications but not the stream position."""
    epoch = publish_all(api, channel, 2)[0].epoch

    api.history_remove(cent.HistoryRemoveRequest(channel=channel))
    after = api.history(cent.HistoryRequest(channel=channel, limit=10))

    assert (after.publications, after.offset, after.epoch) == ([], 2, epoch)


@pytest.mark.parametrize("method", ["history", "presence", "presence_stats"])
def test_disabled_features_answer_108(api: cent.Client, method: str) -> None:
    """History and presence calls in a namespace without them answer 108."""
    target = plain_channel()
    requests_by_method: dict[str, Callable[[], object]] = {
        "history": lambda: api.history(cent.HistoryRequest(channel=target, limit=10)),
        "presence": lambda: api.presence(cent.PresenceRequest(channel=target)),
        "presence_stats": lambda: api.presence_stats(cent.PresenceStatsRequest(channel=target)),
    }

    with pytest.raises(cent.CentApiResponseError) as refused:
        requests_by_method[method]()

    assert refused.value.code == 108


async def test_presence_and_stats_list_connected_subscribers(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """presence maps client IDs to ClientInfo; presence_stats counts clients and users."""
    async with (
        sdk_client(server, user, info={"n": 1}) as (first, first_events),
        sdk_client(server, user, info={"n": 2}) as (second, second_events),
    ):
        ids = []
        for client, events in ((first, first_events), (second, second_events)):
            await client.connect()
            ids.append((await events.next("connected")).client)
            log = EventLog()
            await client.new_subscription(channel, events=log).subscribe()
            await log.next("subscribed")

        presence = await async_api.presence(cent.PresenceRequest(channel=channel))
        stats = await async_api.presence_stats(cent.PresenceStatsRequest(channel=channel))

    assert set(presence.presence) == set(ids)
    assert {(i.client, i.user) for i in presence.presence.values()} == {(c, user) for c in ids}
    assert presence.presence[ids[0]].conn_info == {"n": 1}
    assert (stats.num_clients, stats.num_users) == (2, 1)


async def test_channels_and_info_report_live_state(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """channels lists the active channel with its client count; info reports the node."""
    async with sdk_client(server, user) as (client, events):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        await client.new_subscription(channel, events=log).subscribe()
        await log.next("subscribed")

        exact = await async_api.channels(cent.ChannelsRequest(pattern=channel))
        by_glob = await async_api.channels(cent.ChannelsRequest(pattern="chat:*"))
        info = await async_api.info(cent.InfoRequest())

    assert list(exact.channels) == [channel]
    assert exact.channels[channel].num_clients == 1
    assert channel in by_glob.channels
    assert len(info.nodes) == 1
    node = info.nodes[0]
    assert node.uid
    assert node.name
    assert node.num_clients >= 1
    assert node.num_channels >= 1


def test_broadcast_publishes_into_every_channel(api: cent.Client, channel: str) -> None:
    """broadcast answers one response per channel; a bad channel fails alone with its code."""
    other = f"{channel}-b"

    result = api.broadcast(
        cent.BroadcastRequest(channels=[channel, "nope:room", other], data={"all": True})
    )
    history = api.history(cent.HistoryRequest(channel=other, limit=10))

    ok, bad, ok_other = result.responses
    assert ok.result is not None
    assert ok.result.offset == 1
    assert ok_other.result is not None
    assert ok_other.result.offset == 1
    assert bad.error is not None
    assert bad.error.code == 102
    assert [p.data for p in history.publications] == [{"all": True}]


def test_batch_runs_commands_in_order(api: cent.Client, channel: str) -> None:
    """batch replies to each command in order; later commands see earlier effects."""
    result = api.batch(
        cent.BatchRequest(
            requests=[
                cent.PublishRequest(channel=channel, data={"n": 1}),
                cent.PublishRequest(channel=channel, data={"n": 2}),
                cent.HistoryRequest(channel=channel, limit=10),
            ]
        )
    )

    first, second, history = result.replies
    assert isinstance(first, cent.PublishResult)
    assert isinstance(second, cent.PublishResult)
    assert isinstance(history, cent.HistoryResult)
    assert (first.offset, second.offset) == (1, 2)
    assert [p.data for p in history.publications] == [{"n": 1}, {"n": 2}]


async def test_disconnect_by_user_is_terminal_by_default(
    server: ParsecServer, async_api: cent.AsyncClient, user: str
) -> None:
    """disconnect without a code closes the user's connections with 3503 (no reconnect)."""
    async with sdk_client(server, user) as (client, events):
        await client.connect()
        await events.next("connected")

        await async_api.disconnect(cent.DisconnectRequest(user=user))
        gone = await events.next("disconnected")

        assert gone.code == 3503
        assert client.state == centrifuge.ClientState.DISCONNECTED


async def test_unsubscribe_by_user_ends_the_subscription(
    server: ParsecServer, async_api: cent.AsyncClient, user: str, channel: str
) -> None:
    """unsubscribe ends the user's subscription with 2000; the connection stays."""
    async with sdk_client(server, user) as (client, events):
        await client.connect()
        await events.next("connected")
        log = EventLog()
        sub = client.new_subscription(channel, events=log)
        await sub.subscribe()
        await log.next("subscribed")

        await async_api.unsubscribe(cent.UnsubscribeRequest(user=user, channel=channel))
        gone = await log.next("unsubscribed")
        stats = await async_api.presence_stats(cent.PresenceStatsRequest(channel=channel))

        assert gone.code == 2000
        assert sub.state == centrifuge.SubscriptionState.UNSUBSCRIBED
        assert client.state == centrifuge.ClientState.CONNECTED
        assert stats.num_clients == 0


def test_wrong_api_key_is_unauthorized(server: ParsecServer, channel: str) -> None:
    """A request with a wrong API key is refused as unauthorized (HTTP 401)."""
    session = requests.Session()
    session.trust_env = False
    with (
        cent.Client(api_url=server.api_url, api_key="wrong", session=session) as api,
        pytest.raises(cent.CentUnauthorizedError),
    ):
        api.publish(cent.PublishRequest(channel=channel, data={"n": 1}))
