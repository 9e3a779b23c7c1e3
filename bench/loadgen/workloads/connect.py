"""connect: connections/s, each with a fresh HS256 connection JWT the server verifies.

Tokens are minted before the clock starts. A connection counts once its protocol
handshake is confirmed (Parsec's connect reply, Socket.IO's namespace connect, the
peers' welcome or WebSocket open after the token check). Connections are held until
every one is open, then dropped.
"""

from __future__ import annotations

from array import array
from typing import Any

import msgspec

from bench.loadgen.latency import Sink, percentiles
from bench.loadgen.pool import close_all, open_conns
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads.common import CpuWindow, decode_params, mint_tokens

__all__ = ["Params", "run"]


class Params(msgspec.Struct, forbid_unknown_fields=True):
    connections: int = 3000
    concurrency: int = 50


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(Params, raw)
    tokens = mint_tokens(target.hmac_secret, params.connections)
    sink = Sink()
    cpu = CpuWindow.start(target.pid)
    opened = await open_conns(
        target,
        sink,
        params.connections,
        concurrency=params.concurrency,
        channel_of=lambda i: None,
        token_of=tokens.__getitem__,
    )
    usage = cpu.stop()
    close_all(opened.conns)
    held = len(opened.conns)
    latency = percentiles(array("q", opened.handshake_ns))
    notes = []
    if opened.failures:
        notes.append(f"{params.connections - held} connections failed: {opened.failures}")
    return Result(
        metrics={
            "connections_per_s": round(held / opened.seconds) if opened.seconds else None,
            "connect_p50_ms": latency.p50_ms,
            "connect_p99_ms": latency.p99_ms,
        },
        details={
            "connections": held,
            "seconds": round(opened.seconds, 3),
            "failures": opened.failures,
            **usage,
        },
        notes=notes,
    )
