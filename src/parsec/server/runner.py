"""uvicorn's server, as :func:`parsec.server.serving.serve` drives it: imported only
when serving, so ``import parsec`` does not load uvicorn."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

__all__ = ["ReadyServer"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a server."""


class ReadyServer(uvicorn.Server):
    """uvicorn's server, telling its caller once it accepts connections (``ready``) and
    exiting, as on SIGTERM, once ``stop`` returns True (looked at every tick, 0.1 s).

    With ``on_signal``, SIGINT and SIGTERM go to ``on_signal(signum)`` while it serves
    instead of uvicorn (which would stop at once and raise the signal again once
    stopped). It is a :class:`parsec.services.drain.Listener`: a drain stops it."""

    def __init__(
        self,
        config: uvicorn.Config,
        ready: Callable[[], None] | None,
        *,
        stop: Callable[[], bool] = lambda: False,
        on_signal: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._ready = ready
        self._stop = stop
        self._on_signal = on_signal

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready is not None and self.started:
            self._ready()

    async def on_tick(self, counter: int) -> bool:
        if self._stop():
            self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        on_signal = self._on_signal
        if on_signal is None or threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            on_signal(signum)

        previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # --- parsec.services.drain.Listener -------------------------------------------

    def stop_accepting(self) -> None:
        for server in self.servers:
            server.close()

    def in_flight(self) -> int:
        return len(self.server_state.tasks)

    def finish(self, *, cut: bool) -> None:
        self.should_exit = True
        if cut:
            self.force_exit = True
            for task in self.server_state.tasks:
                task.cancel()
