"""The workload files: ``bench/workloads/<name>.toml``.

A file has a ``description``, a ``timeout_seconds`` for one server's run, an optional
``servers`` list (default: every server), the ``[params]`` table handed to the load
generator and a ``[smoke]`` table of overrides for ``python -m bench smoke``. A
workload that runs another's load says ``extends = "<name>"``: it starts from that
file's ``[params]`` and ``[smoke]``, and its own tables override them key by key. A
``[cluster]`` table runs each server as several worker processes sharing Redis. A
workload that cannot run yet says ``available = false`` and gives a ``reason``; the
runner reports it as not available, with no numbers.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

__all__ = [
    "DEFAULT_REDIS_URL",
    "WORKLOAD_DIR",
    "Cluster",
    "PlanError",
    "Workload",
    "load_workload",
    "workload_names",
]

WORKLOAD_DIR = Path(__file__).with_name("workloads")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class PlanError(Exception):
    """A workload name or file the runner cannot use; the message says why."""


class Cluster(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Each server as ``workers`` processes on one port, sharing the Redis at
    ``redis_url`` (under a key prefix of their own for each run)."""

    workers: Annotated[int, msgspec.Meta(ge=2)] = 2
    redis_url: str = DEFAULT_REDIS_URL


class Workload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str
    timeout_seconds: float = 300.0
    available: bool = True
    reason: str = ""
    servers: list[str] | None = None
    extends: str | None = None
    """The workload whose ``[params]`` and ``[smoke]`` this one starts from (the load
    generator runs the same code for both)."""
    cluster: Cluster | None = None
    params: dict[str, Any] = {}
    smoke: dict[str, Any] = {}

    def params_for(self, smoke: bool) -> dict[str, Any]:
        """The parameters of a full run, or with the ``[smoke]`` overrides applied."""
        return {**self.params, **self.smoke} if smoke else dict(self.params)


def workload_names() -> list[str]:
    """Every workload with a file, in the order ``all`` runs them."""
    order = ["fanout", "many-channels", "idle", "connect", "api-publish", "redis-fanout"]
    found = {p.stem for p in WORKLOAD_DIR.glob("*.toml")}
    return [n for n in order if n in found] + sorted(found - set(order))


def load_workload(name: str, _extending: tuple[str, ...] = ()) -> Workload:
    """Parse ``bench/workloads/<name>.toml`` (with the workload it extends merged in);
    PlanError names the file and the problem."""
    path = WORKLOAD_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(workload_names())
        raise PlanError(f"unknown workload {name!r} (known: {known})")
    try:
        table = tomllib.loads(path.read_text())
        workload = msgspec.convert({"name": name, **table}, Workload)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise PlanError(f"{path}: {exc}") from None
    if workload.extends is None:
        return workload
    if workload.extends in (name, *_extending):
        raise PlanError(f"{path}: extends {workload.extends!r}, which extends it back")
    base = load_workload(workload.extends, (*_extending, name))
    return msgspec.structs.replace(
        workload,
        params={**base.params, **workload.params},
        smoke={**base.smoke, **workload.smoke},
    )
