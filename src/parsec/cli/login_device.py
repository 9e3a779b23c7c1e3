"""``parsec login`` (no subcommand) and ``parsec logout --server``: log in to a Parsec
server with accounts through its device flow (RFC 8628), so that the accounts commands
(``parsec orgs …``) act as you there.

``parsec login --server URL`` asks the server for a code, prints the URL to open and the
code to check (and opens a browser, unless ``--no-browser`` or there is no display),
waits while you log in there and approve, and stores the user access token it gets
in :func:`~parsec.cli._accounts.logins_file` (0600), keyed by server, so several
servers can be logged in at once. ``parsec logout --server URL`` forgets that server's
login; ``parsec logout`` alone keeps forgetting the login of ``parsec login oidc``.

Exit codes: 1 when the login did not happen (denied, expired, server unreachable or
without accounts), 2 for bad flags.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from typing import Annotated, Final

import typer

from parsec.cli import login as oidc_login
from parsec.cli._accounts import logins_file
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    emit,
    fail,
    format_unix,
    print_fields,
)
from parsec.client import user_logins
from parsec.client.credentials import CredentialsError
from parsec.client.device_login import DeviceCode, DeviceLogin, DeviceLoginError
from parsec.client.user_logins import ServerLogin
from parsec.descriptor import rfc3339

__all__ = ["login", "logout"]

KIND: Final = "parsec.login"


def login(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option(
            "--server",
            envvar="PARSEC_SERVER",
            metavar="URL",
            help="The Parsec server to log in to (its [accounts] base URL).",
        ),
    ] = DEFAULT_SERVER,
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Only print the URL to open; never open a browser."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Log in to a Parsec server with accounts (a code to approve in a browser); the
    accounts commands then act as you there. `parsec login oidc` logs in at an OpenID
    provider instead, for the management commands."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        client = DeviceLogin(server)
    except ValueError as exc:
        fail(f"--server: {exc}", EXIT_USAGE)
    try:
        with client:
            device = client.start()
            _show(device, open_browser=not no_browser and _has_display())
            token = client.wait(device)
    except DeviceLoginError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("the login was interrupted")
    path = logins_file()
    stored = ServerLogin(
        server=user_logins.server_key(server),
        access_token=token.access_token,
        expires_at=token.expires_at,
    )
    try:
        user_logins.remember(path, stored)
    except CredentialsError as exc:
        fail(str(exc))
    payload = {
        "server": stored.server,
        "expires_at": rfc3339(stored.expires_at),
        "credentials": str(path),
    }
    emit(
        as_json,
        KIND,
        payload,
        lambda: print_fields(
            [
                ("logged in to", stored.server),
                ("expires", format_unix(stored.expires_at)),
                ("saved to", str(path)),
            ]
        ),
    )


def logout(
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Forget the login of `parsec login` at this server. Without it: forget "
            "the login of `parsec login oidc`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Forget a login: the one of `parsec login` at --server, or without --server the
    one of `parsec login oidc`."""
    if server is None:
        oidc_login.logout()
        return
    path = logins_file()
    try:
        forgotten = user_logins.forget(path, server)
    except CredentialsError as exc:
        fail(str(exc))
    key = user_logins.server_key(server)
    typer.echo(f"logged out of {key}" if forgotten else f"not logged in to {key}")


def _show(device: DeviceCode, *, open_browser: bool) -> None:
    _say(f"To log in, open {device.verification_uri_complete}")
    _say(f"and check that it shows the code {device.user_code}")
    if open_browser:
        try:
            opened = webbrowser.open(device.verification_uri_complete)
        except webbrowser.Error:
            opened = False
        if not opened:
            _say("(no browser could be opened: open the URL yourself)")
    _say("Waiting for the login to be approved…")


def _has_display() -> bool:
    """Whether a browser opened here could be seen: a terminal, and a desktop."""
    if not sys.stderr.isatty():
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _say(line: str) -> None:
    typer.echo(line, err=True)
