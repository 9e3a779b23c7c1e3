"""``parsec manifest``: what a running server says about itself (``GET /manifest``).

Prints the manifest's fields one per line, or with ``--json`` the ``parsec.manifest``
descriptor envelope exactly as the server sent it. Needs no token. Exit codes: 1 when the
server is unreachable or answers with an error, 2 for a malformed ``--server``.
"""

from __future__ import annotations

import json

import typer

from parsec.cli._common import DEFAULT_SERVER, JsonFlag, ServerUrl, management, print_fields

__all__ = ["manifest"]


def manifest(server: ServerUrl = DEFAULT_SERVER, as_json: JsonFlag = False) -> None:
    """Show the server's manifest: version, surfaces, key rotation, limits and more."""
    with management(server, None, needs_token=False) as client:
        document = client.fetch_manifest()
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    print_fields([(name, _text(value)) for name, value in document["payload"].items()])


def _text(value: object) -> str:
    """Strings as they are; numbers, booleans, lists and objects as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
