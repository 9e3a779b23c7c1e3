"""A command running in the background whose combined stdout and stderr a test reads as
it comes: ``wait_for`` a line, then look at ``output``; ``stop`` ends it.

The process gets a session of its own, so that ``stop`` signals everything it started
(``make`` and the ``parsec`` it runs, ``bash`` and its children) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

__all__ = ["PARSEC", "Background", "Serve", "free_port", "parsec_env"]

PARSEC: Final = Path(sys.executable).with_name("parsec")
"""The ``parsec`` script of the venv running the tests."""

STOP_TIMEOUT: Final = 20.0
WAIT: Final = 30.0
"""How long ``wait_for`` waits by default: a deadline for a slow, shared machine."""


def parsec_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``PARSEC_*`` variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PARSEC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | dict(extra or {})


class Background:
    """Runs ``argv`` in ``cwd`` with ``env``; its output lines are collected in a thread."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self.popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.popen.stdout,), daemon=True)
        self._reader.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> list[str]:
        """Every line printed so far."""
        with self._changed:
            return list(self._lines)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """The first line holding ``text``, waiting up to ``timeout`` seconds for it;
        AssertionError (with the output) when the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self._lines if text in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    why = "ended" if self._ended else f"printed nothing like it in {timeout}s"
                    raise AssertionError(
                        f"{self.argv} {why} before {text!r}; output:\n" + "\n".join(self._lines)
                    )
                self._changed.wait(left)

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Send ``sig`` to the process group it leads, wait for it to exit (SIGKILL to
        the group after ``STOP_TIMEOUT``) and for its output to end; its exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)
        assert self.popen.stdout is not None
        self.popen.stdout.close()
        return self.popen.returncode


class Serve(Background):
    """``parsec serve --addr 127.0.0.1:<free port> ARGS`` run by ``parsec`` (default: the
    venv's script) in ``cwd``; returns once the banner (its last line mints a token) is printed."""

    def __init__(
        self,
        *args: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        parsec: str = str(PARSEC),
    ) -> None:
        self.port = free_port()
        argv = [parsec, "serve", "--addr", f"127.0.0.1:{self.port}", *args]
        super().__init__(argv, cwd=cwd, env=env or parsec_env())
        self.wait_for(" tokens connect --sub alice")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def banner(self) -> list[str]:
        """The banner's lines: from ``parsec listening on`` to the ``tokens`` line."""
        lines = self.output
        first = next(i for i, line in enumerate(lines) if line.startswith("parsec listening on"))
        last = next(i for i, line in enumerate(lines) if " tokens connect --sub alice" in line)
        return lines[first : last + 1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
