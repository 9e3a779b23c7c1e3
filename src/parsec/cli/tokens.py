"""``parsec tokens``: mint tokens from the state dir's keyring, and manage Parsec's tokens.

``connect`` and ``subscription`` mint Centrifugo connection and subscription tokens
locally. ``mgmt`` mints a management token: through the server's IssueMgmt (with an
operator ``--token``), or locally from ``--state-dir``'s keyring with no server. These
three print only the token on stdout, so ``TOKEN=$(parsec tokens connect …)`` works
(``mgmt`` says when it expires on stderr). Locally minted tokens are signed with the
keyring's active key, which ``parsec serve`` with the same state directory verifies, and
carry the ``aud`` / ``iss`` its config's ``token_audience`` / ``token_issuer`` require
(pass the server's ``--config``). A state directory without a keyring exits 2 saying
where it looked, unless ``--create`` starts one (see ``parsec.cli._keyring``).

``refresh`` exchanges a private channel's refresh token for new tokens (no management
token needed) and prints them; ``revoke`` refuses one token by its id, ``revoke-user``
every token a user holds now. Exit codes: 1 for a server-side error (its ``PARSEC_*``
code is printed), an unreachable server or an unusable keyring, 2 for bad flags, a bad
configuration or a missing keyring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import jwt
import msgspec
import typer

from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.scopes import Scope
from parsec.auth.tokens import TokenIssuer
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
    format_unix,
    load_config,
    management,
    print_fields,
    state_dir_of,
    ttl_seconds,
    verb_option,
)
from parsec.cli._keyring import CREATE_HINT, Create, local_keyring
from parsec.client.management import MgmtToken
from parsec.config import ConfigError, parse_duration
from parsec.errors import ParsecError

__all__ = ["app", "issuer_for", "mint_connection_token"]

app = typer.Typer(
    name="tokens",
    help="Mint tokens from the state directory's keyring; refresh, mint and revoke "
    "Parsec tokens through a server.",
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
    create: Create = False,
) -> None:
    """Print a connection token for --sub."""
    user, lifetime, extra = _user(sub), _ttl(ttl), _info(info)
    issuer = issuer_for(config, state_dir, create=create)
    typer.echo(
        issuer.connection_token(user, ttl=lifetime, channels=tuple(channel or ()), info=extra)
    )


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
    create: Create = False,
) -> None:
    """Print a subscription token for --sub to --channel."""
    if not channel:
        fail("--channel must not be empty", EXIT_USAGE)
    user, lifetime, extra = _user(sub), _ttl(ttl), _info(info)
    issuer = issuer_for(config, state_dir, create=create)
    typer.echo(issuer.subscription_token(user, channel, ttl=lifetime, info=extra))


@app.command("refresh")
def refresh(
    refresh_token: Annotated[
        str, typer.Argument(metavar="REFRESH_TOKEN", help="The refresh token to redeem.")
    ],
    server: ServerUrl = DEFAULT_SERVER,
    as_json: JsonFlag = False,
) -> None:
    """Exchange REFRESH_TOKEN for a new access token and the next refresh token.

    A refresh token is redeemed once: the old one is spent, and presenting it again
    revokes every token of its family.
    """
    with management(server, None, needs_token=False) as client:
        tokens = client.refresh_token(refresh_token)
    emit(
        as_json,
        "parsec.token.refreshed",
        msgspec.to_builtins(tokens),
        lambda: print_fields(
            [
                ("access_token", tokens.access_token),
                ("access_expires", format_unix(tokens.access_expires_unix)),
                ("refresh_token", tokens.refresh_token),
                ("refresh_expires", format_unix(tokens.refresh_expires_unix)),
                ("rotated", "yes" if tokens.rotated else "no"),
            ]
        ),
    )


@app.command("mgmt")
def mgmt(
    subject: Annotated[
        str, typer.Option("--subject", "-s", metavar="NAME", help="The token's subject.")
    ] = "operator",
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl", metavar="DURATION", help="Lifetime, clamped to 1h-168h (e.g. 24h, 72h)."
        ),
    ] = "24h",
    scope: ScopePatterns = None,
    verb: Annotated[list[str] | None, verb_option("manage")] = None,
    deny_scope: DenyPatterns = None,
    deny_verb: DenyVerbs = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Mint locally with DIR's keyring instead of asking --server.",
            show_default=False,
        ),
    ] = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="With --state-dir: start a new keyring there when it has none.",
        ),
    ] = False,
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a management token. Without --scope it may do everything (an operator token);
    with --scope it may do only what the scopes grant."""
    if not subject.strip():
        fail("--subject must not be empty", EXIT_USAGE)
    if create and state_dir is None:
        fail("--create needs --state-dir (it starts a keyring there)", EXIT_USAGE)
    seconds = ttl_seconds(ttl)
    scopes = build_scopes(
        scope or [], verb or [], deny_scope or [], deny_verb or [], default_verb="manage"
    )
    if state_dir is not None:
        issued = _mint_mgmt(local_keyring(state_dir, create=create), subject, seconds, scopes)
    else:
        with management(server, token) as client:
            issued = client.issue_mgmt(subject, seconds, scopes or None)
    emit(as_json, "parsec.token.mgmt", msgspec.to_builtins(issued), lambda: _print_mgmt(issued))


