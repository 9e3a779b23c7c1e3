"""Who may read ``/metrics``: ``[observability] metrics_bearer_token``."""

from __future__ import annotations

import hmac

__all__ = ["authorized"]


def authorized(token: str | None, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header value admits a scrape: always without a
    token; else exactly ``Bearer <token>``, compared in constant time."""
    if not token:
        return True
    given = (authorization or "").encode()
    return hmac.compare_digest(given, f"Bearer {token}".encode())
