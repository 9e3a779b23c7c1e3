"""``parsec apikeys create|list|revoke``: an organisation's API keys.

``create`` prints the key once (it is stored hashed and never shown again) and warns so
on stderr. ``--expires-in`` takes ``30d``, ``12h``, ``90m`` or seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import typer

from parsec.accounts.access import SCOPES
from parsec.cli._accounts import ApiToken, OrgOption, accounts_client, list_org, org_slug
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    emit,
    fail,
    print_fields,
    ttl_seconds,
)

__all__ = ["app", "expires_in_seconds"]

app = typer.Typer(name="apikeys", help="Your organisation's API keys.", no_args_is_help=True)

_DAYS: Final = re.compile(r"(\d+)d")
WARNING: Final = "Store this key now: it will not be shown again."


def expires_in_seconds(text: str | None) -> int | None:
    """Seconds in ``--expires-in`` (``30d``, ``12h``, ``1h30m``, ``3600``); exits 2 on
    anything else."""
    if text is None:
        return None
    days = _DAYS.fullmatch(text.strip())
    if days is not None:
        seconds = int(days.group(1)) * 86400
        if seconds < 1:
            fail(f"--expires-in must be at least 1s; got {text!r}", EXIT_USAGE)
        return seconds
    return ttl_seconds(text, "--expires-in")


@app.command("create")
def create_key(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A name for the key, e.g. ci or deploy.")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help="A scope the key holds (repeat for several): " + ", ".join(SCOPES) + ".",
            show_default=False,
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            metavar="DURATION",
            help="Expire after this long (30d, 12h, …; at most a year). Default: never.",
            show_default=False,
        ),
    ] = None,
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print it (once: it is never shown again)."""
    seconds = expires_in_seconds(expires_in)
    body: dict[str, object] = {"name": name, "scopes": list(scope or [])}
    if seconds is not None:
        body["expires_in_seconds"] = seconds
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        created: dict[str, Any] = api.post(f"/orgs/{slug}/apikeys", body)
    emit(
        as_json,
        "parsec.apikey.created",
        created,
        lambda: print_fields(
            [
                ("key", created["key"]),
                ("id", created["id"]),
                ("name", created["name"]),
                ("prefix", created["prefix"]),
                ("org", slug),
                ("scopes", " ".join(created["scopes"]) or "-"),
                ("expires", created["expires_at"] or "never"),
            ]
        ),
    )
    typer.echo(WARNING, err=True)


@app.command("list")
def list_keys(
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """List the organisation's API keys (never the keys themselves)."""
    list_org(
        "apikeys",
        org,
        server,
        token,
        as_json,
        ["ID", "NAME", "PREFIX", "SCOPES", "CREATED BY", "EXPIRES", "LAST USED", "REVOKED"],
        lambda k: [
            k["id"],
            k["name"],
            k["prefix"],
            " ".join(k["scopes"]) or "-",
            k["created_by"] or "-",
            k["expires_at"] or "never",
            k["last_used_at"] or "-",
            k["revoked_at"] or "-",
        ],
    )


@app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (apikeys list).")],
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key: it is refused from the next request on."""
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        api.delete(f"/orgs/{slug}/apikeys/{key_id}")
    emit(
        as_json,
        "parsec.apikey.revoked",
        {"org": slug, "id": key_id},
        lambda: typer.echo(f"revoked API key {key_id} of {slug}"),
    )
