"""parsec.sinks.retry: backoff with jitter, Retry-After, classification, dead-lettering."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.errors import ParsecError
from parsec.sinks import (
    DLQItem,
    MemoryDLQ,
    Message,
    RecordingSinkMetrics,
    RetryingSender,
    RetryPolicy,
    SinkError,
    SinkRegistry,
)
from parsec.sinks.metrics import Attempt

MESSAGE = Message("Build done", "Your download is ready.", {"job": "42"})


class ScriptedSink:
    """A sink whose attempts fail with the scripted errors, then succeed."""

    def __init__(self, name: str, failures: Sequence[BaseException] = ()) -> None:
        self._name = name
        self.failures = list(failures)
        self.received: list[tuple[object, Message]] = []

    @property
    def name(self) -> str:
        return self._name

    async def send(self, recipient: object, message: Message) -> None:
        self.received.append((recipient, message))
        if self.failures:
            raise self.failures.pop(0)

    def decode_recipient(self, data: object) -> object:
        if not isinstance(data, dict) or not isinstance(data.get("to"), str):
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "expected {'to': str}")
        return data["to"]

    def encode_recipient(self, recipient: object) -> object:
        to = recipient if isinstance(recipient, str) else self.decode_recipient(recipient)
        return {"to": to}


class Clock:
    """Unix time that moves only when the fake sleep sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def transient(text: str = "HTTP 503", retry_after: float | None = None) -> SinkError:
    return SinkError(text, transient=True, retry_after=retry_after)


def terminal(text: str = "HTTP 400") -> SinkError:
    return SinkError(text, transient=False)


def make_sender(
    *sinks: ScriptedSink,
    clock: Clock,
    dlq: MemoryDLQ | None = None,
    draw: float = 0.5,
    metrics: RecordingSinkMetrics | None = None,
    **kwargs: object,
) -> RetryingSender:
    return RetryingSender(
        SinkRegistry(sinks),
        dlq or MemoryDLQ(),
        sleep=clock.sleep,
        random=lambda: draw,
        clock=clock,
        metrics=metrics,
        **kwargs,  # type: ignore[arg-type]
    )


# -- RetryPolicy ----------------------------------------------------------------------------


def test_policy_defaults_match_the_go_parsec() -> None:
    """Defaults: 5 attempts, 1 s base, 30 s cap, 20 % jitter."""
    assert RetryPolicy() == RetryPolicy(
        max_attempts=5, base_backoff=1.0, max_backoff=30.0, jitter=0.2
    )


def test_backoff_doubles_from_base_and_caps_at_max() -> None:
    """With a centred draw, the wait before attempt n is base * 2**(n-2), capped."""
    policy = RetryPolicy(max_attempts=10, base_backoff=1.0, max_backoff=30.0, jitter=0.2)

    waits = [policy.backoff(n, 0.5) for n in range(2, 9)]

    assert waits == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0])


def test_backoff_jitter_spans_one_minus_to_one_plus_jitter() -> None:
    """The jitter factor runs from 1 - j (draw 0) towards 1 + j (draw 1)."""
    policy = RetryPolicy(base_backoff=10.0, max_backoff=10.0, jitter=0.2)

    assert policy.backoff(2, 0.0) == pytest.approx(8.0)
    assert policy.backoff(2, 0.999999) == pytest.approx(12.0, abs=1e-4)


def test_backoff_of_huge_attempt_numbers_stays_at_the_cap() -> None:
    """A very late attempt waits max_backoff, not an overflow."""
    assert RetryPolicy(jitter=0.0).backoff(10_000, 0.3) == 30.0


