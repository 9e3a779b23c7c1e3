"""Private nats-servers in operator mode, for the per-org account tests.

``operator_servers(tmp_path)`` yields ``start(setup)``: a nats-server of the test's own
on a free port, trusting ``setup``'s operator (:func:`parsec.backends.nats.operator.
bootstrap`), with a full resolver whose account JWTs live in a directory of its own.
``server.restart(setup=…, fresh_resolver=…)`` restarts it on the same port with another
operator and/or an empty resolver directory. A missing nats-server binary fails the
test (never skips it).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from nats_helpers import nats_server_binary
from server_processes import ServerProcess

from parsec.backends.nats.operator import OperatorSetup, server_config
from parsec.options import NatsAccountsOptions

__all__ = ["OperatorServer", "StartOperatorServer", "operator_servers", "options_for"]

StartOperatorServer = Callable[[OperatorSetup], Awaitable["OperatorServer"]]


def options_for(setup: OperatorSetup, url: str) -> NatsAccountsOptions:
    """The ``[nats]`` options of ``setup`` on the NATS at ``url``."""
    return NatsAccountsOptions(
        operator_seed=setup.operator_seed,
        operator_jwt=setup.operator_jwt,
        system_account_jwt=setup.system_account_jwt,
        system_account_seed=setup.system_account_seed,
        url=url,
    )


class OperatorServer(ServerProcess):
    """A nats-server trusting ``setup``'s operator; SIGTERM stops it (it has written
    every pushed account JWT to its resolver directory by then)."""

    name = "nats-server (operator mode)"
    ready_line = b"Server is ready"
    stop_signal = signal.SIGTERM

    def __init__(self, setup: OperatorSetup, home: Path) -> None:
        super().__init__()
        self.setup = setup
        self.home = home
        self._resolvers = 1
        self.resolver_dir = home / "jwt-1"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        self.resolver_dir.mkdir(parents=True, exist_ok=True)
        config = self.home / "nats-server.conf"
        config.write_text(server_config(self.setup, self.resolver_dir))
        return [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-c", str(config)]

    async def restart(
        self, *, setup: OperatorSetup | None = None, fresh_resolver: bool = False
    ) -> None:
        """Stop, then start again on the same port: trusting ``setup`` when given, and
        with an empty resolver directory (the server forgets every account) when
        ``fresh_resolver``."""
        await self.stop()
        if setup is not None:
            self.setup = setup
        if fresh_resolver:
            self._resolvers += 1
            self.resolver_dir = self.home / f"jwt-{self._resolvers}"
        await self.start()


@contextlib.asynccontextmanager
async def operator_servers(tmp_path: Path) -> AsyncIterator[StartOperatorServer]:
    """Starts operator-mode nats-servers (``await start(setup)``); stops them on exit."""
    servers: list[OperatorServer] = []

    async def start(setup: OperatorSetup) -> OperatorServer:
        home = tmp_path / f"nats-{len(servers)}"
        home.mkdir(parents=True)
        server = OperatorServer(setup, home)
        servers.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()
