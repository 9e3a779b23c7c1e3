"""Parsec.publish_or_sink and the DLQ operations of the facade, against real parts: a served
Parsec, centrifuge-python subscribers and an aiosmtpd SMTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sink_harness import (
    EVENT_TIMEOUT,
    SENDER,
    Mailbox,
    Served,
    email_options,
    serving,
    smtp_server,
    subscribed,
)

from parsec import AuthOptions, Namespace, Options, Parsec, ServerOptions
from parsec.channels.store import ChannelState, MemoryChannelStore
from parsec.errors import ParsecError
from parsec.services.delivery import SHUTDOWN_ERROR, DeliverySettings, go_duration
from parsec.sinks import (
    EmailRecipient,
    MemoryDLQ,
    Message,
    RecordingSinkMetrics,
    RetryPolicy,
    SinkRegistry,
)

LOBBY = "public:app.lobby"
NOBODY = "public:app.empty"
ANA = {"address": "ana@example.test"}
NOTICE = Message("Your download is ready", "report.pdf is ready.", {"job": "7"})
REFUSAL = "550 5.1.1 mailbox unavailable"


@pytest.fixture
def mailbox() -> Mailbox:
    """A scriptable SMTP handler (accepts by default)."""
    return Mailbox()


@pytest_asyncio.fixture
async def smtp_port(mailbox: Mailbox) -> AsyncIterator[int]:
    """The port of an SMTP server answering with ``mailbox``."""
    async with smtp_server(mailbox) as port:
        yield port


@pytest_asyncio.fixture
async def served(tmp_path: Path, smtp_port: int) -> AsyncIterator[Served]:
    """A served Parsec with the email sink ``mail`` and the channel LOBBY open."""
    async with serving(email_options(tmp_path, smtp_port)) as running:
        await running.parsec.open_public(LOBBY)
        yield running


def messages_left(mailbox: Mailbox) -> int:
    """How many accepted emails no test step has taken yet."""
    return mailbox.received.qsize()


# -- which way the message goes -----------------------------------------------------------


async def test_a_live_subscriber_gets_the_publication_and_no_email_is_sent(
    served: Served, mailbox: Mailbox
) -> None:
    """With a centrifuge-python subscriber on the channel the data is published, not mailed."""
    parsec = served.parsec
    async with subscribed(served, "ana", LOBBY) as publications:
        result = await parsec.publish_or_sink(LOBBY, {"ready": True}, "mail", ANA, NOTICE)
        assert result.sinked is False
        assert result.outcome is None
        assert result.position is not None
        assert result.position.offset == 1
        assert await asyncio.wait_for(publications.get(), 10) == {"ready": True}
    # A later sinked message is the only email the server ever received.
    await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message("second"))
    assert (await mailbox.next_message())["Subject"] == "second"
    assert messages_left(mailbox) == 0
    assert await parsec.dlq_count() == 0


async def test_without_a_subscriber_the_message_is_emailed(
    served: Served, mailbox: Mailbox
) -> None:
    """Nobody on the channel: the email goes out and the call reports its outcome."""
    result = await served.parsec.publish_or_sink(LOBBY, {"ready": True}, "mail", ANA, NOTICE)

    assert result.sinked is True
    assert result.position is None
    assert result.outcome is not None
    assert result.outcome.delivered is True
    assert result.outcome.attempts == 1
    mail = await mailbox.next_message()
    assert mail["To"] == "ana@example.test"
    assert mail["From"] == SENDER
    assert mail["Subject"] == "Your download is ready"
    assert mail.get_content().strip() == "report.pdf is ready."
    assert mail["Message-ID"]
    assert mail["Date"]


async def test_a_sinked_message_is_not_published(served: Served, mailbox: Mailbox) -> None:
    """Sinking never also publishes: the channel's history stays empty."""
    await served.parsec.publish_or_sink(LOBBY, {"n": 1}, "mail", ANA, NOTICE)
    await mailbox.next_message()

    history = await served.parsec.node.history(LOBBY, limit=10)
    assert history.publications == []


