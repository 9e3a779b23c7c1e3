"""The ``parsec`` command line: ``serve``, ``tokens``, ``publish``, ``subscribe``.

Exit codes: 0 success, 1 a run-time failure, 2 bad input (flags, data or configuration).
"""

from __future__ import annotations

import typer

from parsec.cli import publish, serve, subscribe, tokens

__all__ = ["app", "main"]

app = typer.Typer(
    name="parsec",
    help="Parsec: a realtime messaging server speaking the Centrifugo protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("serve")(serve.serve)
app.add_typer(tokens.app, name="tokens")
app.command("publish")(publish.publish)
app.command("subscribe")(subscribe.subscribe)


def main() -> None:
    """Entry point of the ``parsec`` script and ``python -m parsec``."""
    app(prog_name="parsec")
