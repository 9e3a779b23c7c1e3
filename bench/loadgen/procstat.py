"""CPU time and resident memory of a server, read from ``/proc`` (Linux only).

A server is a process *and its descendants*: a multi-process server (a supervisor
with its workers, such as ``parsec serve --workers 2``) is measured as the sum over
that tree, read at the moment of the sample. Two ``CpuSample`` readings give a CPU
percentage of one core (100 = one core fully busy; several processes or threads can
exceed it).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSample", "cpu_sample", "own_cpu_sample", "rss_bytes", "tree_pids"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used by a process (tree) so far, and when that was read."""

    cpu_s: float
    wall_s: float

    def percent_since(self, earlier: CpuSample) -> float:
        """CPU % of one core between ``earlier`` and this sample (0 for no wall time)."""
        wall = self.wall_s - earlier.wall_s
        if wall <= 0:
            return 0.0
        return round(100.0 * (self.cpu_s - earlier.cpu_s) / wall, 1)


def tree_pids(pid: int) -> list[int]:
    """``pid`` followed by its live descendants (children, grandchildren, …).

    Raises OSError when ``pid`` itself is gone; a descendant that exits meanwhile is
    left out."""
    if not (_PROC / str(pid)).is_dir():
        raise ProcessLookupError(f"no process {pid}")
    found = [pid]
    for parent in found:  # grows while it is walked: breadth first
        found.extend(_children(parent))
    return found


def _children(pid: int) -> list[int]:
    """The children of ``pid``: from ``/proc/<pid>/task/*/children`` when the kernel
    has it, else by finding every process whose parent is ``pid``."""
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    listed = [task / "children" for task in tasks]
    if listed and not listed[0].exists():  # a kernel without CONFIG_PROC_CHILDREN
        return [p for p in _all_pids() if _parent(p) == pid]
    children: list[int] = []
    for path in listed:
        try:
            children.extend(int(child) for child in path.read_text().split())
        except OSError:
            continue  # the thread ended meanwhile
    return children


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold
    spaces): field 0 is the state, 1 the parent pid, 11 / 12 utime / stime."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2 :].split()


def _parent(pid: int) -> int | None:
    try:
        return int(_stat_fields(pid)[1])
    except OSError:
        return None


def _cpu_s(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _tree_sum(pid: int, read: Callable[[int], float]) -> float:
    """``read`` summed over ``pid`` and its descendants."""
    total = 0.0
    for member in tree_pids(pid):
        try:
            total += read(member)
        except OSError:
            if member == pid:
                raise
            # a descendant exited between the walk and the read: it no longer counts
    return total


def cpu_sample(pid: int) -> CpuSample:
    """User + system CPU time of ``pid`` and its descendants (threads included), from
    ``/proc/<pid>/stat``. Raises OSError when ``pid`` is gone."""
    return CpuSample(_tree_sum(pid, _cpu_s), time.monotonic())


def own_cpu_sample() -> CpuSample:
    """The load generator's own CPU time (it competes with the server for the cores)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(usage.ru_utime + usage.ru_stime, time.monotonic())


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and its descendants in bytes, from
    ``/proc/<pid>/statm`` (a page shared by two processes counts twice)."""
    return int(_tree_sum(pid, _rss))
