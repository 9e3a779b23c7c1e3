"""Reconnect delays as the official SDKs compute them: exponential growth, full jitter.

Attempt ``n`` (from 0) waits ``min + uniform(0, min(max, min * 2**n))``, never more than
``max``: with the SDK defaults (0.5 s, 20 s) the first wait is 0.5-1 s, the second
0.5-1.5 s, and from the seventh on any of 0.5-20 s. The spread keeps clients that lost
the same server from coming back all at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_DELAY", "MIN_DELAY", "Backoff"]

MIN_DELAY: Final = 0.5
"""Seconds: the SDKs' ``minReconnectDelay``."""
MAX_DELAY: Final = 20.0
"""Seconds: the SDKs' ``maxReconnectDelay``."""
_MAX_STEP: Final = 31


@dataclass(slots=True)
class Backoff:
    """The delays of successive attempts; :meth:`reset` once an attempt succeeded."""

    min_delay: float = MIN_DELAY
    max_delay: float = MAX_DELAY
    attempt: int = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; counts the attempt."""
        step = min(self.attempt, _MAX_STEP)
        self.attempt += 1
        spread = min(self.max_delay, self.min_delay * 2**step)
        return min(self.max_delay, self.min_delay + random.uniform(0, spread))

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0
