"""Redis implementations of Parsec's stores, sharing one Redis between nodes.

Key layout (``<p>`` is the key prefix, default ``parsec``), as the Go Parsec lays it out:

=========================================  =====================================
``<p>:channels``                           HASH channel name → record (JSON)
``<p>:refresh:jti:<jti>``                  redeemed refresh token, expires at its ``exp``
``<p>:revocations``                        HASH of every revocation (``~gen``, ``~ver``
                                           and one field per entry, see
                                           :class:`RedisRevocationStore`)
=========================================  =====================================

Every operation is one Redis command or one Lua script, so each is atomic across nodes.
Redeemed refresh tokens expire by Redis's own expiry (``EXAT``); revocations carry their
end in their value and are pruned by the nodes (``parsec.auth.revocation``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation_store import (
    Revocation,
    RevocationStore,
    StoredRevocations,
    StoreState,
    new_generation,
)
from parsec.backends.redis.client import RedisClient, translated
from parsec.channels.store import Channel, ChannelStore

__all__ = ["RedisChannelStore", "RedisRefreshStore", "RedisRevocationStore"]

# Compare-and-set of one hash field: act only if the field still holds ARGV[2].
_REPLACE: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
_REMOVE: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

_encode = msgspec.json.encode
_channel = msgspec.json.Decoder(Channel)


class RedisChannelStore:
    """ChannelStore in one Redis hash; ``replace`` / ``remove`` are compare-and-set in
    Lua against the record's exact stored bytes. The client is borrowed."""

    def __init__(self, client: RedisClient, *, prefix: str = "parsec") -> None:
        self._client = client
        self._key = f"{prefix}:channels"
        self._replace = client.register_script(_REPLACE)
        self._remove = client.register_script(_REMOVE)

    async def get(self, name: str) -> Channel | None:
        raw = await self._client.hget(self._key, name)
        return None if raw is None else _channel.decode(raw)

    async def list(self) -> list[Channel]:
        records = await self._client.hvals(self._key)
        return sorted((_channel.decode(raw) for raw in records), key=lambda c: c.name)

    async def create_if_absent(self, channel: Channel) -> bool:
        return bool(await self._client.hsetnx(self._key, channel.name, _encode(channel)))

    async def replace(self, current: Channel, new: Channel) -> bool:
        if current.name != new.name:
            raise ValueError(f"cannot replace {current.name!r} with a record named {new.name!r}")
        args: list[str | bytes] = [current.name, _encode(current), _encode(new)]
        return bool(await self._replace(keys=[self._key], args=args))

    async def remove(self, current: Channel) -> bool:
        args: list[str | bytes] = [current.name, _encode(current)]
        return bool(await self._remove(keys=[self._key], args=args))

    async def aclose(self) -> None:
        """The client is borrowed; nothing to release."""


class RedisRefreshStore:
    """RefreshStore on expiring keys: ``SET NX`` marks a redemption exactly once."""

    def __init__(self, client: RedisClient, *, prefix: str = "parsec") -> None:
        self._client = client
        self._prefix = f"{prefix}:refresh"

    async def mark_redeemed(self, jti: str, exp: int) -> bool:
        key = f"{self._prefix}:jti:{jti}"
        return bool(await self._client.set(key, 1, nx=True, exat=max(exp, 1)))


class RedisRevocationStore:
    """RevocationStore in one Redis hash, ``<p>:revocations``: field ``~gen`` holds the
    generation, ``~ver`` the version, and every other field one entry (its key) with
    ``"<level> <until>"``. ``add`` and ``prune`` are Lua scripts, so each is atomic; the
    hash is one key, so it works on Redis Cluster. The client is borrowed.
    """

    def __init__(self, client: RedisClient, *, prefix: str = "parsec") -> None:
        self._client = client
        self._key = f"{prefix}:revocations"
        self._add = client.register_script(_ADD_REVOCATIONS)
        self._prune = client.register_script(_PRUNE_REVOCATIONS)
        self.where = f"redis key {self._key!r}"

    async def load(self) -> StoredRevocations:
        with translated("loading the revocations"):
            raw = await self._client.hgetall(self._key)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        entries: dict[str, Revocation] = {}
        for key, value in fields.items():
            if not key.startswith("~"):
                entry = _entry(value)
                if entry is not None:
                    entries[key] = entry
        return StoredRevocations(_state(fields.get("~gen"), fields.get("~ver")), entries)

    async def state(self) -> StoreState:
        with translated("looking at the revocations"):
            generation, version = await self._client.hmget(self._key, ["~gen", "~ver"])
        return _state(_optional_text(generation), _optional_text(version))

    async def add(self, entries: Mapping[str, Revocation]) -> StoreState:
        items = list(entries.items())
        state = StoreState(None, 0)
        for start in range(0, max(len(items), 1), _ADD_BATCH):
            args: list[str | int] = [new_generation()]
            for key, entry in items[start : start + _ADD_BATCH]:
                args += [key, entry.level, entry.until]
            with translated("storing revocations"):
                generation, version = await self._add(keys=[self._key], args=args)
            state = _state(_optional_text(generation), _optional_text(version))
        return state

    async def prune(self, now: int) -> None:
        with translated("pruning the revocations"):
            await self._prune(keys=[self._key], args=[now])

    async def aclose(self) -> None:
        """The client is borrowed; nothing to release."""


# Merge (field, level, until) triples from ARGV[2..] into hash KEYS[1], each value only
# growing; give the hash the generation ARGV[1] if it has none; count a change in ~ver.
_ADD_REVOCATIONS: Final = """
local generation = redis.call('HGET', KEYS[1], '~gen')
if not generation then
  generation = ARGV[1]
  redis.call('HSET', KEYS[1], '~gen', generation)
end
local changed = false
for i = 2, #ARGV, 3 do
  local level, untl = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local write = true
  if current then
    local sep = string.find(current, ' ', 1, true)
    local old_level = tonumber(string.sub(current, 1, sep - 1))
    local old_until = tonumber(string.sub(current, sep + 1))
    if old_level >= level and old_until >= untl then
      write = false
    else
      level = math.max(level, old_level)
      untl = math.max(untl, old_until)
    end
  end
  if write then
    redis.call('HSET', KEYS[1], ARGV[i], string.format('%d %d', level, untl))
    changed = true
  end
end
local version = redis.call('HGET', KEYS[1], '~ver') or '0'
if changed then
  version = redis.call('HINCRBY', KEYS[1], '~ver', 1)
end
return {generation, tostring(version)}
"""
# Delete the entries of hash KEYS[1] whose until is at or before ARGV[1].
_PRUNE_REVOCATIONS: Final = """
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if string.sub(field, 1, 1) ~= '~' then
    local sep = string.find(value, ' ', 1, true)
    if sep and tonumber(string.sub(value, sep + 1)) <= now then
      redis.call('HDEL', KEYS[1], field)
    end
  end
end
return 1
"""
_ADD_BATCH: Final = 500
"""Entries per ``add`` script call: a node writing back thousands does it in steps."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _optional_text(value: bytes | str | None) -> str | None:
    return None if value is None else _text(value)


def _state(generation: str | None, version: str | None) -> StoreState:
    return StoreState(generation, int(version) if version and version.isdigit() else 0)


def _entry(value: str) -> Revocation | None:
    """An entry's stored value; None (ignored) when it is not two integers."""
    level, _, until = value.partition(" ")
    try:
        return Revocation(int(level), int(until))
    except ValueError:
        return None


_channels: type[ChannelStore] = RedisChannelStore
_refresh: type[RefreshStore] = RedisRefreshStore
_revocations: type[RevocationStore] = RedisRevocationStore