@given(
    attempt=st.integers(min_value=2, max_value=200),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    base=st.floats(min_value=0.0, max_value=60.0),
    extra=st.floats(min_value=0.0, max_value=600.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_backoff_stays_within_the_jittered_cap(
    attempt: int, draw: float, base: float, extra: float, jitter: float
) -> None:
    """Every wait lies in [(1-j), (1+j)] times min(base * 2**(n-2), max), never above."""
    policy = RetryPolicy(base_backoff=base, max_backoff=base + extra, jitter=jitter)
    nominal = min(base * 2.0 ** min(attempt - 2, 64), base + extra)

    wait = policy.backoff(attempt, draw)

    assert nominal * (1 - jitter) - 1e-9 <= wait <= nominal * (1 + jitter) + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"base_backoff": -1.0},
        {"base_backoff": 40.0, "max_backoff": 30.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_policy_rejects_out_of_range_values(kwargs: dict[str, object]) -> None:
    """A policy outside its documented ranges is a ValueError."""
    with pytest.raises(ValueError, match=r"must|need"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# -- delivery -------------------------------------------------------------------------------


async def test_first_success_delivers_without_waiting() -> None:
    """A sink that accepts at once is called once and nothing is dead-lettered."""
    clock = Clock()
    sink = ScriptedSink("mail")
    dlq = MemoryDLQ()

    outcome = await make_sender(sink, clock=clock, dlq=dlq).send("mail", {"to": "a"}, MESSAGE)

    assert (outcome.delivered, outcome.attempts, outcome.dlq_id, outcome.last_error) == (
        True,
        1,
        None,
        "",
    )
    assert sink.received == [("a", MESSAGE)]
    assert clock.waits == []
    assert await dlq.count() == 0


async def test_transient_failures_are_retried_with_exponential_backoff() -> None:
    """Transient failures wait 1, 2, 4 s (centred jitter) before attempts 2, 3, 4."""
    clock = Clock()
    sink = ScriptedSink("mail", [transient(), transient(), transient()])

    outcome = await make_sender(sink, clock=clock).send("mail", {"to": "a"}, MESSAGE)

    assert outcome.delivered
    assert outcome.attempts == 4
    assert clock.waits == pytest.approx([1.0, 2.0, 4.0])


async def test_jitter_draws_scale_each_wait() -> None:
    """The injected random draw sets the jitter factor of every wait."""
    clock = Clock()
    sink = ScriptedSink("mail", [transient(), transient()])

    await make_sender(sink, clock=clock, draw=0.0).send("mail", {"to": "a"}, MESSAGE)

    assert clock.waits == pytest.approx([0.8, 1.6])


async def test_retry_after_longer_than_the_backoff_is_honoured() -> None:
    """A Retry-After of 7 s replaces a 1 s backoff; a shorter one does not."""
    clock = Clock()
    sink = ScriptedSink("hook", [transient(retry_after=7.0), transient(retry_after=0.5)])

    outcome = await make_sender(sink, clock=clock).send("hook", {"to": "a"}, MESSAGE)

    assert outcome.delivered
    assert clock.waits == pytest.approx([7.0, 2.0])


async def test_exhausted_retries_land_in_the_dlq() -> None:
    """After max_attempts transient failures the delivery is dead-lettered, not raised."""
    clock = Clock()
    sink = ScriptedSink("mail", [transient(f"SMTP 451 try {i}") for i in range(5)])
    dlq = MemoryDLQ()

    outcome = await make_sender(sink, clock=clock, dlq=dlq).send("mail", {"to": "a"}, MESSAGE)

    assert not outcome.delivered
    assert outcome.attempts == 5
    assert outcome.last_error == "SMTP 451 try 4"
    assert clock.waits == pytest.approx([1.0, 2.0, 4.0, 8.0])
    item = await dlq.get(outcome.dlq_id or "")
    assert item == DLQItem(
        outcome.dlq_id or "", "mail", clock.now, {"to": "a"}, MESSAGE, 5, "SMTP 451 try 4"
    )


async def test_terminal_failure_stops_at_once_and_is_dead_lettered() -> None:
    """A terminal failure is not retried: one attempt, no wait, one DLQ item."""
    clock = Clock()
    sink = ScriptedSink("mail", [terminal("SMTP 550 no such user")])
    dlq = MemoryDLQ()

    outcome = await make_sender(sink, clock=clock, dlq=dlq).send("mail", {"to": "a"}, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert outcome.last_error == "SMTP 550 no such user"
    assert clock.waits == []
    assert [item.id for item in await dlq.items("mail")] == [outcome.dlq_id]


async def test_max_attempts_one_disables_retrying() -> None:
    """With max_attempts = 1 a transient failure is dead-lettered after one attempt."""
    clock = Clock()
    sink = ScriptedSink("mail", [transient()])
    sender = make_sender(sink, clock=clock, policy=RetryPolicy(max_attempts=1))

    outcome = await sender.send("mail", {"to": "a"}, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert clock.waits == []


async def test_per_sink_policy_overrides_the_default() -> None:
    """A sink with its own policy follows it; others follow the default."""
    clock = Clock()
    fast = ScriptedSink("fast", [transient()] * 5)
    slow = ScriptedSink("slow", [transient()] * 5)
    sender = make_sender(
        fast,
        slow,
        clock=clock,
        per_sink={"fast": RetryPolicy(max_attempts=2, base_backoff=0.1, max_backoff=0.1)},
    )

    fast_outcome = await sender.send("fast", {"to": "a"}, MESSAGE)
    slow_outcome = await sender.send("slow", {"to": "a"}, MESSAGE)

    assert (fast_outcome.attempts, slow_outcome.attempts) == (2, 5)
    assert sender.policy_for("fast").max_attempts == 2
    assert sender.policy_for("slow") == RetryPolicy()


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (ConnectionRefusedError("refused"), 3),
        (TimeoutError(), 3),
        (BrokenPipeError("pipe"), 3),
        (ValueError("a bug in a sink"), 1),
        (ParsecError("PARSEC_SINK_UNAVAILABLE", "down"), 1),
    ],
)
async def test_exceptions_that_are_not_sink_errors_are_classified(
    error: Exception, attempts: int
) -> None:
    """Network errors and timeouts are retried; other exceptions are terminal."""
    clock = Clock()
    sink = ScriptedSink("mail", [error] * 3)
    sender = make_sender(sink, clock=clock, policy=RetryPolicy(max_attempts=3))

    outcome = await sender.send("mail", {"to": "a"}, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (False, attempts)


async def test_unknown_sink_is_a_config_error_before_any_attempt() -> None:
    """Sending through an unregistered sink raises PARSEC_SINK_CONFIG_INVALID."""
    sender = make_sender(ScriptedSink("mail"), clock=Clock())

    with pytest.raises(ParsecError) as caught:
        await sender.send("sms", {"to": "a"}, MESSAGE)

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"
    assert "sms" in caught.value.message


async def test_bad_recipient_is_rejected_before_any_attempt() -> None:
    """A recipient the sink cannot encode raises INVALID_ARGUMENT; nothing is sent or kept."""
    sink = ScriptedSink("mail")
    dlq = MemoryDLQ()
    sender = make_sender(sink, clock=Clock(), dlq=dlq)

    with pytest.raises(ParsecError) as caught:
        await sender.send("mail", {"address": 3}, MESSAGE)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert sink.received == []
    assert await dlq.count() == 0


class BrokenDLQ(MemoryDLQ):
    """A DLQ whose pushes fail."""

    async def push(self, *args: object, **kwargs: object) -> str:
        raise ConnectionResetError("redis went away")


async def test_a_failed_dlq_push_raises_dlq_overflow() -> None:
    """Only a failed dead-lettering raises: PARSEC_SINK_DLQ_OVERFLOW."""
    sender = make_sender(ScriptedSink("mail", [terminal()]), clock=Clock(), dlq=BrokenDLQ())

    with pytest.raises(ParsecError) as caught:
        await sender.send("mail", {"to": "a"}, MESSAGE)

    assert caught.value.code == "PARSEC_SINK_DLQ_OVERFLOW"
    assert "mail" in caught.value.message


async def test_cancelled_delivery_is_dead_lettered_and_cancellation_propagates() -> None:
    """Cancelling during a backoff wait keeps the message in the DLQ and re-raises."""
    waiting = asyncio.Event()
    dlq = MemoryDLQ()

    async def blocking_sleep(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    sender = RetryingSender(
        SinkRegistry([ScriptedSink("mail", [transient()])]), dlq, sleep=blocking_sleep
    )
    task = asyncio.create_task(sender.send("mail", {"to": "a"}, MESSAGE))
    await waiting.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    (item,) = await dlq.items()
    assert (item.attempts, item.last_error) == (1, "delivery cancelled")
    assert item.recipient == {"to": "a"}


# -- metrics --------------------------------------------------------------------------------


async def test_metrics_see_every_attempt_and_the_dlq_size() -> None:
    """Each attempt reports its outcome and duration; dead-lettering reports the size."""
    clock = Clock()
    metrics = RecordingSinkMetrics()
    sink = ScriptedSink("mail", [transient(), terminal()])

    await make_sender(sink, clock=clock, metrics=metrics).send("mail", {"to": "a"}, MESSAGE)

    assert metrics.attempts == [
        Attempt("mail", "transient", 0.0),
        Attempt("mail", "terminal", 0.0),
    ]
    assert metrics.dlq_sizes == {"mail": 1}


async def test_metrics_record_success() -> None:
    """A delivered attempt is reported as ok."""
    metrics = RecordingSinkMetrics()

    await make_sender(ScriptedSink("mail"), clock=Clock(), metrics=metrics).send(
        "mail", {"to": "a"}, MESSAGE
    )

    assert metrics.outcomes("mail") == ["ok"]
    assert metrics.dlq_sizes == {}


# -- replay and discard ---------------------------------------------------------------------


async def test_replay_resends_and_keeps_the_original_item() -> None:
    """Replaying a dead letter sends it again to the stored recipient; the item stays."""
    clock = Clock()
    sink = ScriptedSink("mail", [terminal()])
    dlq = MemoryDLQ()
    sender = make_sender(sink, clock=clock, dlq=dlq)
    first = await sender.send("mail", {"to": "a"}, MESSAGE)

    replayed = await sender.replay(first.dlq_id or "")

    assert (replayed.delivered, replayed.attempts) == (True, 1)
    assert sink.received == [("a", MESSAGE), ("a", MESSAGE)]
    assert [item.id for item in await dlq.items()] == [first.dlq_id]


async def test_failed_replay_lands_a_new_item() -> None:
    """A replay that fails again is dead-lettered as a new item beside the original."""
    clock = Clock()
    sink = ScriptedSink("mail", [terminal("first"), terminal("second")])
    dlq = MemoryDLQ()
    sender = make_sender(sink, clock=clock, dlq=dlq)
    first = await sender.send("mail", {"to": "a"}, MESSAGE)

    replayed = await sender.replay(first.dlq_id or "")

    assert not replayed.delivered
    assert replayed.dlq_id not in (None, first.dlq_id)
    assert [item.last_error for item in await dlq.items("mail")] == ["second", "first"]


async def test_replay_of_unknown_id_is_dlq_not_found() -> None:
    """Replaying an id the DLQ does not hold raises PARSEC_SINK_DLQ_NOT_FOUND."""
    sender = make_sender(ScriptedSink("mail"), clock=Clock())

    with pytest.raises(ParsecError) as caught:
        await sender.replay("0123456789abcdef")

    assert caught.value.code == "PARSEC_SINK_DLQ_NOT_FOUND"


async def test_replay_for_a_sink_no_longer_registered_is_a_config_error() -> None:
    """An item whose sink is gone cannot be replayed: PARSEC_SINK_CONFIG_INVALID."""
    dlq = MemoryDLQ()
    id = await dlq.push("gone", {"to": "a"}, MESSAGE, attempts=1, last_error="x", at=1.0)
    sender = make_sender(ScriptedSink("mail"), clock=Clock(), dlq=dlq)

    with pytest.raises(ParsecError) as caught:
        await sender.replay(id)

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"


async def test_discard_removes_the_item_and_reports_the_new_size() -> None:
    """Discarding through the sender removes the item and updates the DLQ-size hook."""
    metrics = RecordingSinkMetrics()
    dlq = MemoryDLQ()
    sender = make_sender(
        ScriptedSink("mail", [terminal(), terminal()]), clock=Clock(), dlq=dlq, metrics=metrics
    )
    first = await sender.send("mail", {"to": "a"}, MESSAGE)
    await sender.send("mail", {"to": "b"}, MESSAGE)

    assert await sender.discard(first.dlq_id or "")
    assert not await sender.discard(first.dlq_id or "")
    assert metrics.dlq_sizes == {"mail": 1}
    assert await dlq.get(first.dlq_id or "") is None
