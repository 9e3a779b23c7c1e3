"""Redis implementations of Parsec's stores, sharing one Redis between nodes.

Key layout (``<p>`` is the key prefix, default ``parsec``), as the Go Parsec lays it out:

=========================================  =====================================
``<p>:channels``                           HASH channel name → record (JSON)
``<p>:refresh:jti:<jti>``                  redeemed refresh token, expires at its ``exp``
``<p>:refresh:fid:<fid>``                  revoked refresh family, expires at the latest ``exp``
``<p>:tb:revoked:<jti>``                   revoked token id, expires at its ``until``
``<p>:tb:user_revoked_at:<user>``          user cutoff, expires ``user_retention`` after it
=========================================  =====================================

Every operation is one Redis command or one Lua script, so each is atomic across nodes;
expiry is Redis's own (``EXAT``), so no node needs to prune.
"""

from __future__ import annotations

from typing import Final

import msgspec

from parsec.auth.parsec_tokens import MAX_MGMT_TTL
from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation import RevocationStore
from parsec.backends.redis.client import RedisClient
from parsec.channels.store import Channel, ChannelStore
from parsec.errors import ParsecError

__all__ = ["RedisChannelStore", "RedisRefreshStore", "RedisRevocationStore"]

# Store ARGV[1] (an integer) under KEYS[1] unless a larger one is there; expire at ARGV[2].
_RAISE: Final = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
end
return 1
"""
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
        self._raise = client.register_script(_RAISE)

    async def mark_redeemed(self, jti: str, exp: int) -> bool:
        key = f"{self._prefix}:jti:{jti}"
        return bool(await self._client.set(key, 1, nx=True, exat=max(exp, 1)))

    async def revoke_family(self, fid: str, exp: int) -> None:
        await self._raise(keys=[f"{self._prefix}:fid:{fid}"], args=[exp, max(exp, 1)])

    async def is_family_revoked(self, fid: str) -> bool:
        return bool(await self._client.exists(f"{self._prefix}:fid:{fid}"))


class RedisRevocationStore:
    """RevocationStore on expiring keys; cutoffs only move forward (Lua)."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "parsec",
        user_retention: float = MAX_MGMT_TTL,
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}:tb"
        self._retention = int(user_retention)
        self._raise = client.register_script(_RAISE)

    async def revoke(self, jti: str, *, user: str = "", reason: str = "", until: int) -> None:
        if not jti:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "a token id to revoke must not be empty")
        await self._raise(keys=[f"{self._prefix}:revoked:{jti}"], args=[until, max(until, 1)])

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self._client.exists(f"{self._prefix}:revoked:{jti}"))

    async def revoke_user(self, user: str, *, cutoff: int, reason: str = "") -> None:
        if not user:
            raise ParsecError("PARSEC_INVALID_ARGUMENT", "a user to revoke must not be empty")
        key = f"{self._prefix}:user_revoked_at:{user}"
        await self._raise(keys=[key], args=[cutoff, cutoff + self._retention])

    async def user_cutoff(self, user: str) -> int | None:
        raw = await self._client.get(f"{self._prefix}:user_revoked_at:{user}")
        return None if raw is None else int(raw)


_channels: type[ChannelStore] = RedisChannelStore
_refresh: type[RefreshStore] = RedisRefreshStore
_revocations: type[RevocationStore] = RedisRevocationStore