async def test_a_typed_recipient_works_like_its_json(served: Served, mailbox: Mailbox) -> None:
    """An EmailRecipient and a bare address string reach the same mailbox as the JSON form."""
    parsec = served.parsec
    await parsec.publish_or_sink(NOBODY, {}, "mail", EmailRecipient("bo@example.test"), NOTICE)
    await parsec.publish_or_sink(NOBODY, {}, "mail", "cy@example.test", NOTICE)

    assert (await mailbox.next_message())["To"] == "bo@example.test"
    assert (await mailbox.next_message())["To"] == "cy@example.test"


async def test_a_missing_managed_channel_is_sinked(served: Served, mailbox: Mailbox) -> None:
    """A public channel nobody opened has nobody listening: the message is emailed."""
    result = await served.parsec.publish_or_sink("public:app.never-opened", {}, "mail", ANA, NOTICE)

    assert result.sinked is True
    assert (await mailbox.next_message())["Subject"] == NOTICE.subject


async def test_a_closed_channel_with_a_subscriber_is_sinked(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """A closed channel refuses publishes even to the subscribers it kept: the sink delivers."""
    store = MemoryChannelStore()
    async with serving(email_options(tmp_path, smtp_port), channel_store=store) as running:
        opened = await running.parsec.open_public(LOBBY)
        async with subscribed(running, "ana", LOBBY) as publications:
            closed = dataclasses.replace(opened, state=ChannelState.CLOSED)
            assert await store.replace(opened, closed)

            result = await running.parsec.publish_or_sink(LOBBY, {"x": 1}, "mail", ANA, NOTICE)

            assert result.sinked is True
            assert (await mailbox.next_message())["Subject"] == NOTICE.subject
            assert publications.empty()


async def test_a_namespace_without_presence_counts_this_nodes_subscribers(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """Without presence, a local subscriber decides: published when there, emailed when not."""
    options = email_options(
        tmp_path,
        smtp_port,
        namespaces=[Namespace(name="news", presence=False, allow_subscribe_for_client=True)],
    )
    async with serving(options) as running:
        parsec = running.parsec
        async with subscribed(running, "ana", "news:sports") as publications:
            listened = await parsec.publish_or_sink("news:sports", {"goal": 1}, "mail", ANA, NOTICE)
            assert listened.sinked is False
            assert await asyncio.wait_for(publications.get(), 10) == {"goal": 1}
        alone = await parsec.publish_or_sink("news:weather", {}, "mail", ANA, NOTICE)
        assert alone.sinked is True
        assert (await mailbox.next_message())["Subject"] == NOTICE.subject


# -- background delivery -----------------------------------------------------------------


async def test_no_wait_returns_before_delivery_and_the_email_still_arrives(
    served: Served, mailbox: Mailbox
) -> None:
    """wait=False queues the delivery: the call returns while the SMTP server holds it."""
    mailbox.gate.clear()

    result = await served.parsec.publish_or_sink(LOBBY, {}, "mail", ANA, NOTICE, wait=False)

    assert result.sinked is True
    assert result.outcome is None
    assert messages_left(mailbox) == 0
    mailbox.gate.set()
    assert (await mailbox.next_message())["To"] == "ana@example.test"


async def test_a_slow_smtp_server_never_blocks_publishers(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """With one worker stuck on a slow server, the bounded queue fills and then refuses at
    once with PARSEC_SINK_UNAVAILABLE; publishing to listeners goes on meanwhile."""
    mailbox.gate.clear()
    delivery = DeliverySettings(workers=1, capacity=2)
    async with serving(email_options(tmp_path, smtp_port), delivery=delivery) as running:
        parsec = running.parsec
        await parsec.open_public(LOBBY)
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message("1"), wait=False)
        await mailbox.next_arrival()  # the only worker now waits on the SMTP server
        for subject in ("2", "3"):
            await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message(subject), wait=False)

        with pytest.raises(ParsecError) as refused:
            await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message("4"), wait=False)
        assert refused.value.code == "PARSEC_SINK_UNAVAILABLE"
        assert "full" in refused.value.message
        async with subscribed(running, "ana", LOBBY) as publications:
            published = await parsec.publish_or_sink(LOBBY, {"live": 1}, "mail", ANA, NOTICE)
            assert published.sinked is False
            assert await asyncio.wait_for(publications.get(), 10) == {"live": 1}

        mailbox.gate.set()
        subjects = [(await mailbox.next_message())["Subject"] for _ in range(3)]
        assert subjects == ["1", "2", "3"]


