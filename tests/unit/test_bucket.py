"""TokenBucket: full at start, never more than the burst at once, refilled at its rate."""

from __future__ import annotations

from parsec.engine.bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_the_burst_through_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 2.0, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token
    assert not bucket.take()
    clock.now += 0.25  # one token
    assert bucket.take()
    assert not bucket.take()


def test_a_long_pause_refills_no_more_than_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(2, 1.0, clock=clock)
    assert bucket.take()
    assert bucket.take()
    clock.now += 3600
    assert [bucket.take() for _ in range(3)] == [True, True, False]
