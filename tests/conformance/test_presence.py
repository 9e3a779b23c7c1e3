"""PresenceManager conformance: the guarantees stated in ``parsec.engine.presence``."""

from __future__ import annotations

import uuid

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsec.engine.presence import PresenceManager, PresenceStats
from parsec.engine.types import ClientInfo

from .factories import BackendFactory

TTL = 60.0


def info(user: str, client: str, conn_info: bytes = b"") -> ClientInfo:
    if conn_info:
        return ClientInfo(user=user, client=client, conn_info=msgspec.Raw(conn_info))
    return ClientInfo(user=user, client=client)


async def test_added_client_is_present(presence: PresenceManager, channel: str) -> None:
    """An added client is listed by client id with its info and counted."""
    alice = info("alice", "c1", b'{"name":"Alice"}')

    await presence.add_presence(channel, "c1", alice, TTL)

    assert await presence.presence(channel) == {"c1": alice}
    assert await presence.presence_stats(channel) == PresenceStats(1, 1)


async def test_adding_again_refreshes_the_entry(presence: PresenceManager, channel: str) -> None:
    """add_presence is an upsert: a second add keeps one entry with the newest info."""
    await presence.add_presence(channel, "c1", info("alice", "c1", b'{"v":1}'), TTL)
    newer = info("alice", "c1", b'{"v":2}')

    await presence.add_presence(channel, "c1", newer, TTL)

    assert await presence.presence(channel) == {"c1": newer}
    assert await presence.presence_stats(channel) == PresenceStats(1, 1)


async def test_remove_forgets_only_that_client(presence: PresenceManager, channel: str) -> None:
    """Removing one client leaves the others present."""
    await presence.add_presence(channel, "c1", info("alice", "c1"), TTL)
    await presence.add_presence(channel, "c2", info("bob", "c2"), TTL)

    await presence.remove_presence(channel, "c1", "alice")

    assert await presence.presence(channel) == {"c2": info("bob", "c2")}
    assert await presence.presence_stats(channel) == PresenceStats(1, 1)


async def test_remove_is_idempotent(presence: PresenceManager, channel: str) -> None:
    """Removing twice, a client never added, or in an unknown channel raises nothing."""
    await presence.add_presence(channel, "c1", info("alice", "c1"), TTL)

    await presence.remove_presence(channel, "c1", "alice")
    await presence.remove_presence(channel, "c1", "alice")
    await presence.remove_presence(channel, "never-added", "nobody")
    await presence.remove_presence(f"{channel}-unknown", "c1", "alice")

    assert await presence.presence(channel) == {}
    assert await presence.presence_stats(channel) == PresenceStats(0, 0)


async def test_stats_count_distinct_users(presence: PresenceManager, channel: str) -> None:
    """Several connections of one user count as several clients but one user."""
    for client, user in [("c1", "alice"), ("c2", "alice"), ("c3", "bob"), ("c4", "")]:
        await presence.add_presence(channel, client, info(user, client), TTL)

    assert await presence.presence_stats(channel) == PresenceStats(4, 3)


async def test_user_stays_counted_while_one_client_remains(
    presence: PresenceManager, channel: str
) -> None:
    """A user with two clients is still counted after one of them leaves."""
    await presence.add_presence(channel, "c1", info("alice", "c1"), TTL)
    await presence.add_presence(channel, "c2", info("alice", "c2"), TTL)

    await presence.remove_presence(channel, "c1", "alice")

    assert await presence.presence_stats(channel) == PresenceStats(1, 1)


async def test_unknown_channel_is_empty(presence: PresenceManager, channel: str) -> None:
    """A channel nobody joined has no presence and zero stats."""
    assert await presence.presence(channel) == {}
    assert await presence.presence_stats(channel) == PresenceStats(0, 0)


async def test_channels_are_independent(presence: PresenceManager, channel: str) -> None:
    """Presence in one channel does not show in another."""
    other = f"{channel}-other"
    await presence.add_presence(channel, "c1", info("alice", "c1"), TTL)
    await presence.add_presence(other, "c2", info("bob", "c2"), TTL)

    await presence.remove_presence(other, "c2", "bob")

    assert await presence.presence(channel) == {"c1": info("alice", "c1")}
    assert await presence.presence(other) == {}


async def test_aclose_is_idempotent(backend: BackendFactory) -> None:
    """Closing a presence manager twice raises nothing."""
    presence = backend.presence()

    await presence.aclose()
    await presence.aclose()


operations = st.lists(
    st.tuples(
        st.booleans(),  # True adds, False removes
        st.sampled_from(["c1", "c2", "c3", "c4"]),
        st.sampled_from(["alice", "bob", "carol"]),
    ),
    max_size=25,
)


# The backend fixture is function-scoped on purpose: each example makes its own
# instance from it and uses a channel of its own, so examples share no state.
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_presence_and_stats_agree_with_a_model(
    backend: BackendFactory, ops: list[tuple[bool, str, str]]
) -> None:
    """After any adds and removes, presence and stats match a dict of the last adds."""
    presence = backend.presence()
    channel = f"conformance:{uuid.uuid4().hex[:12]}"
    model: dict[str, ClientInfo] = {}
    for add, client, user in ops:
        if add:
            model[client] = info(user, client)
            await presence.add_presence(channel, client, model[client], TTL)
        else:
            model.pop(client, None)
            await presence.remove_presence(channel, client, user)

    present = await presence.presence(channel)
    stats = await presence.presence_stats(channel)

    assert present == model
    assert stats == PresenceStats(len(present), len({i.user for i in present.values()}))
