"""Which process of a server holds which TCP socket on its port, read from ``/proc``
(Linux only).

With several worker processes on one port (SO_REUSEPORT) the kernel picks the worker
of each new connection; this is how the harness sees where connections landed and
that every worker listens. Sockets are matched by inode: ``/proc/<pid>/fd`` links name
them, ``/proc/net/tcp`` and ``/proc/net/tcp6`` give their state and ports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.loadgen.procstat import tree_pids

__all__ = ["TcpSocket", "connections_by_process", "listening_processes"]

_LISTEN = "0A"
_ESTABLISHED = "01"


@dataclass(frozen=True, slots=True)
class TcpSocket:
    state: str
    """The kernel's state code: ``0A`` listening, ``01`` established."""
    local_port: int
    remote_port: int


def _tcp_sockets(port: int) -> dict[int, TcpSocket]:
    """inode -> socket, for every TCP socket whose local port is ``port``."""
    found: dict[int, TcpSocket] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue  # no IPv6 on this machine
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                found[int(fields[9])] = TcpSocket(fields[3], local_port, remote_port)
    return found


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` has open (empty once it is gone)."""
    inodes: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            link = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _by_process(root_pid: int, port: int, state: str) -> dict[int, list[TcpSocket]]:
    sockets = _tcp_sockets(port)
    found: dict[int, list[TcpSocket]] = {}
    for pid in tree_pids(root_pid):
        mine = [sockets[i] for i in _socket_inodes(pid) if i in sockets]
        held = [s for s in mine if s.state == state]
        if held:
            found[pid] = held
    return found


def listening_processes(root_pid: int, port: int) -> list[int]:
    """The processes of ``root_pid``'s tree that listen on ``port``."""
    return sorted(_by_process(root_pid, port, _LISTEN))


def connections_by_process(root_pid: int, port: int) -> dict[int, set[int]]:
    """For each process of ``root_pid``'s tree holding established connections on
    ``port``: the peers' ports (the client side's local ports)."""
    return {
        pid: {s.remote_port for s in held}
        for pid, held in _by_process(root_pid, port, _ESTABLISHED).items()
    }
