"""idle: many connections, each subscribed to its own channel, held while the server
pings them; server RSS per connection and server CPU %.

RSS per connection = (RSS after ``hold_seconds`` - RSS before the first connection)
/ connections held. CPU % is the server's over the hold (100 = one core busy), which
covers at least one ping round when ``hold_seconds`` exceeds the ping interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from bench.loadgen.latency import Sink
from bench.loadgen.pool import close_all, open_conns
from bench.loadgen.procstat import rss_bytes
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads.common import CpuWindow, channel, decode_params

__all__ = ["Params", "run"]


class Params(msgspec.Struct, forbid_unknown_fields=True):
    connections: int = 10_000
    hold_seconds: float = 25.0
    concurrency: int = 100
    subscribe: bool = True


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(Params, raw)
    sink = Sink()
    baseline = rss_bytes(target.pid)
    opened = await open_conns(
        target,
        sink,
        params.connections,
        concurrency=params.concurrency,
        channel_of=(lambda i: channel(f"idle-{i}")) if params.subscribe else (lambda i: None),
    )
    held = len(opened.conns)
    connected_rss = rss_bytes(target.pid)
    cpu = CpuWindow.start(target.pid)
    pings_before = sink.pings
    await asyncio.sleep(params.hold_seconds)  # the measured window itself
    usage = cpu.stop()
    final_rss = rss_bytes(target.pid)
    pings = sink.pings - pings_before
    close_all(opened.conns)
    notes = []
    if opened.failures:
        notes.append(f"{params.connections - held} connections failed to open")
    if sink.disconnects:
        notes.append(f"the server closed {sink.disconnects} connections: {sink.close_codes}")
    if pings == 0:
        notes.append("no ping arrived during the hold")
    per_conn = (final_rss - baseline) / held / 1024 if held else None
    return Result(
        metrics={
            "rss_per_connection_kb": None if per_conn is None else round(per_conn, 2),
            "server_cpu_pct": usage["server_cpu_pct"],
            "connections": held,
        },
        details={
            "baseline_rss_mb": round(baseline / 2**20, 1),
            "connected_rss_mb": round(connected_rss / 2**20, 1),
            "final_rss_mb": round(final_rss / 2**20, 1),
            "pings_answered": pings,
            "connect_seconds": round(opened.seconds, 2),
            "connect_failures": opened.failures,
            "loadgen_cpu_pct": usage["loadgen_cpu_pct"],
            "errors": sink.errors,
        },
        notes=notes,
    )
