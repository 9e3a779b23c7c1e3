"""``parsec publish``: publish JSON into a channel through a running server.

With an API key (``--api-key`` / ``PARSEC_API_KEY``) it sends ``POST {server}/api/publish``
(the Centrifugo server API) with the ``X-API-Key`` header. Without one, but with a
management token (``--token`` / ``PARSEC_TOKEN``, such as the operator token ``parsec
serve`` writes to ``<state dir>/operator.token``, or the stored login of ``parsec login
oidc``), it calls ParsecService ``Publish``,
which takes the managed channels (``public:…``, ``private:…``) and needs the ``publish``
verb on the channel; a channel of another namespace needs the API key. With neither it
tries the server API without a key (a server with ``[api] insecure = true`` accepts
that).

Either way it prints the result as one JSON line: ``{"offset": …, "epoch": …}`` when the
channel keeps history, else ``{}``. Exit codes: 2 when the data is missing or not JSON
(or a token is to publish into another namespace), 1 when the server is unreachable or
answers with an error (its code is printed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import typer

from parsec.channels.names import VISIBILITIES
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    Token,
    fail,
    has_stored_login,
    management,
)

__all__ = ["publish"]

Server = Annotated[
    str,
    typer.Option("--server", envvar="PARSEC_SERVER", metavar="URL", help="Server base URL."),
]


def publish(
    channel: Annotated[str, typer.Argument(metavar="CHANNEL", help="Channel to publish into.")],
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
    server: Server = DEFAULT_SERVER,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="PARSEC_API_KEY",
            metavar="KEY",
            help="Server API key: publish through /api/publish (the Centrifugo server API).",
        ),
    ] = None,
    token: Token = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait.")
    ] = 10.0,
) -> None:
    """Publish JSON from --data, --file or stdin into CHANNEL.

    With --api-key through the server API; else with --token, or the login of `parsec
    login oidc` (a bearer with the publish verb on CHANNEL, a public: or private:
    channel), through the management API.
    """
    if not channel:
        fail("the channel must not be empty", EXIT_USAGE)
    payload = _parse(_read_data(data, file))
    if not api_key and (token or has_stored_login()):
        if channel.partition(":")[0] not in VISIBILITIES:
            fail(
                f"{channel} is not a public: or private: channel, the only ones a management "
                "token publishes into; publish through the server API with --api-key",
                EXIT_USAGE,
            )
        with management(server, token, timeout=timeout) as client:
            ack = client.publish(channel, payload)
        position = {"offset": ack.offset, "epoch": ack.epoch} if ack.offset or ack.epoch else {}
        typer.echo(msgspec.json.encode(position).decode())
        return
    url = f"{server.rstrip('/')}/api/publish"
    headers = {"X-API-Key": api_key} if api_key else {}
    body = msgspec.json.encode({"channel": channel, "data": payload})
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        fail(f"cannot reach the server at {server}: {e or type(e).__name__}")
    typer.echo(msgspec.json.encode(_result(response)).decode())


def _read_data(data: str | None, file: Path | None) -> str:
    if data is not None and file is not None:
        fail("pass either --data or --file, not both", EXIT_USAGE)
    if data is not None:
        return data
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read --file {file}: {e}", EXIT_USAGE)
    if sys.stdin.isatty():
        fail("no data: pass --data, --file, or pipe JSON into stdin", EXIT_USAGE)
    return sys.stdin.read()


def _parse(text: str) -> Any:
    if not text.strip():
        fail("the data is empty; it must be JSON", EXIT_USAGE)
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        fail(f"the data is not valid JSON: {e}", EXIT_USAGE)


def _result(response: httpx.Response) -> Any:
    """The ``result`` of a successful API reply; anything else exits 1 with a message."""
    if response.status_code in (401, 403):
        fail(
            f"the server rejected the API key (HTTP {response.status_code}); pass --api-key "
            "(or set PARSEC_API_KEY), or a management token with --token (or PARSEC_TOKEN)"
        )
    if response.status_code != 200:
        fail(f"HTTP {response.status_code} from {response.url}: {response.text[:200]}")
    try:
        reply = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        fail(f"the server's reply is not JSON: {response.text[:200]!r}")
    if not isinstance(reply, dict):
        fail(f"unexpected reply from the server: {response.text[:200]}")
    error = reply.get("error")
    if isinstance(error, dict):
        fail(f"publish failed: error {error.get('code')}: {error.get('message', '')}")
    return reply.get("result") or {}
