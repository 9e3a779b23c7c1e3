"""The local keyring of the commands that mint tokens or read keys without a server.

A token minted from a keyring the server does not use is refused by that server, so
these commands never create a keyring by accident: a state directory without
``keyring.json`` exits 2 saying where it looked and how to point at the server's state
directory, unless ``--create`` asks for a new keyring. (``parsec serve`` creates its
own on first start; ``parsec keys import`` creates one from the imported document.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parsec.auth.keyring import FILE_NAME, KeyRing, KeyRingError
from parsec.cli._common import EXIT_USAGE, fail

__all__ = ["CREATE_HINT", "Create", "local_keyring"]

Create = Annotated[
    bool,
    typer.Option(
        "--create",
        help="Start a new keyring when the state directory has none. Its tokens are "
        "accepted only by a server that uses this state directory.",
    ),
]
CREATE_HINT = "pass --create to start a new keyring there"


def local_keyring(
    state_dir: Path, *, create: bool = False, otherwise: str = CREATE_HINT
) -> KeyRing:
    """The keyring in ``state_dir``, created only with ``create``.

    Exits 2 when there is none, naming the absolute path it looked at, how to point at
    the server's state directory, and ``otherwise`` (another way out); exits 1 when the
    keyring cannot be read or used."""
    path = (state_dir / FILE_NAME).absolute()
    if not create and not path.exists():
        hint = "point at the state directory of the server with --state-dir DIR or PARSEC_STATE_DIR"
        fail(
            f"there is no keyring at {path}: {hint} (`parsec serve` prints it at start)"
            + (f", or {otherwise}" if otherwise else ""),
            EXIT_USAGE,
        )
    try:
        return KeyRing.open(state_dir)
    except KeyRingError as exc:
        fail(f"{exc.code}: {exc}")