async def test_closing_drains_the_queue_before_the_deadline(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """aclose delivers what is queued; a failure on the way lands in the DLQ."""
    mailbox.refuse = REFUSAL
    dlq = MemoryDLQ()
    async with serving(email_options(tmp_path, smtp_port), dlq=dlq) as running:
        await running.parsec.publish_or_sink(NOBODY, {}, "mail", ANA, NOTICE, wait=False)

    [item] = await dlq.items("mail")
    assert item.recipient == ANA
    assert item.message == NOTICE
    assert "550" in item.last_error


async def test_closing_dead_letters_what_the_deadline_leaves(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """Past the drain deadline a delivery under way is cancelled and one never started is
    kept: both land in the DLQ with why they were not delivered."""
    mailbox.gate.clear()
    dlq = MemoryDLQ()
    delivery = DeliverySettings(workers=1, capacity=5, drain_timeout=0)
    async with serving(email_options(tmp_path, smtp_port), dlq=dlq, delivery=delivery) as running:
        parsec = running.parsec
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message("started"), wait=False)
        await mailbox.next_arrival()
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, Message("waiting"), wait=False)

    errors = {item.message.subject: item.last_error for item in await dlq.items("mail")}
    assert errors == {"started": "delivery cancelled", "waiting": SHUTDOWN_ERROR}
    assert messages_left(mailbox) == 0


class StubbornSink:
    """A sink whose send never ends and that, cancelled, cleans up until cancelled again."""

    name = "stubborn"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, recipient: object, message: Message) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.Event().wait()

    def decode_recipient(self, data: object) -> object:
        return data

    def encode_recipient(self, recipient: object) -> object:
        return recipient


async def test_closing_stops_a_sink_that_ignores_the_first_cancel(tmp_path: Path) -> None:
    """A delivery that keeps running after being cancelled is cancelled again: close ends,
    and the delivery is dead-lettered."""
    sink = StubbornSink()
    options = Options(auth=AuthOptions(state_dir=tmp_path), sinks=SinkRegistry([sink]))
    dlq = MemoryDLQ()
    async with Parsec(options, dlq=dlq, delivery=DeliverySettings(drain_timeout=0)) as parsec:
        await parsec.publish_or_sink(NOBODY, {}, "stubborn", "anyone", NOTICE, wait=False)
        await asyncio.wait_for(sink.started.wait(), 10)

    [item] = await dlq.items("stubborn")
    assert item.last_error == "delivery cancelled"


async def test_background_delivery_needs_a_running_instance(tmp_path: Path, smtp_port: int) -> None:
    """wait=False before start and after close is refused with PARSEC_SINK_UNAVAILABLE."""
    parsec = Parsec(email_options(tmp_path, smtp_port))
    with pytest.raises(ParsecError) as before:
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, NOTICE, wait=False)
    await parsec.start()
    await parsec.aclose()
    with pytest.raises(ParsecError) as after:
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, NOTICE, wait=False)

    assert before.value.code == after.value.code == "PARSEC_SINK_UNAVAILABLE"


# -- failures and bad input ----------------------------------------------------------------


