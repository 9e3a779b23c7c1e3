"""The ``auth_failure`` log line: one per credential refused (logger ``parsec.auth``),
wherever it is presented — connection and subscription tokens (here, in the engine),
management tokens and the server API key (above it).

Fields: ``event`` (``auth_failure``), ``token_type`` (``connection``,
``subscription``, ``management``, ``api_key``), ``reason`` (a stable short code:
``expired``, ``invalid_signature``, ``unknown_kid``, ``malformed``, ``revoked``,
``mismatch``, ``missing``, ``invalid``, ``denied``…) and what the caller adds (client
id, user, channel, transport). NEVER the token or the key: callers pass codes and
identifiers only.

A client must not be able to flood the log (as :mod:`parsec.engine.faults`): lines are
WARNING while the node's bucket of :data:`BURST` lines lasts (refilled at
:data:`LINES_PER_SECOND`), DEBUG beyond; the next WARNING says in ``suppressed`` how
many were logged at DEBUG only.
"""

from __future__ import annotations

import logging
from typing import Final

from parsec.engine.bucket import TokenBucket

__all__ = ["BURST", "LINES_PER_SECOND", "AuthFailures", "reason_of"]

log = logging.getLogger("parsec.auth")

BURST: Final = 20
LINES_PER_SECOND: Final = 1.0


class AuthFailures:
    """A node's ``auth_failure`` lines and their budget (see the module docstring)."""

    __slots__ = ("_bucket", "_suppressed")

    def __init__(self) -> None:
        self._bucket = TokenBucket(BURST, LINES_PER_SECOND)
        self._suppressed = 0

    def report(self, token_type: str, reason: str, **fields: object) -> None:
        """Log one ``auth_failure``: ``reason`` is a code (see :func:`reason_of`),
        ``fields`` identifiers (``client``, ``user``), never a secret."""
        if not log.isEnabledFor(logging.WARNING):
            return
        extra = {"event": "auth_failure", "token_type": token_type, "reason": reason, **fields}
        if not self._bucket.take():
            self._suppressed += 1
            log.debug("auth_failure", extra=extra)
            return
        if self._suppressed:
            extra["suppressed"] = self._suppressed
            self._suppressed = 0
        log.warning("auth_failure", extra=extra)


def reason_of(code: str) -> str:
    """A ``PARSEC_AUTH_*`` code as a short reason (``PARSEC_AUTH_UNKNOWN_KID`` →
    ``unknown_kid``); any other text, lower-cased."""
    return code.removeprefix("PARSEC_AUTH_").lower()
