"""The session key and the timed signer built on it (itsdangerous).

``[accounts] session_key`` signs both the session cookie and the OAuth ``state``; each
use has a salt of its own, so a value signed for one is refused by the other (the
salt goes into the derived HMAC key).

Keys rotate: :func:`session_keys` takes one key or several, newest first. The newest
signs; every key listed verifies, so values signed before a rotation stay valid until
they expire once the old key is listed after the new one.

Time comes from an injectable ``clock`` (seconds since the epoch), so tests drive
expiry without sleeping; itsdangerous keeps whole seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

__all__ = ["MIN_KEY_BYTES", "Clock", "SessionKey", "session_keys", "timed_serializer"]

MIN_KEY_BYTES: Final = 32

Clock = Callable[[], float]
"""Seconds since the epoch, as :func:`time.time`."""

SessionKey = bytes | str | Sequence[bytes | str]
"""One key, or several newest first; a ``str`` key counts as its UTF-8 bytes."""


def session_keys(key: SessionKey) -> list[bytes]:
    """The keys of ``key``, newest first, each checked.

    Raises:
        ValueError: no key, or a key shorter than 32 bytes (the message gives the
            length, never the key).
    """
    given: list[bytes | str] = [key] if isinstance(key, bytes | str) else list(key)
    if not given:
        raise ValueError("[accounts] session_key: no key given")
    keys: list[bytes] = []
    for index, one in enumerate(given):
        raw = one.encode("utf-8") if isinstance(one, str) else one
        if not isinstance(raw, bytes):
            raise ValueError(f"[accounts] session_key #{index + 1} is not bytes or str")
        if len(raw) < MIN_KEY_BYTES:
            raise ValueError(
                f"[accounts] session_key{f' #{index + 1}' if len(given) > 1 else ''} is "
                f"{len(raw)} bytes; it must be at least {MIN_KEY_BYTES} random bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        keys.append(raw)
    return keys


class _ClockedSigner(TimestampSigner):
    """A :class:`TimestampSigner` reading the time from ``clock``."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


def timed_serializer(
    keys: Sequence[bytes], *, salt: str, clock: Clock = time.time
) -> URLSafeTimedSerializer:
    """A URL-safe timed serializer (JSON payload, HMAC-SHA256 under a key derived from
    the session key and ``salt``) signing with ``keys[0]`` and verifying with any of
    ``keys``."""
    # itsdangerous signs with the *last* key of its list and tries them all.
    return URLSafeTimedSerializer(
        list(reversed(keys)),
        salt=salt,
        signer=_ClockedSigner,
        signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
    )
