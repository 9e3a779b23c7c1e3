"""``parsec config``: write a commented sample configuration, or check a file.

``init [PATH]`` writes the sample (:mod:`parsec.cli.config_sample`: every section with
its defaults, a comment per key, freshly generated secrets) to ``PATH`` (default
``parsec.toml``) with mode 0600, since it holds secrets; it refuses to replace an existing
file unless ``--force``; ``-`` prints it to stdout instead. ``parsec serve --config PATH``
accepts the file unchanged.

``check FILE`` loads ``FILE`` as ``parsec serve --config FILE`` would (the ``PARSEC_*``
environment included) without starting anything. Exit codes: 0 valid; 2 a bad file (the
message names the key), an existing file without ``--force``, or a path that cannot be
written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final

import typer

from parsec.cli._common import EXIT_USAGE, fail, load_config
from parsec.cli.config_sample import sample_config

__all__ = ["DEFAULT_PATH", "app", "write_private"]

DEFAULT_PATH: Final = Path("parsec.toml")

app = typer.Typer(
    name="config",
    help="Configuration files: write a commented sample, or check one.",
    no_args_is_help=True,
)


@app.command("init")
def init(
    path: Annotated[
        str,
        typer.Argument(metavar="[PATH]", help="Where to write it; - prints it to stdout."),
    ] = str(DEFAULT_PATH),
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented sample configuration with fresh secrets (mode 0600)."""
    text = sample_config()
    if path == "-":
        typer.echo(text, nl=False)
        return
    target = Path(path)
    try:
        write_private(target, text, replace=force)
    except FileExistsError:
        fail(f"{target} exists; pass --force to replace it", EXIT_USAGE)
    except OSError as e:
        fail(f"cannot write {target}: {e.strerror or e}", EXIT_USAGE)
    typer.echo(
        f"wrote {target} (mode 0600: it holds secrets); start with: parsec serve --config {target}",
        err=True,
    )


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The TOML file to check.")],
) -> None:
    """Check a configuration file as `parsec serve --config FILE` would load it."""
    load_config(path, {})
    typer.echo(f"{path}: ok", err=True)


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (0600, whatever
    the umask). Without ``replace`` an existing file raises ``FileExistsError`` and is
    left untouched; with it, the file is truncated and its mode set to 0600 too."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)
