"""Latency and delivery recording.

Every publication carries its send time (``time.perf_counter_ns()``: CLOCK_MONOTONIC,
shared by every process on the machine) as ``"t"`` in its JSON data. A receiver finds
each ``"t":<ns>`` in a frame and records ``receive_ns - t``; a frame is timestamped once,
when picows hands it over. Latencies live in an ``array('q')`` (8 bytes each, no
per-message object) and are summarised with numpy.
"""

from __future__ import annotations

import re
import time
from array import array
from dataclasses import dataclass

import numpy as np

__all__ = ["STAMP", "Percentiles", "Sink", "percentiles", "stamped_payload"]

STAMP = re.compile(rb'"t": ?(\d+)')
"""A send timestamp inside a delivered publication (``json.dumps`` adds the space)."""


def stamped_payload(pad: bytes) -> bytes:
    """A publication's JSON data, ``{"t": <now ns>, "p": "<pad>"}``."""
    return b'{"t":%d,"p":"%s"}' % (time.perf_counter_ns(), pad)


class Sink:
    """What every connection of one load generator reports into.

    ``latencies`` holds one entry per delivered publication, in nanoseconds; a workload
    swaps it for a fresh array at each phase (``take``)."""

    __slots__ = ("close_codes", "disconnects", "errors", "latencies", "pings")

    def __init__(self) -> None:
        self.latencies: array[int] = array("q")
        self.pings = 0
        self.disconnects = 0
        self.close_codes: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def record(self, stamps: list[bytes], now: int) -> None:
        """Record the publications found in one frame, received at ``now``."""
        append = self.latencies.append
        for stamp in stamps:
            append(now - int(stamp))

    def error(self, what: str) -> None:
        """Count an error reply or a refused connection, by its description."""
        self.errors[what] = self.errors.get(what, 0) + 1

    def closed(self, code: int) -> None:
        """Count a connection the server closed, by close code."""
        self.disconnects += 1
        self.close_codes[code] = self.close_codes.get(code, 0) + 1

    @property
    def delivered(self) -> int:
        return len(self.latencies)

    def take(self) -> array[int]:
        """The latencies recorded so far; recording goes on in a fresh array."""
        taken, self.latencies = self.latencies, array("q")
        return taken


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency percentiles in milliseconds, over ``count`` samples."""

    count: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
        }


def percentiles(samples: array[int]) -> Percentiles:
    """p50 / p99 / p99.9 / max of ``samples`` (ns), in ms rounded to 0.01; all None for
    no samples."""
    if not samples:
        return Percentiles(0, None, None, None, None)
    values = np.frombuffer(samples, dtype=np.int64)
    p50, p99, p999 = np.percentile(values, [50.0, 99.0, 99.9]) / 1e6
    return Percentiles(
        count=len(values),
        p50_ms=round(float(p50), 2),
        p99_ms=round(float(p99), 2),
        p999_ms=round(float(p999), 2),
        max_ms=round(float(values.max()) / 1e6, 2),
    )
