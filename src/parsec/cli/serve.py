"""``parsec serve``: run a Parsec server until SIGINT or SIGTERM.

Configuration precedence: flags > ``PARSEC_*`` environment > TOML file > defaults. The
CLI keeps keys in ``.parsec`` unless a state directory is configured, so ``parsec tokens``
run from the same directory mints tokens this server accepts.

Once it accepts connections it writes a fresh bootstrap management token (subject
``operator``, 24 h, every permission) to ``<state dir>/operator.token`` (mode 0600,
rewritten on every start) for ``parsec channels|keys|tokens|publish … --token`` (or
``PARSEC_TOKEN``), and prints a banner to stderr: where it listens, where the token is,
and commands to paste into another terminal. The token itself is printed only with
``--print-token``, so that it does not end up in the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Final

import typer

from parsec.auth.keyring import KeyRingError
from parsec.auth.oidc import DiscoveryError
from parsec.backends.factory import BrokerUnreachable, check_reachable
from parsec.cli._common import EXIT_USAGE, fail, load_config, run_async, state_dir_of
from parsec.cli.workers import run_workers, worker_index
from parsec.config import ConfigError
from parsec.db.errors import DatabaseError
from parsec.descriptor import rfc3339
from parsec.errors import ParsecError
from parsec.options import Options
from parsec.server.listen import ListenError, listen

if TYPE_CHECKING:
    from parsec import Parsec

__all__ = [
    "ADDR_HINT",
    "BOOTSTRAP_SUBJECT",
    "OPERATOR_TOKEN_FILE",
    "LogFormat",
    "LogLevel",
    "banner",
    "serve",
]

BOOTSTRAP_SUBJECT: Final = "operator"
"""The subject of the management token ``serve`` issues at start."""
OPERATOR_TOKEN_FILE: Final = "operator.token"
"""Where, in the state directory, ``serve`` writes that token (mode 0600)."""
ADDR_HINT: Final = (
    "choose another address with --addr HOST:PORT (env PARSEC_ADDR, config [server] addr)"
)
"""How to listen elsewhere: the end of the error for an address it cannot listen on."""
METRICS_ADDR_HINT: Final = "choose another [observability] metrics_addr (env PARSEC_METRICS_ADDR)"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


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
            help="Shared state: memory:// (default), a Redis URL such as "
            "redis://127.0.0.1:6379/0 or a NATS URL such as nats://127.0.0.1:4222, shared by "
            "every node (env PARSEC_BROKER_URL).",
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
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            help="Logging level (env PARSEC_LOG_LEVEL, [log] level). Default: info.",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="text, or json: one JSON object per line (env PARSEC_LOG_FORMAT, "
            "[log] format). Default: text.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="Where this node runs: labels metrics, logs and the manifest "
            "(env PARSEC_REGION, region).",
            show_default=False,
        ),
    ] = None,
    print_token: Annotated[
        bool,
        typer.Option(
            "--print-token",
            help="Also print the operator token in the banner on stderr (it is always "
            "written to <state dir>/operator.token, readable by its owner only).",
        ),
    ] = False,
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
            "log.level": None if log_level is None else log_level.value,
            "log.format": None if log_format is None else log_format.value,
            "region": region,
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
    from parsec.observability.logs import configure_logging

    configure_logging(options)
    with _start_errors(options), contextlib.suppress(KeyboardInterrupt):
        run_async(_serve(options, worker, Banner(print_token, config)))


@contextlib.contextmanager
def _start_errors(options: Options) -> Iterator[None]:
    """Whatever stops the server from starting becomes one ``parsec: error:`` line: exit
    2 for what the operator must fix (the address, the broker URL or its reachability,
    the OpenID provider of ``[auth.oidc]`` or ``[accounts.oidc]``), 1 for the rest."""
    try:
        yield
    except ConfigError as e:  # found as the server starts (observability.otlp_endpoint)
        fail(f"bad configuration: {e}", EXIT_USAGE)
    except ListenError as e:
        metrics = e.addr == options.observability.metrics_addr
        fail(f"{e}; {METRICS_ADDR_HINT if metrics else ADDR_HINT}", EXIT_USAGE)
    except BrokerUnreachable as e:
        fail(str(e), EXIT_USAGE)
    except DiscoveryError as e:
        fail(f"{e.setting}: the OpenID provider cannot be discovered: {e}", EXIT_USAGE)
    except DatabaseError as e:  # [accounts]: the database, its URL or its schema
        fail(f"{e.code}: {e.message}", e.exit_code)
    except KeyRingError as e:
        if e.code == "PARSEC_BROKER_NOT_READY":  # the broker went away after the check
            fail(f"{e}; check the broker (--broker, PARSEC_BROKER_URL or [broker] url)", EXIT_USAGE)
        fail(str(e))
    except ParsecError as e:
        if e.code == "PARSEC_INVALID_ARGUMENT":  # a malformed broker URL, found first
            fail(f"bad configuration: broker.url: {e.message}", EXIT_USAGE)
        fail(f"{e.code}: {e.message}")  # e.g. a corrupted state file, named in the message
    except OSError as e:
        fail(f"cannot serve on {options.server.addr}: {e.strerror or e}")


def _check_listen(options: Options) -> None:
    """Raise ListenError when something listens on the address already (bound without
    SO_REUSEPORT, so that a listener of any kind, even another ``--workers`` server,
    is found)."""
    for sock in listen(options.server.host, options.server.port):
        sock.close()


async def _serve(options: Options, worker: int | None = None, shown: Banner | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then close Parsec fully before returning.

    While it serves, the first signal drains Parsec (``Parsec.drain``, within
    ``[server] shutdown_timeout``) and a second one exits at once
    (:mod:`parsec.server.serving`); the handlers installed here receive the signals that
    arrive while Parsec starts or closes, so that they stop the server instead of
    killing the process midway through its cleanup.
    """
    from parsec import Parsec  # the whole server stack loads only for `serve`
    from parsec.server.tuning import tune_gc

    await check_reachable(options.broker.url)
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        async with Parsec(options) as parsec:

            def ready() -> None:
                tune_gc()
                if worker is not None:  # the supervisor's workers say when each is up
                    logging.getLogger("parsec.serve").info("worker %d serving", worker)
                if not worker:  # one banner per serve, from worker 0 when there are several
                    _print_banner(options, parsec, shown or Banner())

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


