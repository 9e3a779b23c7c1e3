"""RedisKeyRingStore: the keyring that every node sharing one Redis signs and verifies with.

Layout under the key prefix ``<p>``, as the Go Parsec lays it out:

==========================  =========  ====================================================
``<p>:keyring``             STRING     the keyring document (``keyring.json`` format 2),
                                       every secret and private key included
``<p>:keyring:version``     STRING     an integer, incremented after every change
``<p>:keyring:events``      PUB/SUB    the new version, published after every change
==========================  =========  ====================================================

A change is a compare-and-set of the document in one Lua script (the new document is
stored only if the stored one is still the document the writer loaded; seeding is
``SET NX``), then ``INCR`` of the version and a ``PUBLISH`` of it. The two keys are written
one after the other rather than in one script so that they may sit in different slots of a
Redis Cluster; readers make that safe by reading the version before the document, so the
document they get is never older than the version they pair it with (the guarantee of
``parsec.auth.keyring_store``). A writer that dies between its two writes leaves a change
that other nodes adopt only at the next change or reload.

Nodes are told of changes by the pub/sub channel (at most once: a supervised listener
resubscribes after a lost connection) and poll the version besides
(``parsec.auth.shared_keyring``). The client is borrowed: its owner closes it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Final

from redis.exceptions import RedisError

from parsec.auth.keyring import KeyRingError
from parsec.auth.keyring_store import KeyRingStore, StoredKeyRing
from parsec.backends.redis.client import UNREACHABLE, RedisClient
from parsec.backends.redis.keys import DEFAULT_KEY_PREFIX, Keys
from parsec.backends.redis.listener import SupervisedListener

__all__ = ["RedisKeyRingStore"]

log = logging.getLogger("parsec.redis")

# Store ARGV[2] under KEYS[1] if KEYS[1] still holds ARGV[1]; 1 when stored, else 0.
_REPLACE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_SEED_ATTEMPTS: Final = 8


class RedisKeyRingStore:
    """KeyRingStore in one Redis, under ``prefix`` (see the module docstring).

    Raises:
        ParsecError: ``PARSEC_INVALID_ARGUMENT`` for a malformed key prefix.
    """

    def __init__(self, client: RedisClient, *, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        Keys(prefix)
        self._client = client
        self._key = f"{prefix}:keyring"
        self._version_key = f"{prefix}:keyring:version"
        self._channel = f"{prefix}:keyring:events"
        self._replace = client.register_script(_REPLACE)
        self._watchers: list[Callable[[], None]] = []
        self._listener: SupervisedListener | None = None
        self.where = f"redis key {self._key!r}"

    async def load(self) -> StoredKeyRing | None:
        with _errors("loading the keyring"):
            raw_version = await self._client.get(self._version_key)
            document = await self._client.get(self._key)
        if document is None:
            return None
        if isinstance(document, str):  # a client made with decode_responses
            document = document.encode()
        return StoredKeyRing(document, self._parse_version(raw_version) or 0)

    async def version(self) -> int | None:
        with _errors("looking at the keyring version"):
            raw = await self._client.get(self._version_key)
        return self._parse_version(raw)

    async def create_if_absent(self, document: bytes) -> StoredKeyRing:
        for _ in range(_SEED_ATTEMPTS):
            with _errors("seeding the keyring"):
                created = await self._client.set(self._key, document, nx=True)
            if created:
                return StoredKeyRing(document, await self._announce())
            stored = await self.load()
            if stored is not None:
                return stored
        raise KeyRingError(f"{self.where} kept vanishing while being seeded; try again")

    async def replace(self, document: bytes, *, current: StoredKeyRing) -> int | None:
        with _errors("storing the keyring"):
            args: list[bytes] = [current.document, document]
            swapped = await self._replace(keys=[self._key], args=args)
        return await self._announce() if swapped else None

    async def watch(self, on_change: Callable[[], None]) -> None:
        self._watchers.append(on_change)
        if self._listener is None:
            self._listener = SupervisedListener(self._client, self._channel, self._notify)
            try:
                await self._listener.start()
            except TimeoutError:
                raise KeyRingError(
                    f"could not subscribe to {self._channel!r} in time",
                    code="PARSEC_BROKER_NOT_READY",
                ) from None

    async def aclose(self) -> None:
        """Stop listening for changes. Idempotent."""
        self._watchers.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.aclose()

    async def _announce(self) -> int:
        """Count one change and tell every node; the new version."""
        with _errors("announcing a keyring change"):
            version = int(await self._client.incr(self._version_key))
            await self._client.publish(self._channel, str(version))
        return version

    async def _notify(self, data: bytes) -> None:
        for watcher in list(self._watchers):
            watcher()

    def _parse_version(self, raw: bytes | str | None) -> int | None:
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise KeyRingError(
                f"redis key {self._version_key!r} does not hold an integer version"
            ) from None


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """Turn a Redis failure into a KeyRingError with the broker's codes."""
    try:
        yield
    except UNREACHABLE as exc:
        raise KeyRingError(
            f"redis is unreachable while {action}: {exc}", code="PARSEC_BROKER_NOT_READY"
        ) from None
    except RedisError as exc:
        raise KeyRingError(
            f"redis failed while {action}: {exc}", code="PARSEC_BROKER_INTERNAL"
        ) from None


_store: type[KeyRingStore] = RedisKeyRingStore
