"""The ``parsec`` command line: ``serve``, ``tokens``, ``publish``, ``subscribe``, and the
management commands ``channels``, ``keys``, ``manifest``, ``publish-or-sink`` and ``dlq``.

Exit codes: 0 success, 1 a run-time failure, 2 bad input (flags, data or configuration).
"""

from __future__ import annotations

from typing import Annotated

import typer

from parsec import __version__
from parsec.cli import (
    channels,
    dlq,
    keys,
    manifest,
    publish,
    publish_or_sink,
    serve,
    subscribe,
    tokens,
)

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
