"""What every command shares: exit codes, error output, configuration, the event loop and
the management commands' options, client and output.

Exit codes: 0 success, 1 a failure at run time (server unreachable, error reply, lost
connection), 2 bad input (flags, data, configuration). Errors go to stderr as one line
``parsec: error: …`` and never as a traceback; a management error reads
``parsec: error: PARSEC_CODE: message``.

Management commands print readable lines or a table by default, and with ``--json`` the
descriptor envelope ``{format_version, kind, generated_at, payload}`` as indented JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar, overload

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from parsec.auth.scopes import VERBS, Scope
from parsec.client import credentials, oidc_login
from parsec.client.credentials import CredentialsError
from parsec.client.management import (
    DEFAULT_TIMEOUT,
    ManagementClient,
    ManagementError,
    ManagementTransportError,
)
from parsec.config import ConfigError, load_options, parse_duration
from parsec.descriptor import envelope, rfc3339
from parsec.errors import ParsecError
from parsec.options import Options

__all__ = [
    "CREDENTIALS_ENV",
    "DEFAULT_SERVER",
    "DEFAULT_STATE_DIR",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "DenyPatterns",
    "DenyVerbs",
    "JsonFlag",
    "ScopePatterns",
    "ServerUrl",
    "Token",
    "build_scopes",
    "credentials_file",
    "emit",
    "fail",
    "format_duration",
    "format_unix",
    "has_stored_login",
    "load_config",
    "management",
    "print_fields",
    "print_table",
    "run_async",
    "state_dir_of",
    "ttl_seconds",
    "verb_option",
]

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_STATE_DIR: Final = Path(".parsec")
"""The state directory the CLI uses when neither flag, environment nor file sets one."""
DEFAULT_SERVER: Final = "http://127.0.0.1:8000"
CREDENTIALS_ENV: Final = "PARSEC_CREDENTIALS"
"""Names the credentials file of ``parsec login oidc`` instead of the user's config dir."""

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


# -- management commands ----------------------------------------------------------------------

