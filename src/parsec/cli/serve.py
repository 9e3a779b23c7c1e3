"""``parsec serve``: run a Parsec server until SIGINT or SIGTERM.

Configuration precedence: flags > ``PARSEC_*`` environment > TOML file > defaults. The
CLI keeps keys in ``.parsec`` unless a state directory is configured, so ``parsec tokens``
run from the same directory mints tokens this server accepts.

Once it accepts connections it prints a banner to stderr, with a fresh bootstrap
management token (subject ``operator``, 24 h, every permission) on every start, for
``parsec channels|keys|tokens … --token`` (or ``PARSEC_TOKEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Final

import typer

from parsec._backends import BrokerUnreachable, check_reachable
from parsec.auth.keyring import KeyRingError
from parsec.cli._common import EXIT_USAGE, fail, load_config, run_async, state_dir_of
from parsec.cli.workers import run_workers, worker_index
from parsec.descriptor import rfc3339
from parsec.errors import ParsecError
from parsec.options import Options
from parsec.server.listen import ListenError, listen

if TYPE_CHECKING:
    from parsec import Parsec

__all__ = ["ADDR_HINT", "BOOTSTRAP_SUBJECT", "LogLevel", "banner", "serve"]

BOOTSTRAP_SUBJECT: Final = "operator"
"""The subject of the management token ``serve`` prints at start."""
ADDR_HINT: Final = (
    "choose another address with --addr HOST:PORT (env PARSEC_ADDR, config [server] addr)"
)
"""How to listen elsewhere: the end of the error for an address it cannot listen on."""


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", metavar="FILE", help="TOML config file (env PARSEC_CONFIG)."
        ),
    ] = None,
    addr: Annotated[
        str | None,
        typer.Option(
            "--addr",
            "-a",
            metavar="HOST:PORT",
            help="Where to listen (env PARSEC_ADDR; default 127.0.0.1:8000).",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Keyring directory (env PARSEC_STATE_DIR). Default: .parsec in the current "
            "directory, the one `parsec tokens` uses.",
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            metavar="URL",
            help="Shared state: memory:// (default) or a Redis URL such as "
            "redis://127.0.0.1:6379/0, shared by every node (env PARSEC_BROKER_URL).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", metavar="KEY", help="Server API key for /api (env PARSEC_API_KEY)."
        ),
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-origin",
            metavar="ORIGIN",
            help="Browser origin allowed to open a WebSocket (repeatable; globs such as "
            "https://*.example.com, or * for any; env PARSEC_ALLOWED_ORIGINS, "
            "comma-separated). Default: the server's own host only.",
            show_default=False,
        ),
    ] = None,
    allow_anonymous: Annotated[
        bool | None,
        typer.Option(
            "--allow-anonymous/--no-allow-anonymous",
            help="Accept connections without a token (env PARSEC_ALLOW_ANONYMOUS).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Serve the port with N processes (SO_REUSEPORT); needs a shared broker "
            "(--broker redis://…) so that they act as one server.",
        ),
    ] = 1,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Logging level.")] = (
        LogLevel.INFO
    ),
) -> None:
    """Serve the client protocol at /connection/websocket and the server API at /api."""
    options = load_config(
        config,
        {
            "server.addr": addr,
            "server.allowed_origins": allowed_origin or None,
            "auth.state_dir": state_dir,
            "api.key": api_key,
            "broker.url": broker,
            "auth.allow_anonymous": allow_anonymous,
        },
    )
    options.auth.state_dir = state_dir_of(options)
    if workers > 1:
        if options.broker.url in ("", "memory://"):
            fail(
                "--workers needs a shared broker: set --broker redis://… (or [broker] url)",
                EXIT_USAGE,
            )
        with _start_errors(options):  # checked once here, not once per worker
            _check_listen(options)
            try:
                run_async(check_reachable(options.broker.url))
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
        raise typer.Exit(run_workers(workers, sys.argv[2:]))
    worker = worker_index()
    if worker is None:  # before anything starts and logs (a worker's siblings share the port)
        with _start_errors(options):
            _check_listen(options)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with _start_errors(options), contextlib.suppress(KeyboardInterrupt):
        run_async(_serve(options, worker))


@contextlib.contextmanager
def _start_errors(options: Options) -> Iterator[None]:
    """Whatever stops the server from starting becomes one ``parsec: error:`` line: exit
    2 for what the operator must fix (the address, the broker URL or its reachability),
    1 for the rest."""
    try:
        yield
    except ListenError as e:
        fail(f"{e}; {ADDR_HINT}", EXIT_USAGE)
    except BrokerUnreachable as e:
        fail(str(e), EXIT_USAGE)
    except KeyRingError as e:
        if e.code == "PARSEC_BROKER_NOT_READY":  # the broker went away after the check
            fail(f"{e}; check the broker (--broker, PARSEC_BROKER_URL or [broker] url)", EXIT_USAGE)
        fail(str(e))
    except ParsecError as e:  # a malformed broker URL, found before anything starts
        fail(f"bad configuration: broker.url: {e.message}", EXIT_USAGE)
    except OSError as e:
        fail(f"cannot serve on {options.server.addr}: {e.strerror or e}")


def _check_listen(options: Options) -> None:
    """Raise ListenError when something listens on the address already (bound without
    SO_REUSEPORT, so that a listener of any kind, even another ``--workers`` server,
    is found)."""
    for sock in listen(options.server.host, options.server.port):
        sock.close()


async def _serve(options: Options, worker: int | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then close Parsec fully before returning.

    uvicorn handles the signals while it serves and re-raises them when it returns; the
    handlers installed here receive those re-raised signals (and any that arrive while
    Parsec starts or closes) so that they stop the server instead of killing the process
    midway through its cleanup.
    """
    from parsec import Parsec  # the whole server stack loads only for `serve`
    from parsec.server.tuning import tune_gc

    await check_reachable(options.broker.url)
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        async with Parsec(options) as parsec:

            def ready() -> None:
                tune_gc()
                if not worker:  # one banner per serve, from worker 0 when there are several
                    _print_banner(options, parsec)

            serving = asyncio.create_task(parsec.run(ready=ready, reuse_port=worker is not None))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            serving.cancel()  # no-op once uvicorn returned; else it had not started yet
            with contextlib.suppress(asyncio.CancelledError):
                await serving


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_banner(options: Options, parsec: Parsec) -> None:
    issued = parsec.issue_mgmt(BOOTSTRAP_SUBJECT)
    expires = rfc3339(issued.claims.exp)
    print(
        f"{banner(options)}\n"
        f"  management token ({BOOTSTRAP_SUBJECT}, expires {expires}): {issued.token}",
        file=sys.stderr,
        flush=True,
    )


def banner(options: Options) -> str:
    """What ``serve`` prints once it accepts connections: where, and how to get a token."""
    where = f"{options.server.host}:{options.server.port}"
    state_dir = shlex.quote(str(state_dir_of(options)))
    if options.api.key:
        api = "server API: POST /api/<method> with header X-API-Key"
    elif options.api.insecure:
        api = "server API: POST /api/<method> WITHOUT a key (insecure)"
    else:
        api = "server API: disabled (set [api] key, PARSEC_API_KEY or --api-key)"
    return "\n".join(
        [
            f"parsec listening on http://{where} (websocket ws://{where}/connection/websocket)",
            f"  mint a token: parsec tokens connect --sub USER --state-dir {state_dir}",
            f"  {api}",
        ]
    )
