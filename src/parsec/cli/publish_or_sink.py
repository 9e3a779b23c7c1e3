"""``parsec publish-or-sink``: publish to a channel if anyone listens, else use a sink.

Calls the server's ``PublishOrSink``: when CHANNEL has a live subscriber the JSON data
(``--data``, ``--file`` or stdin) is published; otherwise the message (``--subject``,
``--body``, ``--metadata``) goes to ``--recipient`` through ``--sink``, e.g. an email.
By default the command waits for that delivery's outcome; ``--no-wait`` only queues it.
Needs a management token allowed to publish on CHANNEL.

Prints ``published offset N epoch E``, ``sinked: queued …`` or ``sinked: delivered …``
(``--json``: the ``parsec.publish_or_sink`` envelope). Exit codes: 2 for bad flags or
data (not JSON, a recipient that is not JSON, metadata not ``key=value``), 1 for a
server-side error (its ``PARSEC_*`` code is printed), an unreachable server, or a
delivery that failed and was dead-lettered (its dead letter id is printed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    Token,
    emit,
    fail,
    management,
)
from parsec.cli.dlq import DELIVERY_TIMEOUT, Timeout
from parsec.cli.publish import _parse, _read_data
from parsec.client.management import PublishOrSinkAck

__all__ = ["publish_or_sink"]


def publish_or_sink(
    channel: Annotated[str, typer.Argument(metavar="CHANNEL", help="Channel to publish into.")],
    sink: Annotated[
        str,
        typer.Option(
            "--sink", metavar="SINK", help="Sink for when nobody listens.", show_default=False
        ),
    ],
    recipient: Annotated[
        str | None,
        typer.Option(
            "--recipient",
            metavar="JSON",
            help='The sink\'s recipient as JSON, e.g. \'{"address": "ana@example.com"}\'.',
            show_default=False,
        ),
    ] = None,
    subject: Annotated[str, typer.Option("--subject", help="Message subject.")] = "",
    body: Annotated[str, typer.Option("--body", help="Message body.")] = "",
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            metavar="KEY=VALUE",
            help="Message metadata entry (repeatable).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", metavar="JSON", help="JSON to publish.", show_default=False),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", metavar="FILE", help="Read the JSON from a file.", show_default=False
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait for the sink's delivery, or only queue it."),
    ] = True,
    timeout: Timeout = DELIVERY_TIMEOUT,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish JSON into CHANNEL if anyone listens there, else send the message via SINK."""
    if not sink.strip():
        fail("--sink must not be empty", EXIT_USAGE)
    to = _recipient(recipient)
    entries = _metadata(metadata or [])
    payload = _parse(_read_data(data, file))
    with management(server, token, timeout=timeout) as client:
        ack = client.publish_or_sink(
            channel, payload, sink, to, subject=subject, body=body, metadata=entries, wait=wait
        )
    emit(as_json, "parsec.publish_or_sink", msgspec.to_builtins(ack), lambda: _print(ack, sink))
    if ack.sinked and not ack.queued and not ack.delivered:
        fail(
            f"delivery through {sink!r} failed: {ack.last_error} (dead letter {ack.dlq_id}; "
            "`parsec dlq replay` sends it again)"
        )


def _recipient(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        fail(f"--recipient is not valid JSON: {e}", EXIT_USAGE)


def _metadata(entries: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            fail(f"--metadata {entry!r} is not KEY=VALUE", EXIT_USAGE)
        pairs[key] = value
    return pairs


def _print(ack: PublishOrSinkAck, sink: str) -> None:
    if not ack.sinked:
        typer.echo(f"published offset {ack.offset} epoch {ack.epoch}")
    elif ack.queued:
        typer.echo(f"sinked: queued for delivery through {sink}")
    elif ack.delivered:
        typer.echo(f"sinked: delivered through {sink} after {ack.attempts} attempt(s)")
