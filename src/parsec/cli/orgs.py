"""``parsec orgs list|show|create|rename|delete|transfer``: the organisations you belong
to, and the ones you own."""

from __future__ import annotations

from typing import Annotated, Any, Final

import typer

from parsec.cli._accounts import ApiToken, accounts_client
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    emit,
    fail,
    print_fields,
    print_table,
)

__all__ = ["app"]

KIND: Final = "parsec.orgs"

app = typer.Typer(name="orgs", help="Your organisations.", no_args_is_help=True)


@app.command("list")
def list_orgs(
    server: ServerUrl = DEFAULT_SERVER, token: ApiToken = None, as_json: JsonFlag = False
) -> None:
    """List the organisations you belong to, with your role in each."""
    with accounts_client(server, token) as api:
        orgs: list[dict[str, Any]] = api.get("/orgs")
    emit(
        as_json,
        KIND,
        {"orgs": orgs},
        lambda: print_table(
            ["SLUG", "NAME", "ROLE", "PERSONAL"],
            [
                [o["slug"], o["name"], o["role"] or "-", "yes" if o["personal"] else ""]
                for o in orgs
            ],
        ),
    )


@app.command("show")
def show_org(
    slug: Annotated[str, typer.Argument(help="The org's slug.")],
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one organisation."""
    with accounts_client(server, token) as api:
        org: dict[str, Any] = api.get(f"/orgs/{slug}")
    _show(as_json, org)


def _show(as_json: bool, org: dict[str, Any]) -> None:
    emit(
        as_json,
        "parsec.org",
        org,
        lambda: print_fields(
            [
                ("slug", org["slug"]),
                ("name", org["name"]),
                ("role", org["role"] or "-"),
                ("personal", "yes" if org["personal"] else "no"),
            ]
        ),
    )


Slug = Annotated[str, typer.Argument(help="The org's slug.")]


@app.command("create")
def create_org(
    slug: Annotated[
        str,
        typer.Argument(help="2-40 lowercase letters, digits and single hyphens."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Its name (default: the slug).")
    ] = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an organisation; you are its owner."""
    body: dict[str, object] = {"slug": slug}
    if name is not None:
        body["name"] = name
    with accounts_client(server, token) as api:
        org: dict[str, Any] = api.post("/orgs", body)
    _show(as_json, org)


@app.command("rename")
def rename_org(
    slug: Slug,
    name: Annotated[str, typer.Argument(help="The new name.")],
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Rename an organisation (admins and the owner)."""
    with accounts_client(server, token) as api:
        org: dict[str, Any] = api.patch(f"/orgs/{slug}", {"name": name})
    _show(as_json, org)


@app.command("delete")
def delete_org(
    slug: Slug,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete an organisation with its members, invites and keys (the owner; not a
    personal org)."""
    if not yes and not typer.confirm(f"Delete {slug} and everything in it?", err=True):
        fail("not deleted (pass --yes to skip the question)", EXIT_USAGE)
    with accounts_client(server, token) as api:
        api.delete(f"/orgs/{slug}")
    emit(as_json, "parsec.org.deleted", {"slug": slug}, lambda: typer.echo(f"deleted {slug}"))


@app.command("transfer")
def transfer_org(
    slug: Slug,
    username: Annotated[str, typer.Argument(help="A member, who becomes the owner.")],
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Hand an organisation over to one of its members (the owner); you stay, as an
    admin."""
    with accounts_client(server, token) as api:
        api.post(f"/orgs/{slug}/transfer", {"username": username})
    emit(
        as_json,
        "parsec.org.transferred",
        {"slug": slug, "owner": username},
        lambda: typer.echo(f"{username} now owns {slug}; you are an admin"),
    )
