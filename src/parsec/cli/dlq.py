"""``parsec dlq``: inspect and work off a running server's dead-letter queue.

``list`` shows dead letters newest first, ``count`` how many a sink holds, ``discard``
removes one and ``replay`` sends one again through its sink (with retries) and waits for
the outcome; the replayed item stays, so ``parsec dlq replay ID && parsec dlq discard ID``
works a letter off. Every command needs an operator management token (``--token`` /
``PARSEC_TOKEN``); ``--json`` prints the descriptor envelope, where a dead letter's
``recipient`` is the recipient's JSON itself (the API carries it base64-encoded).

Exit codes: 1 for a server-side error (its ``PARSEC_*`` code is printed, e.g.
``PARSEC_SINK_DLQ_NOT_FOUND``), an unreachable server, or a replay that failed again
(its new dead letter is printed first); 2 for bad flags.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
import typer

from parsec.cli._common import (
    DEFAULT_SERVER,
    JsonFlag,
    ServerUrl,
    Token,
    emit,
    fail,
    management,
    print_table,
)
from parsec.client.management import DeadLetter

__all__ = ["DELIVERY_TIMEOUT", "Timeout", "app"]

app = typer.Typer(
    name="dlq",
    help="Inspect, replay and discard dead letters (needs an operator management token).",
    no_args_is_help=True,
)

Sink = Annotated[
    str,
    typer.Argument(metavar="SINK", help="Sink name; omit for every sink.", show_default=False),
]
Id = Annotated[str, typer.Argument(metavar="ID", help="Dead letter id, as `dlq list` shows it.")]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout", metavar="SECONDS", min=0.1, help="Seconds to wait for the delivery's outcome."
    ),
]
DELIVERY_TIMEOUT: Final = 120.0
"""How long a command waiting for a delivery waits by default: retries with backoff
(1 s, 2 s, 4 s, 8 s by default) and slow SMTP servers take longer than other calls."""


@app.command("list")
def list_letters(
    sink: Sink = "",
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Most dead letters to show.")
    ] = 50,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """List the dead letters of SINK (or of every sink), newest first."""
    with management(server, token) as client:
        items = client.dlq_list(sink, limit)
    payload = {"items": [_letter(item) for item in items]}
    emit(as_json, "parsec.dlq.list", payload, lambda: _print_letters(items))


@app.command("count")
def count(
    sink: Sink = "",
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Print how many dead letters SINK (or every sink) holds."""
    with management(server, token) as client:
        n = client.dlq_count(sink)
    emit(as_json, "parsec.dlq.count", {"sink": sink, "count": n}, lambda: typer.echo(n))


@app.command("discard")
def discard(
    id: Id, server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Remove dead letter ID for good."""
    with management(server, token) as client:
        client.dlq_discard(id)
    emit(as_json, "parsec.dlq.discarded", {"id": id}, lambda: typer.echo(f"discarded {id}"))


@app.command("replay")
def replay(
    id: Id,
    timeout: Timeout = DELIVERY_TIMEOUT,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Send dead letter ID again through its sink and wait; the letter stays queued."""
    with management(server, token, timeout=timeout) as client:
        outcome = client.dlq_replay(id)
    if as_json or outcome.delivered:
        payload = {"id": id, **msgspec.to_builtins(outcome)}
        text = f"replayed {id}: delivered after {_attempts(outcome.attempts)}"
        emit(as_json, "parsec.dlq.replayed", payload, lambda: typer.echo(text))
    if not outcome.delivered:
        fail(
            f"replay of {id} failed again after {_attempts(outcome.attempts)}: "
            f"{outcome.last_error} (new dead letter {outcome.dlq_id})"
        )


def _letter(item: DeadLetter) -> dict[str, object]:
    """``item`` for the JSON envelope, its recipient as JSON rather than base64."""
    fields: dict[str, object] = msgspec.to_builtins(item)
    fields["recipient"] = _recipient(item)
    return fields


def _recipient(item: DeadLetter) -> object:
    """The recipient's JSON value (None when the server sent none)."""
    if not item.recipient:
        return None
    try:
        return msgspec.json.decode(item.recipient)
    except msgspec.DecodeError:
        return item.recipient.decode("utf-8", "replace")


def _print_letters(items: list[DeadLetter]) -> None:
    if not items:
        typer.echo("no dead letters")
        return
    print_table(
        ("ID", "SINK", "AT", "ATTEMPTS", "RECIPIENT", "SUBJECT", "LAST ERROR"),
        [
            (
                item.id,
                item.sink,
                item.at,
                str(item.attempts),
                item.recipient.decode("utf-8", "replace"),
                item.subject,
                item.last_error,
            )
            for item in items
        ],
    )


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"
