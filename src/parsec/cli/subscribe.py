"""``parsec subscribe``: print a channel's publications as NDJSON, over the client protocol.

Each publication is one line on stdout, flushed at once:
``{"channel": …, "offset": …, "epoch": …, "data": …}`` (``epoch`` only for channels with
a stream position). stdout carries nothing else.

Once connected, it stays subscribed as the official SDKs do: when the server restarts
(3001), closes with another reconnect code or the connection is lost, it reconnects
with backoff (0.5 s to 20 s, jittered) and resubscribes with recovery from the last
offset and epoch it printed, so that what was published meanwhile is printed once, in
order, when the server's history still holds it. Status goes to stderr: ``subscribed
to CHANNEL …``, ``reconnecting in N s (cause)``, ``resubscribed to CHANNEL …`` and
whether the missed publications were recovered or may be lost.

Exit codes: 0 on Ctrl-C; 1 when the first connect fails, on an error reply, a terminal
disconnect (3500-3999, 4500-4999) or a server unsubscribe (code and reason printed), or
an expired token it cannot renew (a minted token is minted again); 2 on bad flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import typer

from parsec.cli._common import DEFAULT_SERVER, EXIT_USAGE, fail, run_async
from parsec.cli.publish import Server
from parsec.cli.tokens import mint_connection_token
from parsec.client import (
    ClientException,
    ClientTokenExpired,
    Follower,
    PublicationDict,
    Received,
    Subscribed,
)
from parsec.client.follow import TokenGetter, describe_failure
from parsec.engine.types import StreamPosition

__all__ = ["subscribe", "websocket_url"]

WEBSOCKET_PATH = "/connection/websocket"


def subscribe(
    channel: Annotated[str, typer.Argument(metavar="CHANNEL", help="Channel to subscribe to.")],
    server: Server = DEFAULT_SERVER,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar="PARSEC_CONNECTION_TOKEN",
            help="Connection token (env PARSEC_CONNECTION_TOKEN; PARSEC_TOKEN is the "
            "management token of other commands). Without one, a token for --sub is "
            "minted from the state directory's keyring.",
        ),
    ] = None,
    sub: Annotated[
        str, typer.Option("--sub", metavar="USER", help="User to mint a token for.")
    ] = "cli",
    sub_token: Annotated[
        str | None,
        typer.Option("--sub-token", metavar="TOKEN", help="Subscription token for the channel."),
    ] = None,
    since_offset: Annotated[
        int | None,
        typer.Option(
            "--since-offset",
            min=0,
            metavar="OFFSET",
            help="Recover publications after this offset.",
        ),
    ] = None,
    epoch: Annotated[
        str | None, typer.Option("--epoch", metavar="EPOCH", help="Stream epoch of --since-offset.")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", metavar="DIR", help="Keyring directory (default .parsec)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", metavar="FILE", help="TOML config file.")
    ] = None,
) -> None:
    """Print CHANNEL's publications as NDJSON until Ctrl-C."""
    if not channel:
        fail("the channel must not be empty", EXIT_USAGE)
    if (since_offset is None) != (epoch is None):
        fail("--since-offset and --epoch go together", EXIT_USAGE)
    url = websocket_url(server)
    recover = None if since_offset is None else StreamPosition(since_offset, epoch or "")
    get_token = None if token else _minter(config, state_dir, sub)
    follower = Follower(
        url,
        channel,
        token=token or mint_connection_token(config, state_dir, sub),
        get_token=get_token,
        sub_token=sub_token,
        since=recover,
    )
    try:
        run_async(_stream(follower))
    except KeyboardInterrupt:
        pass
    except ClientTokenExpired as e:
        fail(_expired(e))
    except (ClientException, TimeoutError) as e:
        fail(describe_failure(e, url))


def websocket_url(server: str) -> str:
    """The client-protocol endpoint of ``server``: ``http(s)://host[/prefix]`` becomes
    ``ws(s)://host[/prefix]/connection/websocket``; a ``ws(s)://`` URL with a path is kept."""
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        fail(f"--server must be an http(s):// or ws(s):// URL, got {server!r}", EXIT_USAGE)
    path = parts.path.rstrip("/")
    if parts.scheme in ("http", "https") or not path:
        path += WEBSOCKET_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _minter(config: Path | None, state_dir: Path | None, sub: str) -> TokenGetter:
    """Mints a fresh token when the server says the last one expired (the SDKs'
    getToken)."""

    async def mint() -> str:
        return mint_connection_token(config, state_dir, sub)

    return mint


def _expired(e: ClientTokenExpired) -> str:
    flag = "--token" if e.kind == "connection" else "--sub-token"
    return f"the {e.kind} token has expired ({e.code}: {e.message}); pass a fresh one with {flag}"


async def _stream(follower: Follower) -> None:
    async for event in follower.events():
        if isinstance(event, Received):
            _emit(event.channel, event.publication, event.epoch)
        elif isinstance(event, Subscribed):
            _report(event)
        else:
            _status(f"reconnecting in {event.delay:.1f} s ({event.cause})")


def _report(event: Subscribed) -> None:
    """What a (re)subscribe means for the user: the position, and whether publications
    may have been missed."""
    result, since = event.result, event.since
    position = f" (epoch {result.epoch}, offset {result.offset})" if result.epoch else ""
    verb = "resubscribed" if event.resubscribed else "subscribed"
    _status(f"{verb} to {event.channel}{position}")
    if not event.resubscribed:
        if since is not None and not event.recovered:
            _status("warning: some publications since --since-offset are lost")
    elif since is None:
        _status(
            f"warning: could not recover: {event.channel} keeps no history, so "
            "publications made while disconnected are lost"
        )
    elif event.recovered:
        count = len(result.publications)
        _status(f"recovered {count} publication{'s' * (count != 1)} made while disconnected")
    else:
        _status(f"warning: could not recover publications made while disconnected: {_why(event)}")


def _why(event: Subscribed) -> str:
    since, epoch = event.since, event.result.epoch
    if since is not None and since.epoch and since.epoch != epoch:
        return f"the stream was reset (epoch {since.epoch}, now {epoch}); some may be lost"
    return f"history no longer holds all of them after offset {since.offset if since else 0}"


def _status(line: str) -> None:
    typer.echo(line, err=True)


def _emit(channel: str, publication: PublicationDict, epoch: str) -> None:
    line: dict[str, Any] = {"channel": channel, "offset": publication.get("offset", 0)}
    if epoch:
        line["epoch"] = epoch
    line["data"] = publication.get("data")
    typer.echo(msgspec.json.encode(line).decode())
