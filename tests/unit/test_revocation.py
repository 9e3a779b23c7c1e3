"""Revocations of one node: what is refused (by jti, by family, by user cutoff in a
scope), and how a node keeps its copy in step with the store, the other nodes and its
file — including after the store lost its data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest
from fake_cluster import FakeCluster
from waiting import until

from parsec.auth import jws
from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecClaims, ParsecTokens
from parsec.auth.revocation import (
    CONNECTION_TOKENS,
    EVERY_TOKEN,
    FILE_NAME,
    PRUNE_INTERVAL,
    Revocations,
    channel_tokens,
)
from parsec.auth.revocation_store import MemoryRevocationStore, Revocation, StoreState
from parsec.engine.controller import (
    RevokeCommand,
    SurveyReply,
)
from parsec.engine.revocation import REVOCATIONS_SURVEY, TokenId
from parsec.errors import ParsecError

NOW = 1_700_000_000
LATER = NOW + 3600
CHANNEL = "private:app.jobs.42"
DENIED = "PARSEC_AUTH_DENIED"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.open(tmp_path)


@pytest.fixture
def tokens(ring: KeyRing, clock: FakeClock) -> ParsecTokens:
    return ParsecTokens(ring, clock=clock)


@pytest.fixture
def store() -> MemoryRevocationStore:
    return MemoryRevocationStore()


@pytest.fixture
def revocations(store: MemoryRevocationStore, clock: FakeClock) -> Revocations:
    return Revocations(store, clock=clock)


def refusal(revocations: Revocations, claims: ParsecClaims, channel: str | None = None) -> str:
    """The PARSEC_* code ``check`` raises for ``claims``, or "" when it accepts them."""
    try:
        revocations.check(claims, channel=channel)
    except ParsecError as exc:
        return exc.code
    return ""


# -- what is refused ----------------------------------------------------------------------------


async def test_revoked_jti_is_refused_and_others_are_not(
    tokens: ParsecTokens, revocations: Revocations
) -> None:
    """Revoking one token's jti refuses that token only, whatever its kind."""
    revoked = tokens.issue_access("alice", [CHANNEL]).claims
    other = tokens.issue_access("alice", [CHANNEL]).claims
    assert revoked.jti is not None

    await revocations.revoke_token(revoked.jti, user="alice", reason="leaked", until=revoked.exp)

    assert refusal(revocations, revoked) == DENIED
    assert refusal(revocations, other) == ""
    assert revocations.connection_revoked(TokenId("alice", revoked.jti, NOW))
    assert revocations.subscription_revoked(TokenId("alice", revoked.jti, NOW), "chat:x")
    assert not revocations.connection_revoked(TokenId("alice", "another", NOW))


async def test_a_revoked_family_refuses_its_refresh_and_access_tokens(
    tokens: ParsecTokens, revocations: Revocations
) -> None:
    """A family revocation refuses every refresh and access token carrying its fid."""
    refresh = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims
    assert refresh.fid is not None
    access = tokens.issue_access("alice", [CHANNEL], fid=refresh.fid).claims
    stranger = tokens.issue_access("alice", [CHANNEL]).claims

    await revocations.revoke_family(refresh.fid, until=LATER)

    assert refusal(revocations, refresh) == DENIED
    assert refusal(revocations, access) == DENIED
    assert refusal(revocations, stranger) == ""
    assert revocations.subscription_revoked(TokenId("alice", "j", NOW, refresh.fid), CHANNEL)


async def test_user_cutoff_refuses_tokens_issued_at_or_before_it(
    tokens: ParsecTokens, revocations: Revocations, clock: FakeClock
) -> None:
    """Tokens with iat <= cutoff are refused; later ones and other users' are accepted."""
    before = tokens.issue_mgmt("alice").claims
    clock.now = NOW + 10
    at_cutoff = tokens.issue_refresh("alice", CHANNEL, ttl=900).claims
    bob = tokens.issue_access("bob", [CHANNEL]).claims

    await revocations.revoke_user("alice", cutoff=NOW + 10, until=LATER, reason="offboarded")
    clock.now = NOW + 11
    after = tokens.issue_access("alice", [CHANNEL]).claims

    assert refusal(revocations, before) == DENIED
    assert refusal(revocations, at_cutoff) == DENIED
    assert refusal(revocations, after) == ""
    assert refusal(revocations, bob) == ""


