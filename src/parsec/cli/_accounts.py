"""What the accounts commands (``orgs``, ``members``, ``invites``, ``apikeys``,
``audit``) share: their options and the ``/api/v1`` client.

The bearer is ``--token`` / ``$PARSEC_API_TOKEN`` (a user access token or an API key),
else the login ``parsec login`` stored for that server. Errors exit 1 printing
``parsec: error: PARSEC_CODE: message``; a missing credential or a bad ``--server``
exits 2 before any request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from parsec.cli._common import EXIT_USAGE, credentials_file, emit, fail, print_table
from parsec.client import user_logins
from parsec.client.accounts import AccountsApiError, AccountsClient, AccountsTransportError
from parsec.client.credentials import CredentialsError

__all__ = [
    "ApiToken",
    "OrgOption",
    "accounts_client",
    "logins_file",
    "org_slug",
    "stored_user_token",
]

ApiToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PARSEC_API_TOKEN",
        metavar="TOKEN",
        help="A user access token (psu_…) or an API key (psk_…). "
        "Default: the login of `parsec login` for --server.",
        show_default=False,
    ),
]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        envvar="PARSEC_ORG",
        metavar="SLUG",
        help="The organisation (default: your personal org, or an API key's own org).",
        show_default=False,
    ),
]


def logins_file() -> Path:
    """Where ``parsec login`` keeps its logins: ``logins.json`` beside the credentials
    file of ``parsec login oidc`` (``$PARSEC_CREDENTIALS``'s directory, else the user's
    config directory)."""
    return credentials_file().parent / user_logins.FILE_NAME


def stored_user_token(server: str) -> str | None:
    """The unexpired user access token ``parsec login`` stored for ``server``, if any;
    a logins file that cannot be read exits 2."""
    try:
        found = user_logins.lookup(logins_file(), server)
    except CredentialsError as exc:
        fail(f"{exc}; run `parsec login --server {server}` again, or pass --token", EXIT_USAGE)
    if found is None or found.expired():
        return None
    return found.access_token


def org_slug(api: AccountsClient, org: str | None) -> str:
    """``org`` when given, else the caller's default org as the server picks it
    (``GET /api/v1/me``: an API key's own org, else the user's personal org, else their
    first by slug); a caller in no org gets the server's 404 (exit 1)."""
    if org:
        return org
    me: dict[str, Any] = api.get("/me")
    slug: str = me["org"]["slug"]
    return slug


@contextlib.contextmanager
def accounts_client(server: str, token: str | None) -> Iterator[AccountsClient]:
    """A client of ``server``'s ``/api/v1`` for the block; its errors become exits."""
    token = token or stored_user_token(server)
    if not token:
        fail(
            f"not logged in to {server}: run `parsec login --server {server}`, or pass "
            "--token (an API key or user access token)",
            EXIT_USAGE,
        )
    try:
        client = AccountsClient(server, token)
    except ValueError as exc:
        fail(f"--server: {exc}", EXIT_USAGE)
    try:
        with client:
            yield client
    except AccountsApiError as exc:
        fail(f"{exc.code}: {exc.message}")
    except AccountsTransportError as exc:
        fail(str(exc))


def list_org(
    kind: str,
    org: str | None,
    server: str,
    token: str | None,
    as_json: bool,
    headers: Sequence[str],
    row: Callable[[dict[str, Any]], list[Any]],
) -> None:
    """``parsec <kind> list``: GET ``/orgs/{slug}/<kind>`` of the org (``--org``, else the
    caller's default) and print it as a table, or as JSON ``{"org", "<kind>": [...]}``."""
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        items: list[dict[str, Any]] = api.get(f"/orgs/{slug}/{kind}")
    emit(
        as_json,
        f"parsec.{kind}.list",
        {"org": slug, kind: items},
        lambda: print_table(list(headers), [row(item) for item in items]),
    )