async def test_a_refusing_smtp_server_lands_the_message_in_the_dlq(
    served: Served, mailbox: Mailbox
) -> None:
    """A 5xx refusal is terminal: one attempt, then a DLQ item with everything needed to
    replay it; the call itself does not raise."""
    mailbox.refuse = REFUSAL
    parsec = served.parsec

    result = await parsec.publish_or_sink(LOBBY, {}, "mail", ANA, NOTICE)

    assert result.sinked is True
    assert result.outcome is not None
    assert result.outcome.delivered is False
    assert result.outcome.attempts == 1
    [item] = await parsec.dlq_list("mail")
    assert item.id == result.outcome.dlq_id
    assert (item.sink, item.recipient, item.message, item.attempts) == ("mail", ANA, NOTICE, 1)
    assert "550" in item.last_error
    assert await parsec.dlq_count("mail") == 1
    assert await parsec.dlq_count("") == 1
    assert await parsec.dlq_count("other") == 0


async def test_a_temporary_smtp_failure_is_retried(served: Served, mailbox: Mailbox) -> None:
    """A 4xx answer is transient: the second attempt delivers."""
    mailbox.replies = ["451 4.3.0 try again later"]

    result = await served.parsec.publish_or_sink(LOBBY, {}, "mail", ANA, NOTICE)

    assert result.outcome is not None
    assert (result.outcome.delivered, result.outcome.attempts) == (True, 2)
    await mailbox.next_message()


@pytest.mark.parametrize("channel", ["Public:App", "nowhere:x", "public:app", ""])
async def test_a_bad_channel_is_refused(served: Served, mailbox: Mailbox, channel: str) -> None:
    """A malformed name or an unknown namespace is PARSEC_CHANNEL_INVALID; nothing is sent."""
    with pytest.raises(ParsecError) as refused:
        await served.parsec.publish_or_sink(channel, {}, "mail", ANA, NOTICE)
    assert refused.value.code == "PARSEC_CHANNEL_INVALID"
    assert messages_left(mailbox) == 0


@pytest.mark.parametrize("wait", [True, False])
async def test_an_unknown_sink_is_refused_even_with_a_listener(served: Served, wait: bool) -> None:
    """An unknown sink is PARSEC_SINK_CONFIG_INVALID whether or not anyone listens."""
    async with subscribed(served, "ana", LOBBY):
        with pytest.raises(ParsecError) as refused:
            await served.parsec.publish_or_sink(LOBBY, {}, "sms", ANA, NOTICE, wait=wait)
    assert refused.value.code == "PARSEC_SINK_CONFIG_INVALID"
    assert "sms" in refused.value.message
    history = await served.parsec.node.history(LOBBY, limit=10)
    assert history.publications == []