async def test_every_token_scope_covers_connection_and_subscription_tokens(
    revocations: Revocations,
) -> None:
    """A cutoff for every token (RevokeUser) covers Centrifugo connection and subscription
    tokens of the user, in any channel."""
    await revocations.revoke_user("alice", cutoff=NOW, until=LATER, scope=EVERY_TOKEN)

    assert revocations.connection_revoked(TokenId("alice", "c", NOW))
    assert revocations.subscription_revoked(TokenId("alice", "s", NOW - 5), "chat:any")
    assert not revocations.connection_revoked(TokenId("alice", "c", NOW + 1))
    assert not revocations.connection_revoked(TokenId("bob", "c", NOW))


async def test_connection_scope_covers_connection_tokens_only(
    tokens: ParsecTokens, revocations: Revocations
) -> None:
    """invalidate_user_tokens without channel: the user's connection tokens are refused,
    its subscription tokens and Parsec tokens are not (Centrifugo PRO's semantics)."""
    mgmt = tokens.issue_mgmt("alice").claims

    await revocations.revoke_user("alice", cutoff=NOW, until=LATER, scope=CONNECTION_TOKENS)

    assert revocations.connection_revoked(TokenId("alice", "c", NOW))
    assert not revocations.subscription_revoked(TokenId("alice", "s", NOW), "chat:a")
    assert refusal(revocations, mgmt) == ""


async def test_channel_scope_covers_that_channels_subscriptions_only(
    tokens: ParsecTokens, revocations: Revocations
) -> None:
    """invalidate_user_tokens with channel: the user's tokens subscribing to that channel
    are refused (a Parsec access token too); other channels and connections are not."""
    access = tokens.issue_access("alice", [CHANNEL]).claims

    await revocations.revoke_user("alice", cutoff=NOW, until=LATER, scope=channel_tokens(CHANNEL))

    assert revocations.subscription_revoked(TokenId("alice", "s", NOW), CHANNEL)
    assert not revocations.subscription_revoked(TokenId("alice", "s", NOW), "chat:other")
    assert not revocations.connection_revoked(TokenId("alice", "c", NOW))
    assert refusal(revocations, access, channel=CHANNEL) == DENIED
    assert refusal(revocations, access, channel="private:app.jobs.43") == ""
    assert refusal(revocations, access) == ""


async def test_tokens_without_the_claim_are_not_covered(revocations: Revocations) -> None:
    """A token without iat escapes cutoffs; one without jti cannot be revoked by id."""
    await revocations.revoke_user("alice", cutoff=NOW, until=LATER)

    assert not revocations.connection_revoked(TokenId("alice", "c", None))


async def test_legacy_token_without_jti_is_checked_against_the_cutoff(
    tokens: ParsecTokens, ring: KeyRing, revocations: Revocations
) -> None:
    """A Parsec token with no jti is still refused by its user's cutoff."""
    payload = {"sub": "alice", "typ": "refresh", "chs": [CHANNEL], "iat": NOW, "exp": NOW + 60}
    claims = tokens.verify(jws.sign(payload, ring.active))
    assert refusal(revocations, claims) == ""

    await revocations.revoke_user("alice", cutoff=NOW, until=LATER)

    assert refusal(revocations, claims) == DENIED


async def test_cutoffs_only_move_forward(revocations: Revocations) -> None:
    """A later cutoff replaces an earlier one; an earlier one changes nothing."""
    await revocations.revoke_user("alice", cutoff=NOW + 10, until=LATER)
    await revocations.revoke_user("alice", cutoff=NOW, until=LATER)
    assert revocations.user_cutoff("alice") == NOW + 10

    await revocations.revoke_user("alice", cutoff=NOW + 20, until=LATER)
    assert revocations.user_cutoff("alice") == NOW + 20
    assert revocations.user_cutoff("bob") is None
    assert revocations.user_cutoff("alice", CONNECTION_TOKENS) is None


