"""``parsec tokens``: mint connection and subscription tokens from the state dir's keyring.

Each command prints only the token on stdout, so ``TOKEN=$(parsec tokens connect …)``
works. Tokens are signed with the keyring's active key, which ``parsec serve`` with the
same state directory verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from parsec.auth.keyring import KeyRing, KeyRingError
from parsec.auth.tokens import TokenIssuer
from parsec.cli._common import EXIT_USAGE, fail, load_config, state_dir_of
from parsec.config import ConfigError, parse_duration

__all__ = ["app", "issuer_for", "mint_connection_token"]

app = typer.Typer(
    name="tokens",
    help="Mint connection and subscription tokens from the state directory's keyring.",
    no_args_is_help=True,
)

Sub = Annotated[str, typer.Option("--sub", metavar="USER", help="User ID (the token's sub claim).")]
Ttl = Annotated[
    str,
    typer.Option(
        "--ttl",
        metavar="DURATION",
        help='Lifetime: "1h", "30m", "90s" or seconds; 0 = never expires.',
    ),
]
Info = Annotated[
    str | None,
    typer.Option("--info", metavar="JSON", help="JSON attached as the token's info claim."),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Keyring directory. Default: the config's auth.state_dir, $PARSEC_STATE_DIR, "
        "else .parsec (what `parsec serve` uses).",
    ),
]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="FILE", help="TOML config file (env PARSEC_CONFIG)."),
]


@app.command("connect")
def connect(
    sub: Sub,
    ttl: Ttl = "1h",
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", metavar="CHANNEL", help="Server-side subscription (repeatable)."),
    ] = None,
    info: Info = None,
    state_dir: StateDir = None,
    config: Config = None,
) -> None:
    """Print a connection token for --sub."""
    issuer = issuer_for(config, state_dir)
    token = issuer.connection_token(
        _user(sub), ttl=_ttl(ttl), channels=tuple(channel or ()), info=_info(info)
    )
    typer.echo(token)


@app.command("subscription")
def subscription(
    sub: Sub,
    channel: Annotated[
        str, typer.Option("--channel", metavar="CHANNEL", help="The channel the token admits.")
    ],
    ttl: Ttl = "1h",
    info: Info = None,
    state_dir: StateDir = None,
    config: Config = None,
) -> None:
    """Print a subscription token for --sub to --channel."""
    if not channel:
        fail("--channel must not be empty", EXIT_USAGE)
    issuer = issuer_for(config, state_dir)
    typer.echo(issuer.subscription_token(_user(sub), channel, ttl=_ttl(ttl), info=_info(info)))


def issuer_for(config: Path | None, state_dir: Path | None) -> TokenIssuer:
    """A TokenIssuer over the keyring of the state directory that flags, environment and
    config select; exits 2 on a bad configuration and 1 on an unusable keyring."""
    options = load_config(config, {"auth.state_dir": state_dir})
    try:
        return TokenIssuer(KeyRing.open(state_dir_of(options)))
    except KeyRingError as e:
        fail(str(e))


def mint_connection_token(config: Path | None, state_dir: Path | None, sub: str) -> str:
    """A one-hour connection token for ``sub``, as ``parsec tokens connect`` mints it."""
    return issuer_for(config, state_dir).connection_token(_user(sub), ttl=3600.0)


def _user(sub: str) -> str:
    if not sub.strip():
        fail("--sub must not be empty", EXIT_USAGE)
    return sub


def _ttl(text: str) -> float | None:
    try:
        seconds = parse_duration(text, "--ttl")
    except ConfigError as e:
        fail(str(e), EXIT_USAGE)
    return seconds or None


def _info(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        fail(f"--info is not valid JSON: {e}", EXIT_USAGE)
