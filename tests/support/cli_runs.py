"""Running the ``parsec`` command line in tests: in-process (``invoke``, CliRunner) and
as a real ``python -m parsec`` process (``Proc``, made by the ``spawn`` fixture).

Each test module wraps ``isolate`` and ``processes`` in fixtures of its own (as the
helpers of tests/nats do): ``isolate`` runs a test in a directory of its own with no
``PARSEC_*`` variable set and a config directory of its own; ``processes`` kills the
processes a test started.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import parsec.cli
from parsec.cli import app

__all__ = [
    "SRC",
    "Proc",
    "assert_clean_error",
    "assert_one_line_error",
    "invoke",
    "isolate",
    "processes",
]

SRC = Path(parsec.cli.__file__).resolve().parents[2]
"""The ``src`` directory, put on a child process's PYTHONPATH."""


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test in ``tmp_path`` with no PARSEC_* variables set, and a config directory
    of its own (``XDG_CONFIG_HOME``: no login of ``parsec login oidc`` of the user's)."""
    for name in list(os.environ):
        if name.startswith("PARSEC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.chdir(tmp_path)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; fail the test on any exception other than an exit."""
    result = CliRunner().invoke(app, list(args), input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def assert_clean_error(result: Result, code: int, *words: str) -> None:
    """The command exited with ``code`` and its last stderr line is an error message
    holding ``words``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    message = result.stderr.splitlines()[-1]
    assert message.startswith("parsec: error: "), result.stderr
    for word in words:
        assert word in message


def assert_one_line_error(stderr: str, *words: str) -> str:
    """``stderr`` is exactly one ``parsec: error:`` line holding ``words``; the line."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("parsec: error: "), stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


class Proc:
    """``python -m parsec ARGS`` with its output lines readable as they come."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PARSEC_")}
        environ |= {"PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"} | (env or {})
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "parsec", *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, queue.Queue[str | None]] = {
            "out": queue.Queue(),
            "err": queue.Queue(),
        }
        self.seen: list[str] = []
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        for name, pipe in (("out", self.popen.stdout), ("err", self.popen.stderr)):
            threading.Thread(target=self._pump, args=(pipe, self.lines[name]), daemon=True).start()

    @staticmethod
    def _pump(pipe: Any, into: queue.Queue[str | None]) -> None:
        for line in pipe:
            into.put(line.rstrip("\n"))
        into.put(None)

    def wait_for(self, stream: str, text: str, timeout: float = 30.0) -> str:
        """The first next line of ``stream`` containing ``text``; fails the test when the
        stream ends or nothing matches within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines[stream].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout}s; saw {self.seen}") from None
            if line is None:
                self.lines[stream].put(None)
                raise AssertionError(f"{stream} ended before {text!r}; saw {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the process to exit by itself: its exit code and what it wrote to
        stderr that ``wait_for`` has not read (fails the test when it does not exit
        within ``timeout``)."""
        code = self.popen.wait(timeout=timeout)
        lines: list[str] = []
        while (line := self.lines["err"].get(timeout=timeout)) is not None:
            lines.append(line)
        self.lines["err"].put(None)
        return code, "".join(f"{line}\n" for line in lines)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout=30)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=30)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()


@contextlib.contextmanager
def processes() -> Iterator[Callable[..., Proc]]:
    """``start(*args, cwd=DIR, env={…})`` makes a ``Proc``; each is killed on exit."""
    procs: list[Proc] = []

    def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Proc:
        procs.append(Proc(*args, cwd=cwd, env=env))
        return procs[-1]

    try:
        yield start
    finally:
        for proc in procs:
            proc.close()