async def test_empty_ids_are_invalid_arguments(revocations: Revocations) -> None:
    """Revoking an empty jti, family or user raises PARSEC_INVALID_ARGUMENT."""
    for revoking in (
        revocations.revoke_token("", until=LATER),
        revocations.revoke_family("", until=LATER),
        revocations.revoke_user("", cutoff=NOW, until=LATER),
    ):
        with pytest.raises(ParsecError) as caught:
            await revoking
        assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


async def test_revocations_are_forgotten_at_their_end(
    revocations: Revocations, store: MemoryRevocationStore, clock: FakeClock
) -> None:
    """An entry stops counting at its ``until``; the node and the store drop it at the
    next prune."""
    await revocations.start()
    await revocations.revoke_token("j1", until=NOW + 10)
    await revocations.revoke_token("j2", until=NOW + 10 * int(PRUNE_INTERVAL))
    assert len(revocations) == len(store) == 2

    clock.now = NOW + PRUNE_INTERVAL
    assert not revocations.token_revoked("j1")
    assert revocations.token_revoked("j2")
    await revocations.sync()
    assert len(revocations) == len(store) == 1
    await revocations.aclose()


async def test_listeners_hear_of_new_revocations_only(revocations: Revocations) -> None:
    """Listeners are called when something is newly revoked (or extended), not when a
    revocation the node already holds comes again."""
    calls: list[int] = []
    revocations.listeners.append(lambda: calls.append(len(revocations)))

    await revocations.revoke_token("j", until=LATER)
    await revocations.revoke_token("j", until=LATER)
    await revocations.handle_command(RevokeCommand({"t:j": (LATER, LATER)}))
    await revocations.revoke_token("j", until=LATER + 1)

    assert calls == [1, 1]


# -- keeping in step ----------------------------------------------------------------------------


async def test_a_revocation_reaches_a_node_sharing_the_store_at_its_next_look(
    store: MemoryRevocationStore, clock: FakeClock
) -> None:
    """Node B holds what node A revoked once it looks at the store (every second)."""
    a, b = Revocations(store, clock=clock), Revocations(store, clock=clock)
    await a.start()
    await b.start()

    await a.revoke_user("alice", cutoff=NOW, until=LATER)
    assert b.user_cutoff("alice") is None
    await b.sync()

    assert b.user_cutoff("alice") == NOW
    await a.aclose()
    await b.aclose()


async def test_every_node_writes_back_what_a_store_that_lost_its_data_forgot(
    store: MemoryRevocationStore, clock: FakeClock
) -> None:
    """The store loses everything: both nodes keep refusing, the first to look writes
    its revocations back, and a node started afterwards learns them from the store."""
    a, b = Revocations(store, clock=clock), Revocations(store, clock=clock)
    await a.start()
    await b.start()
    await a.revoke_token("leaked", until=LATER)
    await b.revoke_family("reused", until=LATER)
    await a.sync()
    await b.sync()

    store.clear()
    assert a.token_revoked("leaked")
    assert b.family_revoked("reused")
    await a.sync()
    await b.sync()

    assert (await store.load()).entries.keys() == {"t:leaked", "f:reused"}
    late = Revocations(store, clock=clock)
    await late.start()
    assert late.token_revoked("leaked")
    assert late.family_revoked("reused")
    for node in (a, b, late):
        await node.aclose()


