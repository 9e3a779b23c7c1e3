"""redis-fanout: the fanout workload against a server of several worker processes on
one port, sharing Redis.

The parameters, the steps, the sustained rule and the reference rate are fanout's, and
so is the code that runs them (``fanout.connect`` and ``fanout.measure``). In between,
once every connection is open, it looks up which worker holds each one (the kernel
chose, SO_REUSEPORT): the subscribers per worker and the worker of the publisher's
connection go into the result. A worker without subscribers fails the run, since
then it would not measure fan-out across workers.
"""

from __future__ import annotations

from typing import Any

from bench.loadgen.adapters import Conn
from bench.loadgen.sockets import connections_by_process
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads import fanout
from bench.loadgen.workloads.common import channel, decode_params

__all__ = ["WorkerSplitError", "run"]


class WorkerSplitError(Exception):
    """The subscribers did not reach every worker of the server."""


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(fanout.Params, raw)
    audience = await fanout.connect(target, params, channel("redis-fanout"))
    try:
        workers = worker_split(target, audience)
    except BaseException:
        audience.close()
        raise
    result = await fanout.measure(target, params, audience)
    result.details["workers"] = workers
    result.notes.insert(0, _describe(workers))
    return result


def worker_split(target: Target, audience: fanout.Audience) -> list[dict[str, Any]]:
    """Per worker process (by pid): how many subscribers it holds and whether it holds
    the publisher's connection. Raises WorkerSplitError when fewer than
    ``target.workers`` processes hold subscribers."""
    subscribers = {_local_port(conn) for conn in audience.subscribers}
    publisher = _local_port(audience.publisher)
    held = connections_by_process(target.pid, target.port)
    workers = [
        {"pid": pid, "subscribers": len(peers & subscribers), "publisher": publisher in peers}
        for pid, peers in sorted(held.items())
    ]
    serving = [w for w in workers if w["subscribers"]]
    if len(serving) < target.workers:
        raise WorkerSplitError(
            f"subscribers reached {len(serving)} of the server's {target.workers} workers "
            f"({_describe(workers)}); the run would not cross workers"
        )
    return workers


def _local_port(conn: Conn) -> int:
    assert conn.transport is not None  # set once the WebSocket is open
    port: int = conn.transport.underlying_transport.get_extra_info("sockname")[1]
    return port


def _describe(workers: list[dict[str, Any]]) -> str:
    counts = " / ".join(str(w["subscribers"]) for w in workers) or "none"
    publisher = next((i for i, w in enumerate(workers, 1) if w["publisher"]), None)
    where = "not found" if publisher is None else f"on worker {publisher}"
    return f"subscribers per worker: {counts}; the publisher's connection {where}"
