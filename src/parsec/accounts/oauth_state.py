"""One-time OAuth ``state`` values: the CSRF guard of the login redirect.

A state is itsdangerous' URL-safe timed serialization of ``{"n": nonce, "next": path}``
— a fresh random nonce (128 bits) and the (:func:`~parsec.accounts.redirects.safe_next`)
path to return to — HMAC-SHA256-signed under a key derived from ``[accounts]
session_key`` and the salt :data:`SALT` (so a session cookie is never a valid state).

Guarantees of :class:`OAuthStates`:

- ``consume`` returns a state ``mint`` made with one of the keys, within ``ttl``
  seconds (10 minutes by default), **once**: the nonce is claimed in a
  :class:`StateLedger`, and only the first claim wins — across every worker and node
  sharing that ledger, so a callback replayed to another worker is refused too.
- Every failure — malformed, forged, signed for another use, expired, already used —
  raises the one :class:`~parsec.accounts.errors.InvalidOAuthState`.
- ``.next`` is always a safe path: sanitised when minted and again when consumed.
"""

from __future__ import annotations

import heapq
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final, Protocol

from itsdangerous import BadData

from parsec.accounts.errors import InvalidOAuthState
from parsec.accounts.redirects import safe_next
from parsec.accounts.signing import Clock, SessionKey, session_keys, timed_serializer

__all__ = [
    "DEFAULT_STATE_TTL",
    "MAX_STATE_LENGTH",
    "SALT",
    "MemoryStateLedger",
    "OAuthState",
    "OAuthStates",
    "StateLedger",
]

log = logging.getLogger("parsec.accounts.oauth_state")

DEFAULT_STATE_TTL: Final = 600
SALT: Final = "parsec.accounts.oauth-state"
MAX_STATE_LENGTH: Final = 4096
NONCE_BYTES: Final = 16


class StateLedger(Protocol):
    """Where used nonces are remembered until their state expires.

    ``claim(nonce, expires_at)`` returns True for the first claim of ``nonce`` and False
    for every later one, **atomically across every worker and node sharing the
    ledger**: of any number of concurrent claims of one nonce, exactly one returns True.
    A nonce must be remembered at least until ``expires_at`` (seconds since the epoch);
    after that the state it came from is expired anyway, so the ledger may forget it.

    A ledger that cannot answer (its database is down) raises; a ledger that chooses
    not to record the nonce (full) returns False — failing closed, never True.

    A SQL ledger is one statement: ``INSERT INTO oauth_states (nonce, expires_at)
    VALUES (…)`` with ``nonce`` the primary key — True when it inserts, False on the
    unique violation — plus an occasional ``DELETE … WHERE expires_at < now - grace``.
    """

    async def claim(self, nonce: str, expires_at: float) -> bool: ...


class MemoryStateLedger:
    """A :class:`StateLedger` in this process's memory: for one worker process (its
    claims are atomic across the event loops and threads of the process), tests and
    development. Several worker processes or nodes need a shared ledger (SQL).

    Each claim first forgets nonces that expired more than ``grace`` seconds ago (the
    grace covers clocks of other nodes running slightly behind). It holds at most
    ``max_nonces`` unexpired nonces; past that, claims return False (fail closed) and a
    warning is logged, until some expire.
    """

    def __init__(
        self, *, max_nonces: int = 100_000, grace: float = 60.0, clock: Clock = time.time
    ) -> None:
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self.max_nonces = max_nonces
        self.grace = grace
        self._clock = clock
        self._nonces: set[str] = set()
        self._expiries: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many nonces are remembered."""
        return len(self._nonces)

    async def claim(self, nonce: str, expires_at: float) -> bool:
        """True the first time ``nonce`` is claimed. Atomic: it never awaits, and holds
        a lock against other threads (held for a set lookup and insert, never blocking
        an event loop for long)."""
        with self._lock:
            return self._claim(nonce, expires_at)

    def _claim(self, nonce: str, expires_at: float) -> bool:
        self._prune()
        if nonce in self._nonces:
            return False
        if len(self._nonces) >= self.max_nonces:
            log.warning(
                "PARSEC_OAUTH_STATE_LEDGER_FULL: %d unexpired login states; "
                "refusing logins until some expire",
                len(self._nonces),
            )
            return False
        self._nonces.add(nonce)
        heapq.heappush(self._expiries, (expires_at, nonce))
        return True

    def _prune(self) -> None:
        horizon = self._clock() - self.grace
        while self._expiries and self._expiries[0][0] < horizon:
            _, nonce = heapq.heappop(self._expiries)
            self._nonces.discard(nonce)


_: type[StateLedger] = MemoryStateLedger


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A consumed state: where to send the browser once logged in."""

    next: str
    """A safe path on this site (``safe_next``)."""
    nonce: str
    issued_at: int
    """When it was minted, in seconds since the epoch."""


class OAuthStates:
    """Mints and consumes one-time OAuth states, signed with ``key`` (the session key:
    at least 32 bytes, or a list of keys newest first), their nonces claimed in
    ``ledger``.

    Raises:
        ValueError: a key shorter than 32 bytes, or a ``ttl`` under one second.
    """

    def __init__(
        self,
        key: SessionKey,
        ledger: StateLedger,
        *,
        ttl: int = DEFAULT_STATE_TTL,
        clock: Clock = time.time,
    ) -> None:
        if ttl < 1:
            raise ValueError(f"the OAuth state TTL must be at least 1 second, not {ttl}")
        self.ttl = ttl
        self.ledger = ledger
        self._serializer = timed_serializer(session_keys(key), salt=SALT, clock=clock)

    def mint(self, next: str | None = None) -> str:
        """A fresh state for a login that returns to ``next`` (made safe: an unsafe
        value becomes ``"/"``)."""
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        return self._serializer.dumps({"n": nonce, "next": safe_next(next)})

    async def consume(self, state: str | None) -> OAuthState:
        """The state ``mint`` made, the first time it is presented within its TTL.

        Raises:
            InvalidOAuthState: for every other value: malformed, forged, expired,
                already consumed (here or on any worker sharing the ledger).
            Exception: whatever the ledger raises when it cannot answer.
        """
        if not isinstance(state, str) or not state or len(state) > MAX_STATE_LENGTH:
            raise InvalidOAuthState
        try:
            payload, signed_at = self._serializer.loads(
                state, max_age=self.ttl, return_timestamp=True
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            raise InvalidOAuthState from None
        if not isinstance(payload, dict):
            raise InvalidOAuthState
        nonce, next_path = payload.get("n"), payload.get("next")
        if not isinstance(nonce, str) or not nonce or not isinstance(next_path, str):
            raise InvalidOAuthState
        issued_at = int(signed_at.timestamp())
        if not await self.ledger.claim(nonce, float(issued_at + self.ttl)):
            raise InvalidOAuthState
        return OAuthState(next=safe_next(next_path), nonce=nonce, issued_at=issued_at)
