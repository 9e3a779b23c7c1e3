"""Counting in plain integers on the hot path, flushed into prometheus-client metrics.

A prometheus-client ``inc`` or ``observe`` takes a lock and (under ``--workers``) writes
a memory-mapped file: a microsecond or more, as much as a whole publication to nobody.
The events that happen once per publication or per command are therefore counted here,
with an integer add (and a bisect for a latency), and :meth:`flush` hands the sums to
the real metrics at scrape time and once a second (:meth:`ParsecMetrics.sync`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CounterTally", "GaugeTally", "LatencyTally"]

_K = TypeVar("_K", bound=Hashable)


class CounterTally(Generic[_K]):
    """Counts by key; :meth:`flush` adds them to ``counter.labels(*key)``."""

    __slots__ = ("_children", "_counter", "counts")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[_K, Counter] = {}
        self.counts: dict[_K, int] = {}

    def add(self, key: _K) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def flush(self) -> None:
        counts, self.counts = self.counts, {}
        for key, count in counts.items():
            child = self._children.get(key)
            if child is None:
                labels: Sequence[str] = key if isinstance(key, tuple) else (str(key),)
                child = self._children[key] = self._counter.labels(*labels)
            child.inc(count)


class GaugeTally(Generic[_K]):
    """Current values by key (``add`` +1 / -1); :meth:`flush` sets
    ``gauge.labels(*key)`` to them."""

    __slots__ = ("_children", "_gauge", "values")

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._children: dict[_K, Gauge] = {}
        self.values: dict[_K, int] = {}

    def add(self, key: _K, delta: int) -> None:
        values = self.values
        values[key] = values.get(key, 0) + delta

    def flush(self) -> None:
        for key, value in self.values.items():
            child = self._children.get(key)
            if child is None:
                labels: Sequence[str] = key if isinstance(key, tuple) else (str(key),)
                child = self._children[key] = self._gauge.labels(*labels)
            child.set(value)


class LatencyTally:
    """A histogram counted in integers; :meth:`flush` adds the buckets and the sum to
    ``histogram`` (a child with its labels, or one without labels)."""

    __slots__ = ("_bounds", "_histogram", "counts", "sums")

    def __init__(self, histogram: Histogram, bounds: Sequence[float]) -> None:
        self._histogram = histogram
        self._bounds = tuple(bounds)
        self.counts = [0] * (len(self._bounds) + 1)
        self.sums = [0.0] * (len(self._bounds) + 1)

    def observe(self, seconds: float) -> None:
        i = bisect_left(self._bounds, seconds)
        self.counts[i] += 1
        self.sums[i] += seconds

    def flush(self) -> None:
        counts, self.counts = self.counts, [0] * len(self.counts)
        sums, self.sums = self.sums, [0.0] * len(self.sums)
        histogram: Any = self._histogram
        buckets, total = getattr(histogram, "_buckets", None), getattr(histogram, "_sum", None)
        if buckets is None or total is None or len(buckets) != len(counts):
            for count, summed in zip(counts, sums, strict=True):  # a changed prometheus-client
                for _ in range(count):
                    histogram.observe(summed / count)
            return
        for bucket, count in zip(buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        if any(counts):
            total.inc(sum(sums))
