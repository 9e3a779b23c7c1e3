"""``parsec keys``: rotate a running server's signing keys, and move keyrings between hosts.

``list``, ``generate``, ``promote``, ``retire`` and ``reload`` call the server's management
API with an operator token. Rotation is ``generate`` (the key joins verify-only), ``promote``
(it signs from now on; the old key keeps verifying), then ``retire`` of the old key once its
tokens have expired.

``export`` and ``import`` work on a keyring file directly (``--state-dir``), with no server:
``export`` prints the keyring document, every secret included, and ``import`` merges such a
document into the local keyring (creating it when the directory has none), its active key
becoming the active key. ``export`` from a directory without a keyring exits 2 naming where
it looked. Exit codes: 1 for a server-side or keyring error (its ``PARSEC_*`` code is
printed), 2 for bad flags or input.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import msgspec
import typer

from parsec.auth.keyring import FILE_NAME, KeyRing, KeyRingError
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    Token,
    emit,
    fail,
    management,
    print_fields,
    print_table,
)
from parsec.cli._keyring import local_keyring
from parsec.client.management import KeyList, KeySummary

__all__ = ["Alg", "app"]

app = typer.Typer(
    name="keys",
    help="Rotate a server's signing keys; export and import keyring files.",
    no_args_is_help=True,
)


class Alg(StrEnum):
    """The algorithms ``keys generate`` offers, as typed on the command line."""

    HS256 = "hs256"
    RS256 = "rs256"
    ES256 = "es256"
    ES384 = "es384"
    EDDSA = "eddsa"


_WIRE_ALG: Final = {
    Alg.HS256: "HS256",
    Alg.RS256: "RS256",
    Alg.ES256: "ES256",
    Alg.ES384: "ES384",
    Alg.EDDSA: "EdDSA",
}

Kid = Annotated[str, typer.Argument(metavar="KID", help="Key id, e.g. k-0123456789ab.")]
StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        envvar="PARSEC_STATE_DIR",
        help="Directory holding keyring.json (env PARSEC_STATE_DIR).",
        show_default=False,
    ),
]


@app.command("list")
def list_keys(
    server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """List the server's keys: active, verify-only and retired."""
    with management(server, token) as client:
        ring = client.list_keys()
    emit(as_json, "parsec.keys.list", msgspec.to_builtins(ring), lambda: _print_keys(ring))


@app.command("generate")
def generate(
    alg: Annotated[
        Alg, typer.Option("--alg", case_sensitive=False, help="Signing algorithm.")
    ] = Alg.HS256,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a key; it verifies at once and signs once promoted."""
    with management(server, token) as client:
        key = client.generate_key(_WIRE_ALG[alg])
    emit(as_json, "parsec.key.generated", msgspec.to_builtins(key), lambda: _print_key(key))


@app.command("promote")
def promote(
    kid: Kid, server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Make KID the signing key; the previous one keeps verifying."""
    with management(server, token) as client:
        client.promote_key(kid)
    emit(
        as_json,
        "parsec.key.promoted",
        {"id": kid},
        lambda: typer.echo(f"promoted {kid}: it signs new tokens; the previous key verifies"),
    )


@app.command("retire")
def retire(
    kid: Kid, server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Retire KID: tokens it signed are refused from now on."""
    with management(server, token) as client:
        client.retire_key(kid)
    emit(
        as_json,
        "parsec.key.retired",
        {"id": kid},
        lambda: typer.echo(f"retired {kid}: tokens it signed are refused"),
    )


@app.command("reload")
def reload(
    server: ServerUrl = DEFAULT_SERVER, token: Token = None, as_json: JsonFlag = False
) -> None:
    """Make the server re-read its keyring file now (as SIGHUP does)."""
    with management(server, token) as client:
        client.reload_keys()
    emit(as_json, "parsec.keys.reloaded", {"ok": True}, lambda: typer.echo("keyring reloaded"))


@app.command("export")
def export(
    state_dir: StateDir,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write the document to FILE (mode 0600) instead of stdout.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the keyring document of --state-dir, secrets included."""
    document = local_keyring(state_dir, otherwise="").snapshot_json()
    if out is None:
        typer.echo(document, nl=False)
        return
    try:
        _write_private(out, document)
    except OSError as exc:
        fail(f"cannot write --out {out}: {exc.strerror or exc}")


@app.command("import")
def import_(
    state_dir: StateDir,
    source: Annotated[
        Path | None,
        typer.Option(
            "--in",
            "-i",
            metavar="FILE",
            help="Read the document from FILE instead of stdin.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Take the document's key where a key id matches but the key differs."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Merge a keyring document into the keyring of --state-dir."""
    data = _read_document(source)
    try:
        if (state_dir / FILE_NAME).exists():
            ring = local_keyring(state_dir)
            imported = ring.import_json(data, force=force)
        else:  # a new state dir takes the document as its whole ring
            ring = KeyRing.adopt(state_dir, data)
            imported = [key.id for key in ring.keys()]
    except KeyRingError as exc:
        fail(f"{exc.code}: {exc}")
    active = ring.active.id
    emit(
        as_json,
        "parsec.keys.imported",
        {"active_key_id": active, "keys": len(imported)},
        lambda: typer.echo(
            f"imported {len(imported)} keys into {ring.path}; the active key is {active}"
        ),
    )


def _read_document(source: Path | None) -> bytes:
    if source is not None:
        try:
            data = source.read_bytes()
        except OSError as exc:
            fail(f"cannot read --in {source}: {exc.strerror or exc}", EXIT_USAGE)
    elif sys.stdin.isatty():
        fail("no keyring document: pass --in FILE or pipe one into stdin", EXIT_USAGE)
    else:
        data = sys.stdin.buffer.read()
    if not data.strip():
        fail("the keyring document is empty", EXIT_USAGE)
    return data


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, whatever mode it had."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)


def _print_keys(ring: KeyList) -> None:
    print_table(
        ("ID", "ROLE", "ALG", "CREATED", "RETIRED"),
        [(k.id, k.role, k.alg, k.created_at, k.retired_at or "-") for k in ring.keys],
    )


def _print_key(key: KeySummary) -> None:
    print_fields(
        [
            ("id", key.id),
            ("role", key.role),
            ("alg", key.alg),
            ("created_at", key.created_at),
        ]
    )
