"""Tallies hand prometheus-client exactly what direct calls would have recorded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from parsec.observability.tally import CounterTally, GaugeTally, LatencyTally

BOUNDS = (0.001, 0.01, 0.1, 1.0)
SAMPLES = [0.0005, 0.001, 0.002, 0.05, 0.05, 0.5, 2.0, 7.5]


def exposition(registry: CollectorRegistry) -> list[str]:
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if "_created" not in line and not line.startswith("#")
    ]


def test_a_latency_tally_matches_direct_observations() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("lat", "l", buckets=BOUNDS, registry=direct)
    histogram = Histogram("lat", "l", buckets=BOUNDS, registry=tallied)
    tally = LatencyTally(histogram, BOUNDS)
    for value in SAMPLES:
        reference.observe(value)
        tally.observe(value)
    tally.flush()
    tally.flush()  # nothing twice

    assert exposition(tallied) == exposition(direct)


def test_a_latency_tally_without_buckets_still_counts_and_sums() -> None:
    """A metric without the bucket internals (a Summary here) gets one observation per
    event, at its bucket's mean: the count and the sum are exact."""
    registry = CollectorRegistry()
    summary = Summary("lat", "l", registry=registry)
    tally = LatencyTally(summary, BOUNDS)  # type: ignore[arg-type]
    for value in SAMPLES:
        tally.observe(value)
    tally.flush()

    assert registry.get_sample_value("lat_count") == len(SAMPLES)
    assert abs((registry.get_sample_value("lat_sum") or 0) - sum(SAMPLES)) < 1e-9


def test_counter_and_gauge_tallies() -> None:
    registry = CollectorRegistry()
    counter = Counter("events", "e", ["kind"], registry=registry)
    gauge = Gauge("live", "l", ["kind"], registry=registry)
    counts: CounterTally[tuple[str]] = CounterTally(counter)
    values: GaugeTally[tuple[str]] = GaugeTally(gauge)
    for kind in ("a", "a", "b"):
        counts.add((kind,))
        values.add((kind,), 1)
    values.add(("a",), -1)
    counts.flush()
    values.flush()
    counts.add(("a",))
    counts.flush()

    assert registry.get_sample_value("events_total", {"kind": "a"}) == 3
    assert registry.get_sample_value("events_total", {"kind": "b"}) == 1
    assert registry.get_sample_value("live", {"kind": "a"}) == 1
    assert registry.get_sample_value("live", {"kind": "b"}) == 1