@app.command("revoke")
def revoke(
    token_id: Annotated[
        str, typer.Argument(metavar="TOKEN_ID", help="The token's id (its jti claim).")
    ],
    user: Annotated[
        str, typer.Option("--user", "-u", metavar="USER", help="The token's user, for the record.")
    ] = "",
    reason: Annotated[
        str, typer.Option("--reason", "-r", metavar="TEXT", help="Why, for the record.")
    ] = "",
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Refuse the token whose id is TOKEN_ID from now on."""
    with management(server, token) as client:
        client.revoke_token(token_id, user, reason)
    emit(
        as_json,
        "parsec.token.revoked",
        {"token_id": token_id, "user_id": user, "reason": reason},
        lambda: typer.echo(f"revoked token {token_id}"),
    )


@app.command("revoke-user")
def revoke_user(
    user: Annotated[str, typer.Argument(metavar="USER", help="The user (sub claim).")],
    reason: Annotated[
        str, typer.Option("--reason", "-r", metavar="TEXT", help="Why, for the record.")
    ] = "",
    server: ServerUrl = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonFlag = False,
) -> None:
    """Refuse every token USER holds now; tokens issued later work."""
    with management(server, token) as client:
        client.revoke_user(user, reason)
    emit(
        as_json,
        "parsec.token.user_revoked",
        {"user_id": user, "reason": reason},
        lambda: typer.echo(f"revoked every token of {user} issued until now"),
    )


def _mint_mgmt(ring: KeyRing, subject: str, ttl: int | None, scopes: list[Scope]) -> MgmtToken:
    """A management token signed by the active key of ``ring``."""
    try:
        issued = ParsecTokens(ring).issue_mgmt(subject, ttl=ttl, scopes=scopes or None)
    except ParsecError as exc:
        fail(f"{exc.code}: {exc.message}")
    kid = str(jwt.get_unverified_header(issued.token).get("kid", ""))
    return MgmtToken(issued.token, issued.claims.exp, kid)


def _print_mgmt(issued: MgmtToken) -> None:
    typer.echo(issued.mgmt_token)
    typer.echo(
        f"expires {format_unix(issued.expires_unix)}, signed by key {issued.signed_by_key_id}",
        err=True,
    )


def issuer_for(
    config: Path | None,
    state_dir: Path | None,
    *,
    create: bool = False,
    otherwise: str = CREATE_HINT,
) -> TokenIssuer:
    """A TokenIssuer over the keyring of the state directory that flags, environment and
    config select, minting the ``aud`` and ``iss`` the config's ``token_audience`` and
    ``token_issuer`` require. Exits 2 on a bad configuration or a state directory
    without a keyring (unless ``create``; ``otherwise`` is the other way out the message
    offers), 1 on an unusable keyring."""
    options = load_config(config, {"auth.state_dir": state_dir})
    ring = local_keyring(state_dir_of(options), create=create, otherwise=otherwise)
    auth = options.auth
    return TokenIssuer(ring, audience=auth.token_audience, issuer=auth.token_issuer)


def mint_connection_token(config: Path | None, state_dir: Path | None, sub: str) -> str:
    """A one-hour connection token for ``sub``, as ``parsec tokens connect`` mints it
    (never creating a keyring: the message offers ``--token`` instead)."""
    user = _user(sub)
    issuer = issuer_for(config, state_dir, otherwise="pass a connection token with --token")
    return issuer.connection_token(user, ttl=3600.0)


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
