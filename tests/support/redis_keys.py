"""The shared Redis the tests use, and key prefixes of a test's own.

Every test that touches the shared Redis works under a prefix no other test uses, and
everything under it is deleted afterwards (centrifuge's ``getUniquePrefix``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import redis

__all__ = ["REDIS_URL", "scratch_prefix"]

REDIS_URL = os.environ.get("PARSEC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
"""The shared Redis (``PARSEC_TEST_REDIS_URL`` overrides it)."""


@contextlib.contextmanager
def scratch_prefix() -> Iterator[str]:
    """A key prefix no other test uses; every key under it (and under prefixes that
    extend it) is deleted on exit."""
    prefix = f"parsec-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
