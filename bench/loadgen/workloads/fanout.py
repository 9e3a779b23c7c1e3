"""fanout: one channel, many subscribers, a publisher at stepped rates.

Rates are in deliveries/s (publications/s x subscribers). Steps run in ascending order
for ``step_seconds`` each, and each waits for its deliveries to drain. A step is
*sustained* when at least ``min_delivered`` of its deliveries arrived, its p99 latency
is under ``p99_limit_ms`` and the achieved rate is at least ``min_rate_ratio`` of the
target. Stepping stops after ``stop_after_failures`` steps in a row that are not
sustained (one noisy step does not end the search); the reference rate (50,000
deliveries/s) is always measured, on its own after the last step if stepping stopped
below it, so that its p50 / p99 / p99.9 are reported for every server.

The peak deliveries/s is the highest achieved rate of a step that delivered
``min_delivered`` of its publications, whatever its latency: the throughput ceiling,
beside the latency-bound headline.

``run`` is ``connect`` (the subscribers, then the publisher connection) followed by
``measure`` (the steps); redis-fanout runs the same two around a look at its workers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from bench.loadgen.adapters import Conn
from bench.loadgen.latency import Sink, percentiles, stamped_payload
from bench.loadgen.pool import Opened, close_all, open_conns, open_one
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads.common import CpuWindow, channel, decode_params, pad, wait_delivered

__all__ = ["Audience", "Params", "connect", "measure", "run"]

TICK_S = 0.005
"""The publisher sends what is due every 5 ms."""


class Params(msgspec.Struct, forbid_unknown_fields=True):
    subscribers: int = 1000
    steps: list[int] = msgspec.field(
        default_factory=lambda: [10_000, 25_000, 50_000, 100_000, 200_000, 400_000]
    )
    """Target deliveries/s, ascending."""
    reference_rate: int = 50_000
    step_seconds: float = 3.0
    drain_idle_seconds: float = 1.0
    drain_max_seconds: float = 5.0
    p99_limit_ms: float = 50.0
    min_delivered: float = 0.99
    min_rate_ratio: float = 0.9
    stop_after_failures: int = 2
    payload_bytes: int = 100
    concurrency: int = 100


@dataclass(slots=True)
class Audience:
    """The subscribers of the fanout channel and the publisher connection."""

    channel: str
    opened: Opened
    publisher: Conn
    sink: Sink

    @property
    def subscribers(self) -> list[Conn]:
        return self.opened.conns

    def close(self) -> None:
        close_all([self.publisher, *self.opened.conns])


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(Params, raw)
    audience = await connect(target, params, channel("fanout"))
    return await measure(target, params, audience)


async def connect(target: Target, params: Params, name: str) -> Audience:
    """``params.subscribers`` subscribers of ``name``, then one publisher connection."""
    sink = Sink()
    opened = await open_conns(
        target, sink, params.subscribers, concurrency=params.concurrency, channel_of=lambda i: name
    )
    try:
        publisher, _ = await open_one(target, Sink(), None, None)
    except BaseException:
        close_all(opened.conns)
        raise
    return Audience(name, opened, publisher, sink)


async def measure(target: Target, params: Params, audience: Audience) -> Result:
    """Step through ``params.steps`` (and the reference rate) with ``audience``, then
    close its connections."""
    try:
        return await _measure(target, params, audience)
    finally:
        audience.close()


async def _measure(target: Target, params: Params, audience: Audience) -> Result:
    sink, publisher, name = audience.sink, audience.publisher, audience.channel
    opened = audience.opened
    held = len(opened.conns)
    notes = []
    if opened.failures:
        notes.append(f"{params.subscribers - held} subscribers failed to connect")
    steps: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    failures = 0
    for rate in sorted(params.steps):
        step = await _step(target, params, publisher, sink, name, held, rate)
        steps.append(step)
        if rate == params.reference_rate:
            reference = step
        failures = 0 if step["sustained"] else failures + 1
        if failures >= params.stop_after_failures:
            break
    if reference is None:
        notes.append(
            f"stepping stopped below the reference rate ({params.reference_rate}/s), "
            "which was then measured on its own"
        )
        reference = await _step(target, params, publisher, sink, name, held, params.reference_rate)
        steps.append(reference)
    sustained = [s["achieved_per_s"] for s in steps if s["sustained"]]
    complete = [s["achieved_per_s"] for s in steps if s["complete"]]
    lost = sink.disconnects
    if lost:
        notes.append(f"the server closed {lost} subscriber connections: {sink.close_codes}")
    return Result(
        metrics={
            "max_sustained_deliveries_per_s": max(sustained) if sustained else 0,
            "peak_deliveries_per_s": max(complete) if complete else 0,
            "ref_p50_ms": reference["p50_ms"],
            "ref_p99_ms": reference["p99_ms"],
            "ref_p999_ms": reference["p999_ms"],
            "ref_achieved_per_s": reference["achieved_per_s"],
        },
        details={
            "subscribers": held,
            "connect_failures": opened.failures,
            "steps": steps,
            "errors": sink.errors,
        },
        notes=notes,
    )


async def _step(
    target: Target,
    params: Params,
    publisher: Conn,
    sink: Sink,
    name: str,
    subscribers: int,
    rate: int,
) -> dict[str, Any]:
    """Publish at ``rate`` deliveries/s for ``step_seconds``, wait for the drain, and
    summarise the step."""
    per_second = rate / max(subscribers, 1)
    filler = pad(params.payload_bytes)
    sink.take()
    cpu = CpuWindow.start(target.pid)
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < params.step_seconds:
        for _ in range(int(per_second * elapsed) + 1 - sent):  # the first one at once
            publisher.publish(name, stamped_payload(filler))
            sent += 1
        await asyncio.sleep(TICK_S)
    expected = sent * subscribers
    await wait_delivered(
        sink, expected, idle_s=params.drain_idle_seconds, max_s=params.drain_max_seconds
    )
    finished = time.perf_counter()
    usage = cpu.stop()
    samples = sink.take()
    delivered = len(samples)
    achieved = round(delivered / (finished - started))
    latency = percentiles(samples)
    complete = delivered >= params.min_delivered * expected
    fast = latency.p99_ms is not None and latency.p99_ms < params.p99_limit_ms
    sustained = complete and fast and achieved >= params.min_rate_ratio * rate
    return {
        "target_per_s": rate,
        "publications": sent,
        "expected": expected,
        "delivered": delivered,
        "achieved_per_s": achieved,
        "complete": complete,
        "sustained": sustained,
        **latency.as_dict(),
        **usage,
    }
