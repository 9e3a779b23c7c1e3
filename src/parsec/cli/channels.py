"""``parsec channels``: manage channels on a running server through its management API.

``list`` shows the channels the token may manage, ``open`` opens (or reopens) a public
channel, ``create`` creates a private channel and prints its one-shot access and refresh
tokens, ``get`` shows one channel and ``delete`` deletes one. Every command needs a
management token (``--token`` / ``PARSEC_TOKEN``); ``--json`` prints the descriptor envelope.
Exit codes: 1 for a server-side error (its ``PARSEC_*`` code is printed) or an unreachable
server, 2 for bad flags, a bad verb or a malformed pattern.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer

from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    DenyPatterns,
    DenyVerbs,
    JsonFlag,
    ScopePatterns,
    ServerUrl,
    Token,
    build_scopes,
    emit,
    fail,
    format_duration,
    format_unix,
    management,
    print_fields,
    print_table,
    ttl_seconds,
    verb_option,
)
from parsec.client.management import ChannelSummary

__all__ = ["app"]

app = typer.Typer(
    name="channels",
    help="Manage channels on a running server (needs a management token).",
    no_args_is_help=True,
)

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="Channel name, e.g. public:app.lobby or private:app.user.42."
    ),
]


@app.command("list")
def list_channels(
    server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """List the channels the token may manage, open and closed."""
    with management(server, token) as client:
        channels = client.list_channels()
    payload = {"channels": [msgspec.to_builtins(channel) for channel in channels]}
    emit(as_json, "parsec.channels.list", payload, lambda: _print_channels(channels))


@app.command("open")
def open_public(
    name: Name,
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help='Idle time before the channel closes, e.g. "30m". Default: the server\'s (30m).',
            show_default=False,
        ),
    ] = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Open public channel NAME, or reopen it when closed."""
    seconds = ttl_seconds(ttl)
    with management(server, token) as client:
        channel = client.open_public(name, seconds)
    _emit_channel(as_json, "parsec.channel.open", channel)


@app.command("create")
def create_private(
    name: Name,
    subject: Annotated[
        str,
        typer.Option(
            "--subject",
            "-s",
            metavar="USER",
            help="Who the tokens are for (their sub claim), e.g. a user id.",
            show_default=False,
        ),
    ],
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help='Idle time before the channel is deleted, at most 1h, e.g. "15m". '
            "Default: the server's (15m).",
            show_default=False,
        ),
    ] = None,
    scope: ScopePatterns = None,
    verb: Annotated[list[str] | None, verb_option("subscribe")] = None,
    deny_scope: DenyPatterns = None,
    deny_verb: DenyVerbs = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Create private channel NAME and print its access and refresh tokens (shown once)."""
    if not subject.strip():
        fail("--subject must not be empty", EXIT_USAGE)
    seconds = ttl_seconds(ttl)
    scopes = build_scopes(
        scope or [], verb or [], deny_scope or [], deny_verb or [], default_verb="subscribe"
    )
    with management(server, token) as client:
        credentials = client.create_private(name, subject, seconds, scopes)
    emit(
        as_json,
        "parsec.channel.credentials",
        msgspec.to_builtins(credentials),
        lambda: print_fields(
            [
                ("name", credentials.name),
                ("access_token", credentials.access_token),
                ("access_expires", format_unix(credentials.access_expires_unix)),
                ("refresh_token", credentials.refresh_token),
                ("refresh_expires", format_unix(credentials.refresh_expires_unix)),
            ]
        ),
    )


@app.command("get")
def get(
    name: Name, server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Show channel NAME."""
    with management(server, token) as client:
        channel = client.get_channel(name)
    _emit_channel(as_json, "parsec.channel.get", channel)


@app.command("delete")
def delete(
    name: Name, server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Delete channel NAME; its subscribers are unsubscribed and the name can be reused."""
    with management(server, token) as client:
        client.delete_channel(name)
    emit(
        as_json, "parsec.channel.deleted", {"channel": name}, lambda: typer.echo(f"deleted {name}")
    )


def _emit_channel(as_json: bool, kind: str, channel: ChannelSummary) -> None:
    emit(
        as_json,
        kind,
        {"channel": msgspec.to_builtins(channel)},
        lambda: print_fields(
            [
                ("name", channel.name),
                ("state", channel.state),
                ("ttl", format_duration(channel.ttl_seconds)),
                ("created_at", channel.created_at),
                ("last_active", channel.last_active),
            ]
        ),
    )


def _print_channels(channels: list[ChannelSummary]) -> None:
    if not channels:
        typer.echo("no channels")
        return
    print_table(
        ("NAME", "STATE", "TTL", "CREATED", "LAST ACTIVE"),
        [
            (c.name, c.state, format_duration(c.ttl_seconds), c.created_at, c.last_active)
            for c in channels
        ],
    )
