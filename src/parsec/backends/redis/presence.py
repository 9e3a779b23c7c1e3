"""RedisPresenceManager: the PresenceManager contract on Redis, cluster-wide.

A channel's presence is a hash (client id -> ClientInfo JSON) and a sorted set (client
id scored by the unix time its entry expires). The node refreshes its clients' entries
every ``presence_update_interval``; an entry not refreshed within its TTL is dropped
by the next ``presence`` or ``presence_stats`` read (``lua/presence_get.lua``), so
clients of a node that died vanish on their own. Both keys also expire when every
entry of the channel has. Join and leave events travel through the broker.

Expiry times come from ``clock`` (unix seconds): the nodes' clocks must agree (NTP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from parsec.backends.redis.client import ClientShare, RedisClient, translated
from parsec.backends.redis.keys import DEFAULT_KEY_PREFIX, Keys, load_script
from parsec.engine.presence import PresenceManager, PresenceStats
from parsec.engine.types import ClientInfo
from parsec.errors import ParsecError

__all__ = ["RedisPresenceManager"]

log = logging.getLogger("parsec.redis.presence")


class _User(msgspec.Struct):
    user: str


_encode = msgspec.json.Encoder().encode
_info = msgspec.json.Decoder(ClientInfo)
_user = msgspec.json.Decoder(_User)


class RedisPresenceManager:
    """Presence on Redis. ``client`` is borrowed unless ``share`` says otherwise."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = DEFAULT_KEY_PREFIX,
        share: ClientShare | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = Keys(prefix)
        self._share = share
        self._clock = clock
        self._add = client.register_script(load_script("presence_add"))
        self._get = client.register_script(load_script("presence_get"))
        self._remove = client.register_script(load_script("presence_remove"))
        self._closed = False

    async def add_presence(
        self, channel: str, client_id: str, info: ClientInfo, ttl: float
    ) -> None:
        """Record or refresh an entry that expires ``ttl`` (> 0) seconds from now."""
        if not ttl > 0:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", f"presence TTL must be > 0, not {ttl}")
        with translated("recording presence"):
            await self._add(
                keys=self._channel_keys(channel),
                args=[client_id, _encode(info), self._clock() + ttl, max(1, round(ttl * 1000))],
            )

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        with translated("removing presence"):
            await self._remove(keys=self._channel_keys(channel), args=[client_id])

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        present: dict[str, ClientInfo] = {}
        for client_id, data in await self._entries(channel):
            try:
                present[client_id] = _info.decode(data)
            except msgspec.DecodeError:
                log.warning("skipped a malformed presence entry in channel %r", channel)
        return present

    async def presence_stats(self, channel: str) -> PresenceStats:
        clients = 0
        users: set[str] = set()
        for _, data in await self._entries(channel):
            try:
                users.add(_user.decode(data).user)
            except msgspec.DecodeError:
                log.warning("skipped a malformed presence entry in channel %r", channel)
                continue
            clients += 1
        return PresenceStats(clients, len(users))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._share is not None:
            await self._share.release()

    async def _entries(self, channel: str) -> list[tuple[str, bytes]]:
        """The live entries (client id, info JSON), after dropping the expired ones."""
        with translated("reading presence"):
            flat = await self._get(keys=self._channel_keys(channel), args=[self._clock()])
        return [(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    def _channel_keys(self, channel: str) -> list[str]:
        return [self._keys.presence(channel), self._keys.expiry(channel)]


_presence: type[PresenceManager] = RedisPresenceManager