async def test_a_node_restarting_on_an_emptied_store_writes_back_its_file(
    tmp_path: Path, clock: FakeClock
) -> None:
    """With a state directory, a node keeps its revocations in its file: restarted on a
    store that lost its data, it refuses them again and writes them back."""
    cache = tmp_path / FILE_NAME
    first = Revocations(MemoryRevocationStore(), clock=clock, cache=cache)
    await first.start()
    await first.revoke_user("mallory", cutoff=NOW, until=LATER)
    await first.aclose()
    assert cache.exists()

    emptied = MemoryRevocationStore()
    again = Revocations(emptied, clock=clock, cache=cache)
    await again.start()

    assert again.user_cutoff("mallory") == NOW
    assert (await emptied.load()).entries.keys() == {'u:["mallory","*"]'}
    await again.aclose()


async def test_a_corrupted_file_stops_the_node_from_starting(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A revocations file that is not one is PARSEC_INTERNAL naming the file: a node does
    not start forgetting what it revoked."""
    cache = tmp_path / FILE_NAME
    cache.write_text("{not json")
    node = Revocations(MemoryRevocationStore(), clock=clock, cache=cache)

    with pytest.raises(ParsecError) as caught:
        await node.start()

    assert caught.value.code == "PARSEC_INTERNAL"
    assert str(cache) in caught.value.message
    await node.aclose()


class FailingStore(MemoryRevocationStore):
    """A memory store that fails like an unreachable Redis while ``down``."""

    down = False

    async def add(self, entries: Mapping[str, Revocation]) -> StoreState:
        if self.down:
            raise ParsecError("PARSEC_BROKER_NOT_READY", "redis is unreachable").client_error()
        return await super().add(entries)


async def test_a_revocation_made_while_the_store_is_down_is_in_force_and_written_later(
    clock: FakeClock,
) -> None:
    """The store is unreachable: the revocation is refused here at once, the call says
    PARSEC_BROKER_NOT_READY, and the node writes it once the store is back."""
    store = FailingStore()
    node = Revocations(store, clock=clock)
    await node.start()
    store.down = True

    with pytest.raises(ParsecError) as caught:
        await node.revoke_token("leaked", until=LATER)

    assert caught.value.code == "PARSEC_BROKER_NOT_READY"
    assert node.token_revoked("leaked")
    store.down = False
    await node.sync()
    assert "t:leaked" in (await store.load()).entries
    await node.aclose()


def answering(held: dict[str, tuple[int, int]]) -> FakeCluster:
    """Other nodes that answer the revocations survey with ``held`` (and one garbled
    answer, which is ignored)."""
    return FakeCluster([SurveyReply("peer", msgspec.json.encode(held)), SurveyReply("bad", b"[")])


async def test_a_node_starting_on_a_store_without_generation_asks_the_others(
    clock: FakeClock,
) -> None:
    """A store with nothing in it (NATS: each node's memory): the starting node takes in
    what the other live nodes hold, and sends its own revocations to them."""
    peers = answering({"t:leaked": (LATER, LATER)})
    node = Revocations(MemoryRevocationStore(), clock=clock)
    await node.start(peers)

    assert node.token_revoked("leaked")
    await node.revoke_user("alice", cutoff=NOW, until=LATER)
    assert [op for op, _, _ in peers.asked] == [REVOCATIONS_SURVEY]
    assert peers.sent == [RevokeCommand({'u:["alice","*"]': (NOW, LATER)})]
    assert msgspec.json.decode(node.survey_answer()) == {
        "t:leaked": [LATER, LATER],
        'u:["alice","*"]': [NOW, LATER],
    }
    await node.aclose()


async def test_a_revocation_the_other_nodes_could_not_be_told_of_is_sent_later(
    clock: FakeClock,
) -> None:
    """The controller fails when a revocation is made (NATS unreachable): it is in force
    here, and the other nodes are told at one of the next looks, once it works again."""
    peers = answering({})
    node = Revocations(MemoryRevocationStore(), clock=clock, check_interval=0.01)
    await node.start(peers)
    peers.down = True

    await node.revoke_token("leaked", until=LATER)

    assert node.token_revoked("leaked")
    peers.down = False
    await until(lambda: bool(peers.sent))
    assert peers.sent == [RevokeCommand({"t:leaked": (LATER, LATER)})]
    await node.aclose()
