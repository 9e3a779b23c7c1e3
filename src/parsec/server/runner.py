"""uvicorn's server, as :meth:`parsec.Parsec.run` drives it: imported only when
serving, so ``import parsec`` does not load uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

__all__ = ["ReadyServer"]


class ReadyServer(uvicorn.Server):
    """uvicorn's server, telling its caller once it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready is not None and self.started:
            self._ready()
