"""What the workloads share: parameter decoding, tokens, delivery waits, CPU windows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
import msgspec

from bench.loadgen.latency import Sink
from bench.loadgen.procstat import CpuSample, cpu_sample, own_cpu_sample

__all__ = [
    "CpuWindow",
    "channel",
    "decode_params",
    "mint_tokens",
    "pad",
    "wait_delivered",
]

P = TypeVar("P", bound=msgspec.Struct)

DELIVERY_POLL_S = 0.01


def decode_params(cls: type[P], params: dict[str, Any]) -> P:
    """``params`` as the workload's Struct; raises msgspec.ValidationError naming the
    bad key."""
    return msgspec.convert(params, cls)


def channel(name: str) -> str:
    """The channel every server uses for ``name``: ``bench:<name>`` (Parsec's bench
    namespace; the peers take any string)."""
    return f"bench:{name}"


def pad(payload_bytes: int) -> bytes:
    """Padding that brings a stamped publication to about ``payload_bytes`` bytes."""
    return b"x" * max(0, payload_bytes - 35)


def mint_tokens(secret: str, count: int, ttl_s: int = 3600) -> list[str]:
    """``count`` HS256 connection tokens for users ``bench-0`` … (no ``kid``: the
    shared-secret path every server verifies)."""
    exp = int(time.time()) + ttl_s
    return [
        jwt.encode({"sub": f"bench-{i}", "exp": exp}, secret, algorithm="HS256")
        for i in range(count)
    ]


async def wait_delivered(sink: Sink, expected: int, *, idle_s: float, max_s: float) -> bool:
    """Wait until ``sink`` holds ``expected`` deliveries; give up after ``max_s`` or
    when nothing arrived for ``idle_s``. Whether all arrived.

    Deliveries arrive in picows callbacks that resolve nothing, so this polls the
    count every 10 ms: a measurement window, not a synchronisation point."""
    deadline = time.monotonic() + max_s
    last_count, last_change = sink.delivered, time.monotonic()
    while sink.delivered < expected:
        now = time.monotonic()
        if now >= deadline or now - last_change >= idle_s:
            return False
        await asyncio.sleep(DELIVERY_POLL_S)
        if sink.delivered != last_count:
            last_count, last_change = sink.delivered, time.monotonic()
    return True


@dataclass(slots=True)
class CpuWindow:
    """CPU % of the server and of the load generator over one measured window."""

    pid: int
    server_start: CpuSample
    own_start: CpuSample

    @classmethod
    def start(cls, pid: int) -> CpuWindow:
        return cls(pid, cpu_sample(pid), own_cpu_sample())

    def stop(self) -> dict[str, float]:
        return {
            "server_cpu_pct": cpu_sample(self.pid).percent_since(self.server_start),
            "loadgen_cpu_pct": own_cpu_sample().percent_since(self.own_start),
        }
