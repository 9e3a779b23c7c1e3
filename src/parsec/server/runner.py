"""uvicorn's server, as :func:`parsec.server.serving.serve` drives it: imported only
when serving, so ``import parsec`` does not load uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

__all__ = ["ReadyServer"]


class ReadyServer(uvicorn.Server):
    """uvicorn's server, telling its caller once it accepts connections (``ready``) and
    exiting, as on SIGTERM, once ``stop`` returns True (looked at every tick, 0.1 s)."""

    def __init__(
        self,
        config: uvicorn.Config,
        ready: Callable[[], None] | None,
        *,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(config)
        self._ready = ready
        self._stop = stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready is not None and self.started:
            self._ready()

    async def on_tick(self, counter: int) -> bool:
        if self._stop():
            self.should_exit = True
        return await super().on_tick(counter)