async def test_an_unknown_sink_is_named_and_logged(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The error names the unknown sink; the server log says which sinks there are."""
    caplog.set_level(logging.INFO, logger="parsec.sinks")
    with pytest.raises(ParsecError) as refused:
        await served.parsec.publish_or_sink(LOBBY, {}, "sms", ANA, NOTICE)
    assert refused.value.message.startswith("unknown sink 'sms': no sink of that name")
    (record,) = [r for r in caplog.records if "unknown sink" in r.getMessage()]
    assert (record.name, record.levelno) == ("parsec.sinks", logging.INFO)
    assert record.getMessage() == "unknown sink 'sms'; configured sinks: mail"


@pytest.mark.parametrize("recipient", [None, {}, {"address": "not an address"}, 42])
async def test_a_bad_recipient_is_refused_before_anything_is_sent(
    served: Served, mailbox: Mailbox, recipient: object
) -> None:
    """A recipient the email sink cannot use is PARSEC_INVALID_ARGUMENT, for wait or not."""
    for wait in (True, False):
        with pytest.raises(ParsecError) as refused:
            await served.parsec.publish_or_sink(NOBODY, {}, "mail", recipient, NOTICE, wait=wait)
        assert refused.value.code == "PARSEC_INVALID_ARGUMENT"
    assert await served.parsec.dlq_count() == 0
    assert messages_left(mailbox) == 0


@pytest.mark.parametrize("data", [b"{not json", b"", object()])
async def test_data_that_is_not_json_is_refused(served: Served, data: object) -> None:
    """Bytes that are not JSON, or a value JSON cannot encode, are PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as refused:
        await served.parsec.publish_or_sink(NOBODY, data, "mail", ANA, NOTICE)
    assert refused.value.code == "PARSEC_INVALID_ARGUMENT"


OVERSIZED = "a" * (ServerOptions().max_publication_size - 1)
"""Data one byte over the default publication size limit once encoded as JSON."""


@pytest.mark.parametrize("listening", [False, True], ids=["nobody-listens", "a-subscriber"])
async def test_data_over_the_size_limit_is_refused_whichever_way_it_would_go(
    served: Served, mailbox: Mailbox, listening: bool
) -> None:
    """Data over the publication size limit is PARSEC_PAYLOAD_TOO_LARGE whether it would
    be published or sinked, waiting or not: nothing is published, mailed or dead-lettered."""
    async with contextlib.AsyncExitStack() as stack:
        if listening:
            await stack.enter_async_context(subscribed(served, "ana", LOBBY))
        for wait in (True, False):
            with pytest.raises(ParsecError) as refused:
                await served.parsec.publish_or_sink(
                    LOBBY, OVERSIZED, "mail", ANA, NOTICE, wait=wait
                )
            assert refused.value.code == "PARSEC_PAYLOAD_TOO_LARGE"
    history = await served.parsec.node.history(LOBBY, limit=10)
    assert history.publications == []
    assert await served.parsec.dlq_count() == 0
    assert messages_left(mailbox) == 0


async def test_publish_or_sink_over_http_over_the_size_limit_is_413(
    served: Served, mailbox: Mailbox
) -> None:
    """ParsecService PublishOrSink of oversized data is a 413 Twirp error naming
    PARSEC_PAYLOAD_TOO_LARGE; no email goes out."""
    token = served.parsec.issue_mgmt("operator").token
    body = {
        "name": LOBBY,
        "data": base64.b64encode(json.dumps(OVERSIZED).encode()).decode(),
        "sink": "mail",
        "recipient": ANA,
        "wait": True,
    }
    async with httpx.AsyncClient(base_url=served.url, trust_env=False) as http:
        response = await http.post(
            "/twirp/parsec.ParsecService/PublishOrSink",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=EVENT_TIMEOUT,
        )
    assert response.status_code == 413
    assert response.json()["meta"] == {"parsec_code": "PARSEC_PAYLOAD_TOO_LARGE"}
    assert messages_left(mailbox) == 0


async def test_with_no_sinks_configured_every_sink_is_unknown(tmp_path: Path) -> None:
    """A Parsec without sinks refuses publish_or_sink with PARSEC_SINK_CONFIG_INVALID."""
    async with Parsec(Options(auth=AuthOptions(state_dir=tmp_path))) as parsec:
        with pytest.raises(ParsecError) as refused:
            await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, NOTICE)
        assert refused.value.code == "PARSEC_SINK_CONFIG_INVALID"
        assert parsec.manifest()["sinks"] == []


# -- the DLQ on the facade -----------------------------------------------------------------


async def test_replay_resends_and_a_failed_replay_lands_a_new_item(
    served: Served, mailbox: Mailbox
) -> None:
    """Replay keeps the item; failing again adds an item, succeeding sends the email."""
    parsec = served.parsec
    mailbox.refuse = REFUSAL
    first = await parsec.publish_or_sink(LOBBY, {}, "mail", ANA, NOTICE)
    assert first.outcome is not None
    original = first.outcome.dlq_id
    assert original is not None

    again = await parsec.dlq_replay(original)
    assert again.delivered is False
    assert again.dlq_id not in (None, original)
    assert [item.id for item in await parsec.dlq_list("mail")] == [again.dlq_id, original]

    mailbox.refuse = None
    replayed = await parsec.dlq_replay(original)
    assert (replayed.delivered, replayed.dlq_id) == (True, None)
    assert (await mailbox.next_message())["Subject"] == NOTICE.subject
    assert await parsec.dlq_count("mail") == 2


