"""Servers run as several worker processes sharing Redis (``[cluster]`` in a workload
file): the Redis they share, checked before anything starts, and a key prefix of
their own for each run, whose keys are deleted once the server has stopped.

Parsec takes the prefix as its ``broker.key_prefix``; python-socketio's Redis manager
takes it (plus ``:socketio``) as the name of its pub/sub channel.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from bench.plan import Cluster

__all__ = ["ClusterError", "ClusterRun", "cluster_run"]

CONNECT_TIMEOUT_S = 3.0
DELETE_BATCH = 500


class ClusterError(Exception):
    """The Redis a cluster run needs does not answer; the message names it."""


@dataclass(slots=True)
class ClusterRun:
    """One run's share of Redis: how many workers, where, and under which prefix."""

    workers: int
    redis_url: str
    prefix: str
    deleted: int = 0
    """Keys under ``prefix`` deleted after the run."""
    cleanup_error: str | None = None

    @property
    def channel(self) -> str:
        """The pub/sub channel name for a peer that takes one (python-socketio)."""
        return f"{self.prefix}:socketio"

    def describe(self) -> dict[str, Any]:
        """What ``results.json`` records about it."""
        described: dict[str, Any] = {
            "workers": self.workers,
            "redis_url": self.redis_url,
            "key_prefix": self.prefix,
            "keys_deleted": self.deleted,
        }
        if self.cleanup_error is not None:
            described["cleanup_error"] = self.cleanup_error
        return described


@contextlib.contextmanager
def cluster_run(cluster: Cluster) -> Iterator[ClusterRun]:
    """A fresh prefix (``bench-<16 hex>``) on the Redis of ``cluster``; afterwards every
    key starting with it is deleted. Raises ClusterError when Redis does not answer."""
    client: redis.Redis = redis.Redis.from_url(
        cluster.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=10.0
    )
    with contextlib.closing(client):
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ClusterError(
                f"Redis at {cluster.redis_url} is not reachable ({exc}); this workload "
                "runs its servers over Redis: start Redis, or point [cluster] redis_url "
                "or --redis-url at one"
            ) from None
        run = ClusterRun(cluster.workers, cluster.redis_url, f"bench-{secrets.token_hex(8)}")
        try:
            yield run
        finally:
            try:
                run.deleted = delete_prefixed(client, run.prefix)
            except redis.RedisError as exc:
                run.cleanup_error = f"could not delete the keys under {run.prefix}: {exc}"


def delete_prefixed(client: redis.Redis, prefix: str) -> int:
    """Delete every key that starts with ``prefix`` (which holds no glob characters);
    how many there were."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=DELETE_BATCH):
        batch.append(key)
        if len(batch) >= DELETE_BATCH:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted
