"""PublishQuota: exactly ``rate`` publications in a burst, then one per 1/rate s."""

from __future__ import annotations

import pytest

from parsec.engine.codes import errors
from parsec.services.quota import PublishQuota


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_rate_then_refill() -> None:
    clock = Clock()
    quota = PublishQuota(3, clock=clock)
    for _ in range(3):
        quota()
    with pytest.raises(errors.TOO_MANY_REQUESTS):
        quota()
    clock.now += 0.34  # a third of a second (and a bit: floats)
    quota()
    with pytest.raises(errors.TOO_MANY_REQUESTS):
        quota()
    clock.now += 10  # idle time never banks more than one burst
    for _ in range(3):
        quota()
    with pytest.raises(errors.TOO_MANY_REQUESTS):
        quota()


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="rate above 0"):
        PublishQuota(0)
