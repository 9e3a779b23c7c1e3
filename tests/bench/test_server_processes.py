"""The harness measures a multi-process server as the whole process tree, and sees
which worker holds which connection.

Each check runs in a Python process that imports the harness (``bench`` in this test
directory is not the harness package) against a real process tree on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BALLAST = 64 * 2**20
"""Bytes a child of the tree holds resident."""
SPIN_S = 0.3
"""CPU seconds a child of the tree has used before it says it is ready."""

CHILD = f"""
import os, time
ballast = bytearray({BALLAST})
ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: resident
while time.process_time() < {SPIN_S}:
    pass
os.write(1, b"ready\\n")  # one write: the two children share the pipe
time.sleep(120)
"""

LISTENER = """
import socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(128)
held = []
while True:
    held.append(sock.accept()[0])
"""


def harness(code: str) -> object:
    """What ``code`` prints as JSON, run with the harness importable."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def spawn_tree(child: list[str], count: int) -> subprocess.Popen[str]:
    """A shell (the root) running ``count`` copies of ``child`` and waiting for them."""
    line = " & ".join([shlex.join(child)] * count) + " & wait"
    return subprocess.Popen(
        ["sh", "-c", line], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


@pytest.fixture
def trees() -> Iterator[list[subprocess.Popen[str]]]:
    """Process trees a test starts; each is killed (its whole group) afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for tree in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(tree.pid, signal.SIGKILL)
        tree.wait(10)
        assert tree.stdout is not None
        tree.stdout.close()


def test_cpu_and_rss_cover_the_descendants(trees: list[subprocess.Popen[str]]) -> None:
    """A root with two busy, memory-holding children is measured with their CPU time
    and resident memory included."""
    tree = spawn_tree([sys.executable, "-c", CHILD], 2)
    trees.append(tree)
    assert tree.stdout is not None
    assert [tree.stdout.readline(), tree.stdout.readline()] == ["ready\n", "ready\n"]
    measured = harness(
        f"""
        import json
        from bench.loadgen.procstat import cpu_sample, rss_bytes, tree_pids
        pid = {tree.pid}
        print(json.dumps({{
            "pids": len(tree_pids(pid)),
            "cpu_s": cpu_sample(pid).cpu_s,
            "rss": rss_bytes(pid),
        }}))
        """
    )
    assert isinstance(measured, dict)
    assert measured["pids"] == 3
    assert measured["cpu_s"] > 1.5 * SPIN_S  # more than one child's (in clock ticks)
    assert measured["rss"] > 2 * BALLAST


def test_connections_are_attributed_to_the_worker_holding_them(
    trees: list[subprocess.Popen[str]],
) -> None:
    """With two workers listening on one port (SO_REUSEPORT), every connection made
    is found on exactly one of them."""
    port = harness("import json; from bench.servers import free_port; print(free_port())")
    tree = spawn_tree([sys.executable, "-c", LISTENER, str(port)], 2)
    trees.append(tree)
    seen = harness(
        f"""
        import json, socket, time
        from bench.loadgen.sockets import connections_by_process, listening_processes
        pid, port, count = {tree.pid}, {port}, 40
        deadline = time.monotonic() + 20
        while len(listening_processes(pid, port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        listeners = listening_processes(pid, port)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        mine = sorted(c.getsockname()[1] for c in clients)
        while time.monotonic() < deadline:
            held = connections_by_process(pid, port)
            if sum(len(ports) for ports in held.values()) >= count:
                break
            time.sleep(0.02)
        print(json.dumps({{
            "listeners": len(listeners),
            "holders": sorted(held) == listeners,
            "ports": sorted(p for ports in held.values() for p in ports) == mine,
        }}))
        """
    )
    assert seen == {"listeners": 2, "holders": True, "ports": True}
