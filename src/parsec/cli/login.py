"""``parsec login oidc`` and ``parsec logout``: log in at the organisation's OpenID
provider, so that the management commands send its ID token as their bearer.

``login oidc`` uses the device flow (a code to approve in any browser) by default, or with
``--browser`` the authorization code flow with PKCE on a loopback redirect. The login is
stored in :func:`~parsec.cli._common.credentials_file` (0600) and refreshed by the
management commands when it is about to expire; ``logout`` deletes it. Exit codes: 1 when
the login fails (denied, expired, timed out, provider unreachable or not matching the
issuer), 2 for bad flags.
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from collections.abc import Sequence
from typing import Annotated, Final

import httpx
import typer

from parsec.cli._common import (
    EXIT_USAGE,
    JsonFlag,
    credentials_file,
    emit,
    fail,
    format_duration,
    format_unix,
    print_fields,
    run_async,
    ttl_seconds,
)
from parsec.client import credentials, oidc_login
from parsec.client.credentials import CredentialsError
from parsec.client.oidc_login import (
    DEFAULT_SCOPES,
    HTTP_TIMEOUT,
    LoginError,
    OIDCClient,
    Provider,
    ProviderError,
    Tokens,
)
from parsec.descriptor import rfc3339

__all__ = ["app", "logout"]

KIND: Final = "parsec.login.oidc"

app = typer.Typer(
    name="login",
    help="Log in to manage Parsec servers as yourself.",
    no_args_is_help=True,
)


@app.command("oidc")
def oidc(
    issuer: Annotated[
        str,
        typer.Option(
            "--issuer",
            envvar="PARSEC_OIDC_ISSUER",
            metavar="URL",
            help="The OpenID provider's issuer, exactly as its discovery document spells it, "
            "e.g. https://sso.example.org/realms/acme.",
            show_default=False,
        ),
    ],
    client_id: Annotated[
        str,
        typer.Option(
            "--client-id",
            envvar="PARSEC_OIDC_CLIENT_ID",
            metavar="ID",
            help="The client the CLI is registered as at the provider (the audience the "
            "server expects).",
            show_default=False,
        ),
    ],
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret",
            envvar="PARSEC_OIDC_CLIENT_SECRET",
            metavar="SECRET",
            help="The client's secret, for a confidential client (better in the environment).",
            show_default=False,
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            metavar="SCOPES",
            help="Scopes to ask for, comma-separated or repeated; openid is always asked. "
            f"Default: {','.join(DEFAULT_SCOPES)}.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", metavar="DURATION", help='How long to wait for the login, e.g. "90s".'
        ),
    ] = "5m",
    browser: Annotated[
        bool,
        typer.Option(
            "--browser",
            help="Log in in a browser on this machine (authorization code with PKCE, "
            "redirected to 127.0.0.1) instead of with a device code.",
        ),
    ] = False,
    no_open: Annotated[
        bool,
        typer.Option(
            "--no-open",
            help="With --browser: only print the URL, never open a browser (one is opened "
            "only when stderr is a terminal anyway).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Log in at your organisation's OpenID provider; the management commands then use
    its ID token (refreshed as needed) when no --token is given."""
    seconds = ttl_seconds(timeout, "--timeout")
    scopes = _scopes(scope or [])
    if not issuer.startswith(("https://", "http://")):
        fail(f"--issuer must be an http(s) URL; got {issuer!r}", EXIT_USAGE)
    if not client_id:
        fail("--client-id must not be empty", EXIT_USAGE)
    client = OIDCClient(client_id, client_secret or None)
    open_browser = browser and not no_open and sys.stderr.isatty()
    try:
        provider, tokens = run_async(_login(issuer, client, scopes, seconds, browser, open_browser))
    except ProviderError as exc:
        fail(f"the OpenID provider refused the login: {exc}")
    except LoginError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("the login was interrupted")
    path = credentials_file()
    try:
        credentials.save(path, oidc_login.stored_login(provider, client, tokens))
    except CredentialsError as exc:
        fail(str(exc))
    payload = {
        "issuer": provider.issuer,
        "subject": tokens.subject,
        "username": tokens.username,
        "expires_at": rfc3339(tokens.expires_at),
        "credentials": str(path),
    }

    def text() -> None:
        print_fields(
            [
                ("logged in as", tokens.username),
                ("issuer", provider.issuer),
                ("expires", format_unix(tokens.expires_at)),
                ("saved to", str(path)),
            ]
        )

    emit(as_json, KIND, payload, text)


def logout() -> None:
    """Forget the login of `parsec login oidc` (delete its credentials file)."""
    path = credentials_file()
    try:
        deleted = credentials.delete(path)
    except CredentialsError as exc:
        fail(str(exc))
    typer.echo(f"logged out: deleted {path}" if deleted else f"not logged in (no {path})")


def _scopes(values: Sequence[str]) -> list[str]:
    """The scopes of ``--scope`` values (comma- or space-separated), openid first."""
    named = [part for value in values for part in value.replace(",", " ").split()]
    if values and not named:
        fail("--scope must name at least one scope", EXIT_USAGE)
    return list(dict.fromkeys(["openid", *(named or DEFAULT_SCOPES)]))


async def _login(
    issuer: str,
    client: OIDCClient,
    scopes: Sequence[str],
    seconds: int,
    browser: bool,
    open_browser: bool,
) -> tuple[Provider, Tokens]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        provider = await oidc_login.discover(http, issuer)
        if not browser and provider.device_authorization_endpoint is None:
            raise LoginError(
                f"the OpenID provider {issuer} offers no device flow "
                "(no device_authorization_endpoint): log in with --browser"
            )
        if browser and provider.authorization_endpoint is None:
            raise LoginError(f"the OpenID provider {issuer} has no authorization_endpoint")
        try:
            async with asyncio.timeout(seconds):
                if browser:
                    tokens = await oidc_login.browser_login(
                        http, provider, client, scopes, show=lambda url: _show(url, open_browser)
                    )
                else:
                    tokens = await _device_login(http, provider, client, scopes)
        except TimeoutError:
            raise LoginError(
                f"the login was not completed within {format_duration(seconds)} (--timeout)"
            ) from None
    return provider, tokens


async def _device_login(
    http: httpx.AsyncClient, provider: Provider, client: OIDCClient, scopes: Sequence[str]
) -> Tokens:
    device = await oidc_login.start_device_flow(http, provider, client, scopes)
    if device.verification_uri_complete:
        _say(f"To log in, open {device.verification_uri_complete}")
        _say(f"and check that it shows the code {device.user_code}")
    else:
        _say(f"To log in, open {device.verification_uri}")
        _say(f"and enter the code {device.user_code}")
    _say("Waiting for the login to be approved…")
    return await oidc_login.poll_device_flow(http, provider, client, device)


def _show(url: str, open_browser: bool) -> None:
    _say(f"To log in, open {url}")
    if open_browser:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        if not opened:
            _say("(no browser could be opened: open the URL yourself)")
    _say("Waiting for the browser to come back…")


def _say(line: str) -> None:
    typer.echo(line, err=True)
