"""The ``auth_failure`` log line: one WARNING (logger ``parsec.auth``) per credential
refused, wherever it is presented — connection and subscription tokens (here, in the
engine), management tokens and the server API key (above it).

Fields: ``token_type`` (``connection``, ``subscription``, ``management``,
``api_key``…), ``reason`` (a stable short code: ``expired``, ``invalid_signature``,
``unknown_kid``, ``malformed``, ``revoked``, ``mismatch``, ``missing``, ``denied``…)
and whatever the caller adds (client id, user). NEVER the token or the key: callers
pass codes and identifiers only.
"""

from __future__ import annotations

import logging

__all__ = ["auth_failure", "reason_of"]

log = logging.getLogger("parsec.auth")


def reason_of(code: str) -> str:
    """A ``PARSEC_AUTH_*`` code as a short reason (``PARSEC_AUTH_UNKNOWN_KID`` →
    ``unknown_kid``); any other text, lower-cased."""
    return code.removeprefix("PARSEC_AUTH_").lower()


def auth_failure(token_type: str, reason: str, **fields: object) -> None:
    """Write one ``auth_failure`` WARNING: ``reason`` is a code (see :func:`reason_of`),
    ``fields`` identifiers (``client``, ``user``), never a secret."""
    if log.isEnabledFor(logging.WARNING):
        log.warning(
            "auth_failure",
            extra={"event": "auth_failure", "token_type": token_type, "reason": reason, **fields},
        )
