"""What every command shares: exit codes, error output, configuration and the event loop.

Exit codes: 0 success, 1 a failure at run time (server unreachable, error reply, lost
connection), 2 bad input (flags, data, configuration). Errors go to stderr as one line
``parsec: error: …`` and never as a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import typer

from parsec.config import ConfigError, load_options
from parsec.options import Options

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_STATE_DIR",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "fail",
    "load_config",
    "run_async",
    "state_dir_of",
]

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_STATE_DIR: Final = Path(".parsec")
"""The state directory the CLI uses when neither flag, environment nor file sets one."""
DEFAULT_SERVER: Final = "http://127.0.0.1:8000"

_T = TypeVar("_T")


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``parsec: error: message`` on stderr and exit with ``code``."""
    typer.echo(f"parsec: error: {message}", err=True)
    raise typer.Exit(code)


def load_config(config: Path | None, overrides: Mapping[str, object]) -> Options:
    """Options from ``config`` (else ``$PARSEC_CONFIG``), ``PARSEC_*`` and flag overrides;
    a bad configuration exits 2 with a message naming the key."""
    try:
        return load_options(config, overrides=overrides)
    except ConfigError as e:
        fail(f"bad configuration: {e}", EXIT_USAGE)


def state_dir_of(options: Options) -> Path:
    """The configured state directory, else ``.parsec``."""
    return options.auth.state_dir or DEFAULT_STATE_DIR


def run_async(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` to completion on uvloop when it is installed, else on asyncio's loop.

    Ctrl-C cancels ``main`` (its cleanup runs) and then raises ``KeyboardInterrupt``.
    """
    factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