ServerUrl = Annotated[
    str,
    typer.Option("--server", envvar="PARSEC_SERVER", metavar="URL", help="Server base URL."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PARSEC_TOKEN",
        metavar="TOKEN",
        help="Management token (`parsec serve` writes an operator token to "
        "<state dir>/operator.token at start; `parsec tokens mgmt` mints more). "
        "Default: the login of `parsec login oidc`, if any.",
        show_default=False,
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print the descriptor envelope as JSON instead of text."),
]

_PIPE_WIDTH: Final = 200
"""Columns of a table written to a pipe or file, where wrapping only hurts ``grep``."""


@contextlib.contextmanager
def management(
    server: str, token: str | None, *, needs_token: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[ManagementClient]:
    """A management client for the block (each call waits up to ``timeout`` seconds);
    errors of the block become exits.

    Where ``needs_token`` and no token is given, the ID token of ``parsec login oidc``
    is the bearer (refreshed first when it expires within 30 s); without either, with a
    login that cannot be refreshed, or with a malformed ``--server``, it exits 2 before
    any request. A ManagementError in the block exits 1 printing
    ``PARSEC_CODE: message``; an unreachable or non-Parsec server exits 1 saying so.
    """
    if needs_token and not token:
        token = _stored_token()
    try:
        client = ManagementClient(server, token, timeout=timeout)
    except ValueError as exc:
        fail(f"--server: {exc}", EXIT_USAGE)
    try:
        with client:
            yield client
    except ManagementError as exc:
        fail(f"{exc.parsec_code}: {exc.message}")
    except ManagementTransportError as exc:
        fail(str(exc))


def credentials_file() -> Path:
    """Where ``parsec login oidc`` keeps its login: ``$PARSEC_CREDENTIALS``, else
    ``credentials.json`` in the user's config directory (``$XDG_CONFIG_HOME/parsec`` or
    ``~/.config/parsec`` on Linux)."""
    named = os.environ.get(CREDENTIALS_ENV)
    if named:
        return Path(named)
    return Path(typer.get_app_dir("parsec")) / credentials.FILE_NAME


def has_stored_login() -> bool:
    """Whether there is a credentials file (valid or not) for ``management`` to use."""
    return credentials_file().exists()


def _stored_token() -> str:
    """The stored login's ID token, refreshed (and saved) when it expires soon."""
    path = credentials_file()
    try:
        login = credentials.load(path)
    except CredentialsError as exc:
        fail(f"{exc}; run `parsec login oidc` again, or pass --token", EXIT_USAGE)
    if login is None:
        fail(
            "no management token: pass --token or set PARSEC_TOKEN, or log in with "
            "`parsec login oidc` (`parsec serve` writes an operator token to "
            "<state dir>/operator.token; `parsec tokens mgmt --state-dir DIR` mints one)",
            EXIT_USAGE,
        )
    if not login.expiring():
        return login.id_token
    try:
        renewed = oidc_login.refresh(login)
    except oidc_login.ProviderError as exc:
        with contextlib.suppress(CredentialsError):
            # Another command may have refreshed (and rotated the refresh token) meanwhile.
            current = credentials.load(path)
            if current is not None and current != login and not current.expiring():
                return current.id_token
        fail(
            f"your login expired (the provider said {exc}): run "
            f"`parsec login oidc --issuer {login.issuer}`",
            EXIT_USAGE,
        )
    except oidc_login.LoginError as exc:
        fail(f"cannot renew your login: {exc}")
    try:
        credentials.save(path, renewed)
    except CredentialsError as exc:
        fail(str(exc))
    return renewed.id_token


def emit(as_json: bool, kind: str, payload: Mapping[str, object], text: Callable[[], None]) -> None:
    """Print the ``kind`` envelope of ``payload`` when ``as_json``, else run ``text``."""
    if as_json:
        typer.echo(json.dumps(envelope(kind, payload), indent=2))
    else:
        text()


def print_fields(fields: Sequence[tuple[str, object]]) -> None:
    """One ``name  value`` line per field, values aligned in one column."""
    width = max((len(name) for name, _ in fields), default=0)
    for name, value in fields:
        typer.echo(f"{name:<{width}}  {value}")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain table on stdout; cells are shown as they are (never read as rich markup)
    and never truncated."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


@overload
def ttl_seconds(text: str, flag: str = ...) -> int: ...
@overload
def ttl_seconds(text: str | None, flag: str = ...) -> int | None: ...
def ttl_seconds(text: str | None, flag: str = "--ttl") -> int | None:
    """Whole seconds in duration ``text`` (``"30m"``, ``"90s"``, ``"3600"``), or None for
    None; exits 2 unless it is at least one whole second."""
    if text is None:
        return None
    try:
        seconds = parse_duration(text, flag)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    if seconds < 1 or not seconds.is_integer():
        fail(f"{flag} must be a whole number of seconds, at least 1s; got {text!r}", EXIT_USAGE)
    return int(seconds)


def format_duration(seconds: int) -> str:
    """``5400`` as ``"1h30m"``, ``90`` as ``"1m30s"``, ``0`` as ``"0s"``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def format_unix(seconds: int) -> str:
    """Unix ``seconds`` as ``"2026-01-01T00:00:00Z (unix 1767225600)"``."""
    return f"{rfc3339(seconds)} (unix {seconds})"


def verb_option(default: str) -> Any:
    """The ``--verb`` option, granting ``default`` when no verb is given."""
    return typer.Option(
        "--verb",
        metavar="VERB",
        help=f"Verb the --scope patterns grant (repeatable): {', '.join(VERBS)}. "
        f"Default: {default}.",
        show_default=False,
    )


ScopePatterns = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        metavar="PATTERN",
        help="Channel pattern to grant (repeatable), e.g. private:app.user.42.*",
        show_default=False,
    ),
]
DenyPatterns = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-scope",
        metavar="PATTERN",
        help="Channel pattern to deny (repeatable); deny wins over --scope.",
        show_default=False,
    ),
]
DenyVerbs = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-verb",
        metavar="VERB",
        help="Verb the --deny-scope patterns deny (repeatable). Default: the granted verbs.",
        show_default=False,
    ),
]


def build_scopes(
    allow: Sequence[str],
    verbs: Sequence[str],
    deny: Sequence[str],
    deny_verbs: Sequence[str],
    *,
    default_verb: str,
) -> list[Scope]:
    """The scopes of ``--scope/--verb/--deny-scope/--deny-verb``, validated locally.

    The verbs (default ``default_verb``) apply to every ``--scope``; the deny verbs
    (default: the same verbs) to every ``--deny-scope``. Exits 2 for ``--verb`` without
    any pattern, ``--deny-verb`` without ``--deny-scope``, an unknown verb or a malformed
    pattern.
    """
    if verbs and not allow and not deny:
        fail("--verb needs at least one --scope", EXIT_USAGE)
    if deny_verbs and not deny:
        fail("--deny-verb needs at least one --deny-scope", EXIT_USAGE)
    granted = _verbs(verbs, "--verb") or (default_verb,)
    denied = _verbs(deny_verbs, "--deny-verb") or granted
    scopes = [Scope(pattern, granted) for pattern in allow]
    scopes += [Scope(pattern, denied, deny=True) for pattern in deny]
    for scope in scopes:
        try:
            scope.validate()
        except ParsecError as exc:
            flag = "--deny-scope" if scope.deny else "--scope"
            fail(f"{flag}: {exc.message}", EXIT_USAGE)
    return scopes


def _verbs(verbs: Sequence[str], flag: str) -> tuple[str, ...]:
    for verb in verbs:
        if verb not in VERBS:
            fail(f"{flag} {verb!r} is not a verb (expected one of: {', '.join(VERBS)})", EXIT_USAGE)
    return tuple(dict.fromkeys(verbs))
