"""The signing keys of an identity provider, fetched from its JWKS URL (RFC 7517).

:class:`RemoteJWKS` implements :class:`parsec.auth.idp_tokens.SigningKeys`:

- ``start`` fetches the document once; a provider that is down is logged
  (``PARSEC_JWKS_FETCH_FAILED``) and the node starts anyway, fetching again on demand
  (as Centrifugo does).
- ``key(kid)`` reads the cache: no I/O, no await.
- ``refresh()`` fetches again when a token names a ``kid`` the cache does not hold (the
  provider rotated its keys), at most once per ``min_interval`` seconds; callers arriving
  meanwhile share the fetch in flight or return at once.
- A background task refetches ``max_age`` seconds after the last good fetch (one hour by
  default, like Centrifugo), and ``retry_after`` seconds after a failed one.
- A fetch that fails (connection, timeout, HTTP status, more than ``max_bytes``, not
  JSON, no usable key) keeps the keys held before. Each JWK that cannot sign tokens
  here is skipped and logged (``PARSEC_JWKS_KEY_IGNORED``): ``use`` other than ``sig``,
  a symmetric (``oct``) key, an ``HS*`` or ``none`` alg, no ``kid``, or bad parameters.

It is an async context manager; ``aclose`` is idempotent, cancels the tasks it started
and closes the HTTP client it created (never one that was given).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Final

import httpx
import jwt
import msgspec

from parsec.auth.idp_tokens import REFUSED_ALGORITHMS
from parsec.engine.lifecycle import RUN_TRANSITIONS, RunState, advance

__all__ = ["FETCH_FAILED", "KEY_IGNORED", "JWKSError", "RemoteJWKS", "parse_jwks"]

log = logging.getLogger("parsec.auth.jwks")

FETCH_FAILED: Final = "PARSEC_JWKS_FETCH_FAILED"
KEY_IGNORED: Final = "PARSEC_JWKS_KEY_IGNORED"
MAX_BYTES: Final = 512 * 1024


class JWKSError(Exception):
    """A JWKS document that could not be fetched or read; the message says why."""


def parse_jwks(raw: bytes) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document, by ``kid``; unusable JWKs are skipped and
    logged (``PARSEC_JWKS_KEY_IGNORED``).

    Raises:
        JWKSError: ``raw`` is not a JSON object with a ``keys`` array, or holds no usable
            signing key.
    """
    try:
        document = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise JWKSError("the document is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JWKSError('the document is not a JSON object with a "keys" array')
    keys: dict[str, jwt.PyJWK] = {}
    for index, entry in enumerate(entries):
        found = _signing_key(entry)
        if isinstance(found, jwt.PyJWK):
            keys[entry["kid"]] = found
        elif found:
            kid = entry.get("kid") if isinstance(entry, dict) else None
            log.warning("%s: JWK %d (kid %r) skipped: %s", KEY_IGNORED, index, kid, found)
    if not keys:
        raise JWKSError("the document holds no usable signing key")
    return keys


def _signing_key(entry: object) -> jwt.PyJWK | str:
    """The key of a usable JWK (it has a ``kid``), else why not: "" skips it silently
    (an encryption key is not ours to use, nor worth a warning)."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return "no kid"
    if entry.get("use", "sig") != "sig":
        return ""
    alg, kty = entry.get("alg"), entry.get("kty")
    if kty == "oct" or alg in REFUSED_ALGORITHMS:
        return f"alg {alg!r} / kty {kty!r}: not a public signing key"
    try:
        key = jwt.PyJWK(entry)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        return f"not a usable key ({exc})"
    if key.algorithm_name in REFUSED_ALGORITHMS:
        return f"alg {key.algorithm_name}: not a public signing key"
    return key


class RemoteJWKS:
    """The signing keys published at ``url``, cached by ``kid`` (see the module).

    Raises:
        ValueError: ``url`` is not http(s), or an interval is not positive, or
            ``max_age`` / ``retry_after`` is shorter than ``min_interval``.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        max_bytes: int = MAX_BYTES,
        min_interval: float = 10.0,
        max_age: float = 3600.0,
        retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a JWKS URL must be http:// or https://, got {url!r}")
        if min(timeout, max_bytes, min_interval) <= 0 or min(max_age, retry_after) < min_interval:
            raise ValueError("timeout, max_bytes and intervals must be positive, ages >= min")
        self.url = url
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.min_interval = min_interval
        """At most one fetch per this many seconds (may be changed while running)."""
        self._max_age = max_age
        self._retry_after = retry_after
        self._clock = clock
        self._state = RunState.NEW
        self._keys: Mapping[str, jwt.PyJWK] = {}
        self._last_attempt: float | None = None
        self._failing = False
        self._inflight: asyncio.Task[bool] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.fetches = 0
        """Fetches attempted (successful or not), for tests and metrics."""

    # --- SigningKeys ------------------------------------------------------------

    def key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        """The ids of the keys held now."""
        return frozenset(self._keys)

    async def refresh(self) -> bool:
        """Fetch the keys again unless one ran less than ``min_interval`` ago; share a
        fetch in flight. Whether the fetch succeeded (False when none ran)."""
        if self._state is not RunState.RUNNING:
            return False
        task = self._inflight
        if task is None:
            last = self._last_attempt
            if last is not None and self._clock() - last < self.min_interval:
                return False
            task = self._inflight = asyncio.create_task(self._fetch_once())
        # wait() does not cancel the shared fetch when this caller is cancelled
        await asyncio.wait({task})
        return not task.cancelled() and task.result()

    # --- lifecycle --------------------------------------------------------------

    @property
    def state(self) -> RunState:
        """new → running (``start``) → closed (``aclose``), only forward."""
        return self._state

    async def start(self) -> None:
        """Fetch the keys once (a failure is logged, not raised) and start refetching
        them in the background. Raises RuntimeError when started before or closed."""
        self._state = advance("RemoteJWKS", self._state, RunState.RUNNING, RUN_TRANSITIONS)
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        await self.refresh()
        if self._state is RunState.RUNNING:  # not closed during the first fetch
            self._keeper = asyncio.create_task(self._keep_fresh())

    async def aclose(self) -> None:
        """Stop the tasks started here, close the HTTP client made here. Idempotent."""
        if self._state is RunState.CLOSED:
            return
        self._state = advance("RemoteJWKS", self._state, RunState.CLOSED, RUN_TRANSITIONS)
        for task in (self._keeper, self._inflight):
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
        self._keeper = self._inflight = None
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> RemoteJWKS:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- fetching ---------------------------------------------------------------

    async def _keep_fresh(self) -> None:
        while True:
            wait = self._retry_after if self._failing else self._max_age
            since = self._clock() - (self._last_attempt or 0.0)
            await asyncio.sleep(max(wait - since, 0.0))
            await self.refresh()

    async def _fetch_once(self) -> bool:
        self._last_attempt = self._clock()
        self.fetches += 1
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._download()
            keys = parse_jwks(raw)
        except (JWKSError, httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
            self._failing = True
            why = str(exc) or type(exc).__name__
            log.warning(
                "%s: could not fetch the JWKS from %s: %s (keeping the %d keys held)",
                FETCH_FAILED,
                self.url,
                why,
                len(self._keys),
            )
            return False
        finally:
            self._inflight = None
        added = sorted(keys.keys() - self._keys.keys())
        if added:
            log.info("JWKS %s: keys %s", self.url, ", ".join(sorted(keys)))
        self._keys, self._failing = keys, False
        return True

    async def _download(self) -> bytes:
        assert self._client is not None
        headers = {"Accept": "application/jwk-set+json, application/json"}
        async with self._client.stream("GET", self.url, headers=headers) as response:
            if response.status_code != 200:
                raise JWKSError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise JWKSError(f"the document is larger than {self._max_bytes} bytes")
        return bytes(body)