async def test_discard_removes_one_item_and_is_idempotent(served: Served, mailbox: Mailbox) -> None:
    """dlq_discard removes the item once; a second discard reports there was none."""
    mailbox.refuse = REFUSAL
    parsec = served.parsec
    outcome = (await parsec.publish_or_sink(LOBBY, {}, "mail", ANA, NOTICE)).outcome
    assert outcome is not None
    assert outcome.dlq_id is not None

    assert await parsec.dlq_discard(outcome.dlq_id) is True
    assert await parsec.dlq_discard(outcome.dlq_id) is False
    assert await parsec.dlq_count() == 0


async def test_replay_of_an_unknown_item_is_not_found(served: Served) -> None:
    """Replaying an id the DLQ does not hold is PARSEC_SINK_DLQ_NOT_FOUND."""
    with pytest.raises(ParsecError) as refused:
        await served.parsec.dlq_replay("0123456789abcdef")
    assert refused.value.code == "PARSEC_SINK_DLQ_NOT_FOUND"


async def test_dlq_list_is_newest_first_and_limited(served: Served, mailbox: Mailbox) -> None:
    """dlq_list returns the newest items first, at most ``limit``; a limit below 1 is refused."""
    mailbox.refuse = REFUSAL
    parsec = served.parsec
    for subject in ("a", "b", "c"):
        await parsec.publish_or_sink(LOBBY, {}, "mail", ANA, Message(subject))

    assert [i.message.subject for i in await parsec.dlq_list("mail", 2)] == ["c", "b"]
    assert [i.message.subject for i in await parsec.dlq_list("", 50)] == ["c", "b", "a"]
    with pytest.raises(ParsecError) as refused:
        await parsec.dlq_list("mail", 0)
    assert refused.value.code == "PARSEC_INVALID_ARGUMENT"


async def test_sink_metrics_see_attempts_and_the_dlq_size(
    tmp_path: Path, smtp_port: int, mailbox: Mailbox
) -> None:
    """The metrics hooks passed to Parsec record each attempt and the DLQ size."""
    metrics = RecordingSinkMetrics()
    mailbox.refuse = REFUSAL
    async with Parsec(email_options(tmp_path, smtp_port), sink_metrics=metrics) as parsec:
        await parsec.publish_or_sink(NOBODY, {}, "mail", ANA, NOTICE)
    assert metrics.outcomes("mail") == ["terminal"]
    assert metrics.dlq_sizes == {"mail": 1}


# -- manifest --------------------------------------------------------------------------------


async def test_the_manifest_names_the_sinks_dlq_and_retry_policy(tmp_path: Path) -> None:
    """sinks (registered names), dlq_backend and sink_retry appear in the manifest."""
    options = email_options(tmp_path, 2525, retry=RetryPolicy(4, 0.5, 90.0))
    manifest = Parsec(options).manifest()
    assert manifest["sinks"] == ["mail"]
    assert manifest["dlq_backend"] == "memory"
    assert manifest["sink_retry"] == {
        "max_attempts": 4,
        "base_backoff": "500ms",
        "max_backoff": "1m30s",
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (30, "30s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (5400.5, "1h30m0.5s"),
    ],
)
def test_durations_are_written_as_go_does(seconds: float, text: str) -> None:
    """go_duration writes seconds the way Go's time.Duration prints them."""
    assert go_duration(seconds) == text


def test_delivery_settings_refuse_nonsense() -> None:
    """Zero workers, zero capacity or a negative drain deadline are ValueErrors."""
    with pytest.raises(ValueError, match="at least 1"):
        DeliverySettings(workers=0)
    with pytest.raises(ValueError, match="at least 1"):
        DeliverySettings(capacity=0)
    with pytest.raises(ValueError, match="negative"):
        DeliverySettings(drain_timeout=-1.0)
