"""The workloads as the load generator drives them; one module each.

Each module has a ``Params`` Struct (the ``[params]`` table of
``bench/workloads/<name>.toml``; unknown keys are refused) and ``run(target, params)``
returning a ``Result``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from bench.loadgen.spec import Result, Target
from bench.loadgen.workloads import (
    api_publish,
    connect,
    fanout,
    idle,
    many_channels,
    redis_fanout,
)

__all__ = ["WORKLOADS", "Runner"]

Runner = Callable[[Target, dict[str, Any]], Coroutine[Any, Any, Result]]

WORKLOADS: dict[str, Runner] = {
    "fanout": fanout.run,
    "many-channels": many_channels.run,
    "idle": idle.run,
    "connect": connect.run,
    "api-publish": api_publish.run,
    "redis-fanout": redis_fanout.run,
}
