"""many-channels: many connections, each subscribed to its own channel; every round
publishes one publication to every channel as fast as the publisher can send.

A round's deliveries/s is its deliveries over the time from its first send to its
last delivery; the headline is the median round. Latency percentiles are over every
delivery of every round.
"""

from __future__ import annotations

import statistics
import time
from array import array
from typing import Any

import msgspec

from bench.loadgen.latency import Sink, percentiles, stamped_payload
from bench.loadgen.pool import close_all, open_conns, open_one
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads.common import CpuWindow, channel, decode_params, pad, wait_delivered

__all__ = ["Params", "run"]


class Params(msgspec.Struct, forbid_unknown_fields=True):
    connections: int = 5000
    rounds: int = 5
    payload_bytes: int = 100
    concurrency: int = 100
    drain_idle_seconds: float = 2.0
    drain_max_seconds: float = 15.0


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(Params, raw)
    sink = Sink()
    names = [channel(f"mc-{i}") for i in range(params.connections)]
    opened = await open_conns(
        target,
        sink,
        params.connections,
        concurrency=params.concurrency,
        channel_of=names.__getitem__,
    )
    publisher, _ = await open_one(target, Sink(), None, None)
    held = len(opened.conns)
    filler = pad(params.payload_bytes)
    rounds: list[dict[str, Any]] = []
    every = array("q")
    for _ in range(params.rounds):
        sink.take()
        cpu = CpuWindow.start(target.pid)
        started = time.perf_counter()
        for name in names:
            publisher.publish(name, stamped_payload(filler))
        complete = await wait_delivered(
            sink, held, idle_s=params.drain_idle_seconds, max_s=params.drain_max_seconds
        )
        seconds = time.perf_counter() - started
        samples = sink.take()
        every.extend(samples)
        rounds.append(
            {
                "delivered": len(samples),
                "complete": complete,
                "seconds": round(seconds, 4),
                "deliveries_per_s": round(len(samples) / seconds),
                **percentiles(samples).as_dict(),
                **cpu.stop(),
            }
        )
    close_all([publisher, *opened.conns])
    latency = percentiles(every)
    notes = []
    if opened.failures:
        notes.append(f"{params.connections - held} connections failed to open")
    if not all(r["complete"] for r in rounds):
        notes.append("some rounds did not deliver every publication")
    if sink.disconnects:
        notes.append(f"the server closed {sink.disconnects} connections: {sink.close_codes}")
    return Result(
        metrics={
            "deliveries_per_s": round(statistics.median(r["deliveries_per_s"] for r in rounds)),
            "p50_ms": latency.p50_ms,
            "p99_ms": latency.p99_ms,
            "p999_ms": latency.p999_ms,
        },
        details={
            "connections": held,
            "connect_failures": opened.failures,
            "connect_seconds": round(opened.seconds, 2),
            "rounds": rounds,
            "errors": sink.errors,
        },
        notes=notes,
    )
