"""Telemetry: the Go Parsec's snapshot for dashboards that do not speak Prometheus
(``GET /parsec/telemetry``, :mod:`parsec.api.telemetry`).

Everything is this node's view, computed when a snapshot is asked for from counters
kept cheaply elsewhere:

- ``channels``: the channels with a subscriber on this node, by namespace (the Go
  Parsec's ``by_pattern``; ``""`` is the channels of no namespace);
- ``envelopes``: publications accepted by this node (``Node.published``, one counter
  increment per publication, none per delivery) per second since the previous
  snapshot, in all and by namespace (``by_aspect``);
- ``presence``: distinct users and connections (``total_agents``) on this node, and
  subscribers per channel;
- ``history``: publications kept in the streams of this node's active channels with
  history (at most :data:`HISTORY_CHANNELS` of them, one stream-position read each),
  and how full those streams are against their ``history_size``;
- ``tokens``: tokens this node issued (Parsec and connection tokens) and revocations it
  learnt of in the last hour (a ring of 60 one-minute counts), and how many of the
  tokens it issued have not expired yet;
- ``alerts``: always empty (no alert rules are configurable yet).

The Go Parsec's ``cache`` section has no counterpart (Parsec has no envelope cache).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from parsec.engine.broker import HistoryFilter
from parsec.engine.codes import ClientError
from parsec.engine.node import Node

__all__ = ["HISTORY_CHANNELS", "TELEMETRY_PATH", "MinuteRing", "Telemetry", "TokenCounters"]

TELEMETRY_PATH: Final = "/parsec/telemetry"
"""Where the snapshot is served (named in the manifest's ``telemetry``)."""

HISTORY_CHANNELS: Final = 1000
"""The most channels whose stream position one snapshot reads."""
_MINUTES: Final = 60
_POSITION_ONLY: Final = HistoryFilter(limit=0)

Clock = Callable[[], float]


class MinuteRing:
    """Events counted per minute over the last hour: 60 one-minute buckets, reused as
    the minutes go by. ``add`` is O(1), ``last_hour`` O(60)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._counts = [0] * _MINUTES
        self._minutes = [-1] * _MINUTES

    def add(self, n: int = 1) -> None:
        minute = int(self._clock() // 60)
        slot = minute % _MINUTES
        if self._minutes[slot] != minute:
            self._minutes[slot], self._counts[slot] = minute, 0
        self._counts[slot] += n

    def last_hour(self) -> int:
        """Events of this minute and of the 59 before it."""
        now = int(self._clock() // 60)
        return sum(
            count
            for count, minute in zip(self._counts, self._minutes, strict=True)
            if now - minute < _MINUTES
        )


class TokenCounters:
    """Tokens issued (``issued``, given each token's ``exp``) and revocations learnt of
    (``revoked``). Unexpired tokens are counted by the minute they expire in."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self.issued_ring = MinuteRing(clock)
        self.revoked_ring = MinuteRing(clock)
        self._expiring: dict[int, int] = {}
        """Unexpired tokens by the minute they expire in."""

    def issued(self, exp: object) -> None:
        """A token was issued; ``exp`` its expiry (unix seconds), or None for none."""
        self.issued_ring.add()
        if isinstance(exp, int | float):
            minute = int(exp // 60)
            self._expiring[minute] = self._expiring.get(minute, 0) + 1

    def revoked(self) -> None:
        """A revocation (of a token, a user or a refresh family) was learnt of."""
        self.revoked_ring.add()

    def active(self) -> int:
        """Tokens issued here (with an ``exp``) that have not expired, to the minute."""
        now = int(self._clock() // 60)
        for minute in [m for m in self._expiring if m < now]:
            del self._expiring[minute]
        return sum(self._expiring.values())

    def snapshot(self) -> dict[str, int]:
        return {
            "issued_last_hour": self.issued_ring.last_hour(),
            "revoked_last_hour": self.revoked_ring.last_hour(),
            "active_count": self.active(),
        }


class Telemetry:
    """The telemetry of one Parsec node (the module docstring)."""

    def __init__(self, node: Node, region: str = "", clock: Clock = time.time) -> None:
        self._node = node
        self._region = region
        self._clock = clock
        self.tokens = TokenCounters(clock)
        self._last_at = time.monotonic()
        self._last_published: dict[str, int] = {}

    async def snapshot(self) -> dict[str, Any]:
        """The snapshot (the shape in ``docs/observability.md``, "Telemetry")."""
        by_namespace: dict[str, int] = {}
        subscribers = 0
        history_channels: list[tuple[str, int]] = []
        rules = self._node.rules
        for channel, count in self._node.hub.channels():
            try:
                resolved = rules.resolve(channel)
            except ClientError:  # its namespace went away since it was subscribed
                continue
            by_namespace[resolved.namespace] = by_namespace.get(resolved.namespace, 0) + 1
            subscribers += count
            if resolved.options.history_enabled and len(history_channels) < HISTORY_CHANNELS:
                history_channels.append((channel, resolved.options.history_size))
        channels = sum(by_namespace.values())
        sessions = self._node.hub.sessions()
        return {
            "channels": {"total_active": channels, "by_pattern": by_namespace},
            "envelopes": self._rates(),
            "presence": {
                "total_users": len({session.user for session in sessions}),
                "total_agents": len(sessions),
                "average_per_channel": round(subscribers / channels, 3) if channels else 0.0,
            },
            "history": await self._history(history_channels),
            "tokens": self.tokens.snapshot(),
            "region": self._region,
            "at": _rfc3339_ms(self._clock()),
            "alerts": [],
        }

    def _rates(self) -> dict[str, Any]:
        """Publications per second since the previous snapshot, in all and by namespace."""
        now = time.monotonic()
        elapsed = max(now - self._last_at, 1e-9)
        published = dict(self._node.published)
        by_namespace = {
            namespace: round((total - self._last_published.get(namespace, 0)) / elapsed, 3)
            for namespace, total in published.items()
        }
        self._last_at, self._last_published = now, published
        return {
            "rate_per_second": round(sum(by_namespace.values()), 3),
            "by_aspect": by_namespace,
        }

    async def _history(self, channels: list[tuple[str, int]]) -> dict[str, Any]:
        broker = self._node.broker
        results = await asyncio.gather(
            *(broker.history(channel, _POSITION_ONLY) for channel, _ in channels),
            return_exceptions=True,
        )
        buffered = capacity = 0
        for (_, size), result in zip(channels, results, strict=True):
            if isinstance(result, BaseException):
                continue  # a broker hiccup leaves that channel out of this snapshot
            buffered += min(result.position.offset, size)
            capacity += size
        return {
            "total_envelopes_buffered": buffered,
            "buffer_utilization_pct": round(100 * buffered / capacity, 2) if capacity else 0.0,
        }


def _rfc3339_ms(moment: float) -> str:
    """``moment`` as RFC 3339 UTC with milliseconds."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return f"{whole}.{int(moment % 1 * 1000):03d}Z"
