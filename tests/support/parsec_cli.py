"""Real ``parsec`` processes for end-to-end tests of the command line.

``ParsecServe`` is ``parsec serve`` on a free loopback port with a config and a state
directory of its own; ``stop`` and ``start`` again restart it on the same port with the
same state, as an operator's restart would. ``CliProcess`` runs any other ``parsec``
command and collects its stdout and stderr lines as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from server_processes import ServerProcess
from waiting import until

__all__ = ["API_KEY", "CliProcess", "ParsecServe", "parsec_command"]

API_KEY = "test-key"
"""The server API key of every ParsecServe."""
EXIT_WAIT = 30.0


def parsec_command() -> list[str]:
    """The venv's ``parsec`` console script when installed, else ``python -m parsec``."""
    script = Path(sys.executable).with_name("parsec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "parsec"]


class ParsecServe(ServerProcess):
    """``parsec serve`` with ``config`` (TOML; ``[api] key`` is API_KEY) in ``workdir``;
    ``args`` are extra flags."""

    name = "parsec serve"
    ready_line = b"parsec listening on"
    start_wait = 30.0  # a Python server's imports take a while on a busy machine

    def __init__(self, workdir: Path, config: str, *args: str) -> None:
        super().__init__()
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "parsec.toml"
        self.config.write_text(f'[api]\nkey = "{API_KEY}"\n{config}')
        self.args = args

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def argv(self) -> Sequence[str]:
        return [
            *parsec_command(),
            *("serve", "--config", str(self.config), "--addr", f"127.0.0.1:{self.port}"),
            *("--state-dir", str(self.state_dir), *self.args),
        ]

    async def api(self, method: str, body: dict[str, object]) -> dict[str, object]:
        """Call the server API; the reply's ``result``."""
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            response = await http.post(
                f"{self.url}/api/{method}", json=body, headers={"X-API-Key": API_KEY}
            )
        response.raise_for_status()
        reply = response.json()
        assert "error" not in reply, reply
        result: dict[str, object] = reply.get("result", {})
        return result

    def log(self) -> str:
        return self.output.decode(errors="replace")


class CliProcess:
    """A running ``parsec ARGS``; ``out`` and ``err`` are its output lines so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            asyncio.create_task(_collect(process.stdout, self.out)),
            asyncio.create_task(_collect(process.stderr, self.err)),
        ]

    @classmethod
    async def start(cls, *args: str, cwd: Path) -> CliProcess:
        """Start ``parsec ARGS`` in ``cwd``, without the test run's PARSEC_* variables."""
        process = await asyncio.create_subprocess_exec(
            *parsec_command(),
            *args,
            cwd=cwd,
            env={k: v for k, v in os.environ.items() if not k.startswith("PARSEC_")},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Return once ``condition()`` holds; fail with the output when the process
        ends first or ``timeout`` passes."""
        try:
            await until(lambda: condition() or self.process.returncode is not None, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"timed out; {self.transcript()}") from None
        if not condition():
            raise AssertionError(f"exited {self.process.returncode}; {self.transcript()}")

    async def wait_err(self, text: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait for a stderr line containing ``text``."""
        await self.wait_for(lambda: any(text in line for line in self.err), timeout)

    async def wait_out(self, count: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until stdout has ``count`` lines."""
        await self.wait_for(lambda: len(self.out) >= count, timeout)

    async def exit_code(self) -> int:
        """Wait for the process to end by itself; its exit code."""
        async with asyncio.timeout(EXIT_WAIT):
            code = await self.process.wait()
            await asyncio.gather(*self._readers)
        return code

    async def stop(self, sig: int = signal.SIGINT) -> int:
        """Send ``sig``; the exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        return await self.exit_code()

    async def kill(self) -> None:
        """Kill it if it still runs (test cleanup)."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await asyncio.gather(*self._readers)

    def transcript(self) -> str:
        return "stdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace").rstrip("\n"))