@dataclass(frozen=True, slots=True)
class Banner:
    """What ``serve``'s flags say about the banner: whether it shows the operator token
    itself, and the config file (``--config``) that ``parsec tokens`` needs too."""

    print_token: bool = False
    config: Path | None = None


def _print_banner(options: Options, parsec: Parsec, shown: Banner) -> None:
    """Write a fresh operator token to the state directory, then print the banner."""
    issued = parsec.issue_mgmt(BOOTSTRAP_SUBJECT)
    token_file = _absolute(state_dir_of(options) / OPERATOR_TOKEN_FILE)
    try:
        _write_private(token_file, issued.token)
    except OSError as e:
        written: Path | str = f"cannot write {token_file}: {e.strerror or e}"
    else:
        written = token_file
    if options.log.format == "json":  # one JSON line, as every other line on stderr
        from parsec.observability.logs import log_listening

        log_listening(options, written, rfc3339(issued.claims.exp))
        return
    config = shown.config or (
        Path(os.environ["PARSEC_CONFIG"]) if os.environ.get("PARSEC_CONFIG") else None
    )
    text = banner(
        options,
        command=_parsec_command(),
        token_file=written,
        expires=rfc3339(issued.claims.exp),
        config=config,
    )
    if shown.print_token:
        text += (
            f"\n  management token ({BOOTSTRAP_SUBJECT}, expires "
            f"{rfc3339(issued.claims.exp)}): {issued.token}"
        )
    print(text, file=sys.stderr, flush=True)


def banner(
    options: Options,
    *,
    command: str = "parsec",
    token_file: Path | str | None = None,
    expires: str = "",
    config: Path | None = None,
) -> str:
    """What ``serve`` prints once it accepts connections: where it listens, whether the
    server API is on, where the operator token is, and commands that work as pasted.

    ``command`` is how to run this ``parsec`` (an absolute path); ``token_file`` the file
    holding the operator token that expires at ``expires``, or why it could not be
    written, or None when there is none; ``config`` the config file ``serve`` read.
    """
    where = f"{options.server.host}:{options.server.port}"
    state_dir = _absolute(state_dir_of(options))
    if options.api.key:
        api = "server API: POST /api/<method> with header X-API-Key"
    elif options.api.insecure:
        api = "server API: POST /api/<method> WITHOUT a key (insecure)"
    else:
        api = "server API: disabled (set [api] key, PARSEC_API_KEY or --api-key)"
    lines = [
        f"parsec listening on http://{where} (websocket ws://{where}/connection/websocket)",
        f"  {api}",
    ]
    paste = [
        f"export PARSEC_SERVER=http://{_client_host(options.server.host)}:{options.server.port}"
    ]
    if isinstance(token_file, Path):
        lines.append(f"  operator token (every permission, expires {expires}) in {token_file}")
        paste += [
            f"export PARSEC_TOKEN=$(cat {shlex.quote(str(token_file))})",
            f"{command} channels list",
        ]
    elif token_file is not None:
        lines.append(f"  no operator token: {token_file}")
    mint = f"{command} tokens connect --sub alice"
    if config is not None:
        mint += f" --config {shlex.quote(str(_absolute(config)))}"
    paste.append(f"{mint} --state-dir {shlex.quote(str(state_dir))}")
    lines.append("  in another terminal:")
    lines += [f"    {line}" for line in paste]
    return "\n".join(lines)


def _absolute(path: Path) -> Path:
    """``path`` from the root, ``..`` and ``.`` removed, symbolic links kept."""
    return Path(os.path.abspath(path))


def _client_host(host: str) -> str:
    """The host a client on this machine reaches a server listening on ``host`` at."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host in ("[::]", "::"):
        return "[::1]"
    return host


def _parsec_command() -> str:
    """How to run the ``parsec`` that is running, as a shell command that works from any
    directory: its script's absolute path, else ``python -m parsec`` with this Python."""
    script = Path(sys.argv[0])
    if script.name != "__main__.py" and script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(_absolute(script)))
    beside = Path(sys.executable).with_name("parsec")  # the venv's bin, when it has one
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(_absolute(beside)))
    return shlex.join([str(_absolute(Path(sys.executable))), "-m", "parsec"])


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; the file is readable by its owner
    only from the moment it exists (``mkstemp`` creates it 0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(text + "\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
