"""The ``parsec`` command line: ``serve``, ``tokens``, ``publish``, ``subscribe``, the
management commands ``channels``, ``keys``, ``manifest``, ``publish-or-sink`` and ``dlq``,
``db upgrade|current`` (the accounts database), the accounts commands ``orgs``,
``members``, ``invites``, ``apikeys``, ``audit`` and ``whoami``, ``login`` / ``logout
--server`` (the accounts commands' user token, by the device flow), ``login oidc`` /
``logout`` (the management commands' bearer from an OpenID provider), and ``config
init|check`` (a sample configuration).

Exit codes: 0 success, 1 a run-time failure, 2 bad input (flags, data or configuration).
"""

from __future__ import annotations

from typing import Annotated

import typer

from parsec.cli import (
    apikeys,
    audit,
    channels,
    config,
    db,
    dlq,
    invites,
    keys,
    login,
    login_device,
    manifest,
    members,
    orgs,
    publish,
    publish_or_sink,
    serve,
    subscribe,
    tokens,
    whoami,
)
from parsec.version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="parsec",
    help="Parsec: a realtime messaging server speaking the Centrifugo protocol.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("serve")(serve.serve)
app.add_typer(tokens.app, name="tokens")
app.command("publish")(publish.publish)
app.command("subscribe")(subscribe.subscribe)
app.add_typer(channels.app, name="channels")
app.add_typer(keys.app, name="keys")
app.command("manifest")(manifest.manifest)
app.command("publish-or-sink")(publish_or_sink.publish_or_sink)
app.add_typer(dlq.app, name="dlq")
app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(orgs.app, name="orgs")
login.app.callback(invoke_without_command=True, no_args_is_help=False)(login_device.login)
app.add_typer(members.app, name="members")
app.add_typer(invites.app, name="invites")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(audit.app, name="audit")
app.command("whoami")(whoami.whoami)
app.add_typer(login.app, name="login")
app.command("logout")(login_device.logout)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"parsec {__version__}")
        raise typer.Exit()


@app.callback(context_settings={"help_option_names": ["-h", "--help"]})
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Parsec: a realtime messaging server speaking the Centrifugo protocol."""


def main() -> None:
    """Entry point of the ``parsec`` script and ``python -m parsec``."""
    app(prog_name="parsec")
