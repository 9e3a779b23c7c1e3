"""Node's side of the channels survey: what it answers other nodes, and how it merges
their answers with its own (a fake Controller plays the rest of the cluster)."""

from __future__ import annotations

import json

import msgspec
import pytest
from fake_cluster import FakeCluster

from parsec.auth.tokens import TokenVerifier
from parsec.backends.memory import MemoryBroker, MemoryPresenceManager
from parsec.channels.namespaces import ChannelRules
from parsec.engine.controller import SurveyReply
from parsec.engine.node import CHANNELS_SURVEY, SURVEY_TIMEOUT, Node
from parsec.options import Options


def _node(cluster: FakeCluster) -> Node:
    options = Options()
    return Node(
        options,
        TokenVerifier(None, hmac_secret="s" * 32),
        rules=ChannelRules.from_options(options),
        broker=MemoryBroker(),
        presence=MemoryPresenceManager(),
        controller=cluster,
    )


def _answer(counts: dict[str, int]) -> bytes:
    return json.dumps(counts).encode()


async def test_cluster_channels_sums_every_node_and_skips_malformed_answers() -> None:
    """Counts of one channel on several nodes add up; an answer that is not a JSON
    object of counts is left out rather than failing the whole listing."""
    cluster = FakeCluster(
        [
            SurveyReply("b", _answer({"chat:a": 2, "chat:b": 1})),
            SurveyReply("c", _answer({"chat:a": 3})),
            SurveyReply("d", b"not json"),
            SurveyReply("e", b'{"chat:c": "many"}'),
        ]
    )

    found = await _node(cluster).cluster_channels("chat:*")

    assert found == {"chat:a": 5, "chat:b": 1}
    assert cluster.asked == [(CHANNELS_SURVEY, b'"chat:*"', SURVEY_TIMEOUT)]


async def test_handle_survey_answers_channels_and_refuses_unknown_questions() -> None:
    """The channels survey is answered with a JSON object; an unknown survey or a
    malformed pattern raises, so the asking node leaves this one out."""
    node = _node(FakeCluster([]))

    assert json.loads(await node.handle_survey(CHANNELS_SURVEY, b'"chat:*"')) == {}
    with pytest.raises(ValueError, match="unknown survey"):
        await node.handle_survey("weather", b"")
    with pytest.raises(msgspec.DecodeError):
        await node.handle_survey(CHANNELS_SURVEY, b"{")
