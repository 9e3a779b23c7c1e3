"""A token bucket: ``burst`` tokens, refilled at ``rate`` a second, one taken per event.

Used where something a client can trigger must not flood a resource: the node's log
budgets (:mod:`parsec.engine.faults`, :mod:`parsec.engine.auth_log`). Not thread-safe;
one event loop owns it. ``clock`` gives monotonic seconds (tests inject their own).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Guarantees: it starts full; ``take`` never lets more than ``burst`` events through
    at once, nor more than ``burst + rate * t`` in any ``t`` seconds."""

    __slots__ = ("_burst", "_checked", "_clock", "_rate", "_tokens")

    def __init__(
        self, burst: float, rate: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._clock = clock
        self._tokens = float(burst)
        self._checked = clock()

    def take(self) -> bool:
        """Take one token; False (and nothing taken) when the bucket is empty."""
        now = self._clock()
        tokens = min(self._burst, self._tokens + (now - self._checked) * self._rate)
        self._checked = now
        if tokens < 1:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1
        return True
