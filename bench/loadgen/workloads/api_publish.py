"""api-publish: publishes/s through the server's HTTP API, one publish per request and
(where the server has it) through Centrifugo's ``batch``.

``concurrency`` keep-alive connections each send requests back to back for
``seconds``. One subscriber listens on the channel, so a publish does the full
delivery path; its deliveries are counted. A request answered with a status other
than 200 or an ``"error"`` body counts as an error, not a publish.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from bench.loadgen.http import HttpConnection, HttpError
from bench.loadgen.latency import Sink, stamped_payload
from bench.loadgen.pool import close_all, open_one
from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads.common import CpuWindow, channel, decode_params, pad

__all__ = ["Params", "run"]


class Params(msgspec.Struct, forbid_unknown_fields=True):
    seconds: float = 5.0
    concurrency: int = 8
    batch_size: int = 50
    payload_bytes: int = 100


async def run(target: Target, raw: dict[str, Any]) -> Result:
    params = decode_params(Params, raw)
    if target.publish_path is None:
        raise ValueError("this server has no HTTP publish endpoint")
    sink = Sink()
    name = channel("api")
    subscriber, _ = await open_one(target, sink, None, name)
    headers = {"X-API-Key": target.api_key} if target.api_key else {}
    filler = pad(params.payload_bytes)

    def publish_body() -> bytes:
        return b'{"channel":%s,"data":%s}' % (json.dumps(name).encode(), stamped_payload(filler))

    def batch_body() -> bytes:
        one = b'{"publish":%s}' % publish_body()
        return b'{"commands":[%s]}' % b",".join([one] * params.batch_size)

    single = await _measure(target, params, target.publish_path, headers, publish_body, 1)
    metrics: dict[str, float | int | None] = {"publish_per_s": single["publishes_per_s"]}
    details: dict[str, Any] = {"publish": single}
    notes = []
    if target.batch_path is not None:
        batch = await _measure(
            target, params, target.batch_path, headers, batch_body, params.batch_size
        )
        metrics["batch_publishes_per_s"] = batch["publishes_per_s"]
        details["batch"] = batch
    else:
        metrics["batch_publishes_per_s"] = None
        notes.append("no batch API: batch_publishes_per_s is not applicable")
    details["delivered_to_subscriber"] = sink.delivered
    close_all([subscriber])
    return Result(metrics=metrics, details=details, notes=notes)


async def _measure(
    target: Target,
    params: Params,
    path: str,
    headers: dict[str, str],
    body: Callable[[], bytes],
    per_request: int,
) -> dict[str, Any]:
    """Requests back to back on ``concurrency`` connections for ``seconds``."""
    conns = [await HttpConnection.open(target.host, target.port) for _ in range(params.concurrency)]
    host = f"{target.host}:{target.port}"
    # payloads are built once per connection: the stamp only matters for delivery counts
    requests = [HttpConnection.request(host, path, body(), headers) for _ in conns]
    ok = 0
    errors: dict[str, int] = {}

    async def loop(conn: HttpConnection, request: bytes, deadline: float) -> None:
        nonlocal ok
        while time.perf_counter() < deadline:
            try:
                status, reply = await conn.send(request)
            except (HttpError, OSError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if status != 200 or b'"error"' in reply:
                key = f"HTTP {status}: {reply[:80].decode(errors='replace')}"
                errors[key] = errors.get(key, 0) + 1
            else:
                ok += 1

    cpu = CpuWindow.start(target.pid)
    started = time.perf_counter()
    deadline = started + params.seconds
    async with asyncio.TaskGroup() as group:
        for conn, request in zip(conns, requests, strict=True):
            group.create_task(loop(conn, request, deadline))
    seconds = time.perf_counter() - started
    usage = cpu.stop()
    for conn in conns:
        conn.close()
    return {
        "requests": ok,
        "requests_per_s": round(ok / seconds),
        "publishes_per_s": round(ok * per_request / seconds),
        "errors": errors,
        **usage,
    }
