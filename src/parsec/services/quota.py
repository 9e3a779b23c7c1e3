"""A publications-per-second quota for one node (an org's tenant): a token bucket of
``rate`` tokens refilled continuously at ``rate`` per second, one token per
publication. Installed as the node's ``publish_gate``, it refuses a publication over
the quota with Centrifugo's 111 "too many requests" (temporary: retry later), which the
APIs answer as ``PARSEC_RATE_LIMITED`` (HTTP 429).

Per node: with N nodes an org may publish up to N times ``rate`` a second in total
(issue 16 brings cluster-wide limits).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from parsec.engine.codes import errors

__all__ = ["PublishQuota"]


class PublishQuota:
    """``rate`` publications a second, bursts of up to ``rate`` (``rate`` > 0);
    ``clock`` is monotonic seconds."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a quota needs a rate above 0")
        self.rate = rate
        self._clock = clock
        self._tokens = rate
        self._at = clock()

    def __call__(self) -> None:
        """Take one token, or raise ``errors.TOO_MANY_REQUESTS``."""
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            raise errors.TOO_MANY_REQUESTS
        self._tokens -= 1
