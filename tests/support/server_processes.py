"""A server process of a test's own (redis-server, nats-server, parsec serve) on a free
port.

``stop`` and ``start`` again keep the port, as a production restart would. Everything
the process writes (stdout and stderr) is kept in ``output``. Tests that need one fail,
never skip, when the binary is missing.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from parsec.testing import free_port

__all__ = ["ServerProcess"]

START_WAIT_SECONDS = 10.0


class ServerProcess(abc.ABC):
    """Runs ``argv`` (built by the subclass for ``self.port``) and waits for
    ``ready_line`` in its output before ``start`` returns."""

    name = "server"
    ready_line = b""
    stop_signal = signal.SIGTERM
    start_wait = START_WAIT_SECONDS

    def __init__(self) -> None:
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.output = bytearray()
        """What the process wrote, across restarts."""

    @abc.abstractmethod
    def argv(self) -> Sequence[str]:
        """The command line that serves on ``self.port``."""

    async def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        if self._process is not None:
            raise RuntimeError(f"the {self.name} is already running")
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert process.stdout is not None
        seen = b""
        async with asyncio.timeout(self.start_wait):
            while self.ready_line not in seen:
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.name} exited before it was ready:\n{seen!r}")
                seen += line
        self.output += seen
        self._drain = asyncio.create_task(_read_to_end(process.stdout, self.output))

    async def stop(self) -> None:
        """Stop the server with ``stop_signal`` and wait until it has exited.
        Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.stop_signal)
        await process.wait()
        if self._drain is not None:
            await self._drain


async def _read_to_end(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into += chunk
