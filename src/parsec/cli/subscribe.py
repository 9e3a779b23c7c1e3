"""``parsec subscribe``: print a channel's publications as NDJSON, over the client protocol.

Each publication is one line on stdout, flushed at once:
``{"channel": …, "offset": …, "epoch": …, "data": …}`` (``epoch`` only for channels with
a stream position). Status goes to stderr: ``subscribed to CHANNEL …`` once the
subscription is active. Exit codes: 0 on Ctrl-C, 1 on a connection failure, error
reply, disconnect or server unsubscribe (code and reason printed), 2 on bad flags.
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
    Client,
    ClientConnectError,
    ClientDisconnected,
    ClientException,
    ClientProtocolError,
    ClientUnsubscribed,
    PublicationDict,
)
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
    token = token or mint_connection_token(config, state_dir, sub)
    try:
        run_async(_stream(Client(url, token), channel, sub_token, recover))
    except KeyboardInterrupt:
        pass
    except ClientConnectError as e:
        fail(str(e))
    except ClientProtocolError as e:
        fail(f"error {e.code}: {e.message}")
    except ClientDisconnected as e:
        fail(f"disconnected: {e.code} {e.reason}".rstrip())
    except ClientUnsubscribed as e:
        fail(f"unsubscribed from {e.channel}: {e.code} {e.reason}".rstrip())
    except TimeoutError:
        fail(f"no reply from {url} in time")
    except ClientException as e:
        fail(str(e))


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


async def _stream(
    client: Client, channel: str, sub_token: str | None, recover: StreamPosition | None
) -> None:
    try:
        connected = await client.connect()
        epochs = {name: result.epoch for name, result in connected.subs.items()}
        result = await client.subscribe(channel, token=sub_token, recover_since=recover)
        epochs[channel] = result.epoch
        position = f" (epoch {result.epoch}, offset {result.offset})" if result.epoch else ""
        typer.echo(f"subscribed to {channel}{position}", err=True)
        if recover is not None and not result.recovered:
            typer.echo("warning: some publications since --since-offset are lost", err=True)
        for publication in result.publications:
            _emit(channel, publication, result.epoch)
        async for name, publication in client.publications():
            _emit(name, publication, epochs.get(name, ""))
    finally:
        await client.aclose()


def _emit(channel: str, publication: PublicationDict, epoch: str) -> None:
    line: dict[str, Any] = {"channel": channel, "offset": publication.get("offset", 0)}
    if epoch:
        line["epoch"] = epoch
    line["data"] = publication.get("data")
    typer.echo(msgspec.json.encode(line).decode())
