"""CPU time and resident memory of a process, read from ``/proc`` (Linux only).

Two ``CpuSample`` readings give a CPU percentage of one core (100 = one core fully
busy; a multi-threaded process can exceed it).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

__all__ = ["CpuSample", "cpu_sample", "own_cpu_sample", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used by a process so far, and when that was read."""

    cpu_s: float
    wall_s: float

    def percent_since(self, earlier: CpuSample) -> float:
        """CPU % of one core between ``earlier`` and this sample (0 for no wall time)."""
        wall = self.wall_s - earlier.wall_s
        if wall <= 0:
            return 0.0
        return round(100.0 * (self.cpu_s - earlier.cpu_s) / wall, 1)


def cpu_sample(pid: int) -> CpuSample:
    """User + system CPU time of ``pid`` (its threads included), from /proc/<pid>/stat.

    Raises OSError when the process is gone."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # the command name may hold spaces: the fields we need come after its ")"
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return CpuSample((utime + stime) / _TICKS, time.monotonic())


def own_cpu_sample() -> CpuSample:
    """The load generator's own CPU time (it competes with the server for the cores)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(usage.ru_utime + usage.ru_stime, time.monotonic())


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes, from /proc/<pid>/statm."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE
