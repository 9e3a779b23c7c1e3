"""What a result was measured on: cores, CPU model, RAM, Python and package versions;
and how busy the rest of the machine was while it was measured."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["QUIET_PCT", "CpuLedger", "describe", "wait_for_quiet"]

_TICKS = os.sysconf("SC_CLK_TCK")

PACKAGES = (
    "parsec-realtime",
    "uvicorn",
    "websockets",
    "uvloop",
    "msgspec",
    "picows",
    "python-socketio",
    "python-engineio",
    "broadcaster",
    "starlette",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _source_revision() -> str | None:
    """The git commit of the tree measured, with ``+dirty`` when ``src/`` has changes
    not committed; None outside a git checkout. Reads git state, never changes it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if changes else "")


def describe() -> dict[str, Any]:
    """The machine and software of this run, for ``results.json`` and the report."""
    return {
        "revision": _source_revision(),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _user_s() -> float:
    """User CPU seconds of the whole machine (every core). Kernel time is left out: the
    loopback traffic of a benchmark costs kernel threads (softirq) time that belongs
    to no process, and would read as someone else's load."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:3]]
    return sum(fields) / _TICKS


def _children_user_s() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime


@dataclass(frozen=True, slots=True)
class CpuLedger:
    """The machine's user CPU time and this process's reaped children's at one moment;
    two of them tell how much CPU *other* processes used in between."""

    user_s: float
    children_s: float
    wall_s: float

    @classmethod
    def now(cls) -> CpuLedger:
        return cls(_user_s(), _children_user_s(), time.monotonic())

    def busy_pct_since(self, earlier: CpuLedger) -> float:
        """The machine's user CPU % (100 = one core) since ``earlier``."""
        wall = self.wall_s - earlier.wall_s
        return 0.0 if wall <= 0 else round(100.0 * (self.user_s - earlier.user_s) / wall, 1)

    def others_pct_since(self, earlier: CpuLedger) -> float:
        """User CPU % (100 = one core) of processes other than this one's reaped
        children (the server and the load generator) since ``earlier``."""
        wall = self.wall_s - earlier.wall_s
        if wall <= 0:
            return 0.0
        others = (self.user_s - earlier.user_s) - (self.children_s - earlier.children_s)
        return round(max(0.0, 100.0 * others / wall), 1)


QUIET_PCT = 25.0
"""Below this user CPU % (100 = one core) of the whole machine, it counts as quiet."""
QUIET_SAMPLE_S = 0.5


def wait_for_quiet(max_s: float) -> float:
    """Wait (at most ``max_s``) until the machine is quiet, sampling its busy time
    every 0.5 s, so that a measurement does not start while other processes hold the
    cores; the busy CPU % of the last sample."""
    deadline = time.monotonic() + max_s
    while True:
        start = CpuLedger.now()
        time.sleep(QUIET_SAMPLE_S)  # the sampling window itself
        busy = CpuLedger.now().busy_pct_since(start)
        if busy < QUIET_PCT or time.monotonic() >= deadline:
            return busy
