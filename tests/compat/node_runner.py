"""Run the centrifuge-js scripts of ``tests/compat/js`` with node and read what they saw.

A script prints one JSON object per line (``{"event": ...}``); ``NodeScript.expect``
reads lines until a given event arrives, so a test can act (publish through cent,
write to the script's stdin) at the right moment, and ``NodeScript.finish`` collects
the rest and checks the exit code. Scripts stop themselves after ``PARSEC_JS_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

__all__ = ["JS_DIR", "NodeScript", "require_node", "run_node"]

JS_DIR = Path(__file__).parent / "js"
INSTALL_HINT = "run `npm ci --prefix tests/compat/js` (Node.js >= 20)"
SCRIPT_TIMEOUT_MS = 15000
READ_TIMEOUT = SCRIPT_TIMEOUT_MS / 1000 + 5

Event = dict[str, Any]


def require_node() -> str:
    """The ``node`` executable; fails the test (never skips) when node or the npm
    dependencies are missing, saying how to install them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: install Node.js and {INSTALL_HINT}")
    for package in ("centrifuge", "ws"):
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"tests/compat/js/node_modules/{package} is missing: {INSTALL_HINT}")
    return node


class NodeScript:
    """A running compat script: the events it printed so far and ways to wait for more."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.events: list[Event] = []
        self._process = process
        self._name = name
        self._stderr = bytearray()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        while chunk := await self._process.stderr.read(4096):
            self._stderr += chunk

    def _report(self, problem: str) -> str:
        lines = "\n".join(json.dumps(event) for event in self.events) or "(none)"
        stderr = self._stderr.decode(errors="replace")[-4000:] or "(empty)"
        return f"{self._name}: {problem}\nevents:\n{lines}\nstderr:\n{stderr}"

    async def _read_event(self, within: float) -> Event | None:
        """The next printed event, or None at end of output."""
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), within)
        except TimeoutError:
            raise AssertionError(self._report(f"no output within {within}s")) from None
        if not line:
            return None
        try:
            event: Event = json.loads(line)
        except json.JSONDecodeError:
            event = {"event": "stdout", "text": line.decode(errors="replace").rstrip()}
        self.events.append(event)
        if event["event"] in ("fatal", "timeout"):
            raise AssertionError(self._report(f"script stopped with {event}"))
        return event

    async def expect(
        self,
        name: str,
        matches: Callable[[Event], bool] = lambda event: True,
        within: float = READ_TIMEOUT,
    ) -> Event:
        """Read events until one named ``name`` (for which ``matches`` holds) arrives."""
        while True:
            event = await self._read_event(within)
            if event is None:
                raise AssertionError(self._report(f"ended before a {name!r} event"))
            if event["event"] == name and matches(event):
                return event

    async def send(self, line: str) -> None:
        """Write one line to the script's stdin."""
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def finish(self, within: float = READ_TIMEOUT) -> list[Event]:
        """Read to the end, require exit code 0 and a final ``done``; all events."""
        while await self._read_event(within) is not None:
            pass
        code = await asyncio.wait_for(self._process.wait(), within)
        await self._stderr_task
        if code != 0 or not self.events or self.events[-1]["event"] != "done":
            raise AssertionError(self._report(f"exited with {code} without finishing"))
        return self.events

    def named(self, name: str) -> list[Event]:
        """Every event named ``name`` so far, oldest first."""
        return [event for event in self.events if event["event"] == name]

    async def kill(self) -> None:
        """Stop the script if it still runs and close its pipes."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        if self._process.returncode is None:
            with suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        self._stderr_task.cancel()
        with suppress(asyncio.CancelledError):
            await self._stderr_task


@asynccontextmanager
async def run_node(script: str, env: Mapping[str, str]) -> AsyncIterator[NodeScript]:
    """Run ``node tests/compat/js/<script>`` with ``env`` added to the environment."""
    node = require_node()
    process = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / script),
        cwd=JS_DIR,
        env={**os.environ, "PARSEC_JS_TIMEOUT_MS": str(SCRIPT_TIMEOUT_MS), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    running = NodeScript(process, script)
    try:
        yield running
    finally:
        await running.kill()
