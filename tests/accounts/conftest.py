"""Shared by the accounts tests: a clock the test moves, and session keys."""

from __future__ import annotations

import pytest

KEY = b"k" * 16 + b"0123456789abcdef"
"""A 32-byte session key."""
OTHER_KEY = b"another session key, also >= 32 bytes"


class Clock:
    """Seconds since the epoch, moved by the test (``clock.now += 60``)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock standing still until the test moves it."""
    return Clock()
