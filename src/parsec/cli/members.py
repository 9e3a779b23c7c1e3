"""``parsec members list|set-role|remove|leave``: the members of an organisation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from parsec.cli._accounts import ApiToken, OrgOption, accounts_client, list_org, org_slug
from parsec.cli._common import DEFAULT_SERVER, JsonFlag, ServerUrl, emit

__all__ = ["app"]

app = typer.Typer(name="members", help="The members of an organisation.", no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="The member's username.")]


@app.command("list")
def list_members(
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """List the members of an organisation with their roles."""
    list_org(
        "members",
        org,
        server,
        token,
        as_json,
        ["USERNAME", "NAME", "ROLE", "JOINED"],
        lambda m: [m["username"], m["name"] or "", m["role"], m["joined_at"]],
    )


@app.command("set-role")
def set_role(
    username: Username,
    role: Annotated[str, typer.Argument(help="admin or member.", metavar="admin|member")],
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a member an admin, or an admin a member (the owner only; the owner changes
    by `parsec orgs transfer`)."""
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        member: dict[str, Any] = api.patch(f"/orgs/{slug}/members/{username}", {"role": role})
    emit(
        as_json,
        "parsec.member",
        {"org": slug, **member},
        lambda: typer.echo(f"{member['username']} is now {member['role']} in {slug}"),
    )


@app.command("remove")
def remove_member(
    username: Username,
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove a member (the owner: anyone else; an admin: plain members)."""
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        api.delete(f"/orgs/{slug}/members/{username}")
    emit(
        as_json,
        "parsec.member.removed",
        {"org": slug, "username": username},
        lambda: typer.echo(f"removed {username} from {slug}"),
    )


@app.command("leave")
def leave(
    org: Annotated[
        str,
        typer.Option(
            "--org", envvar="PARSEC_ORG", metavar="SLUG", help="The organisation to leave."
        ),
    ],
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Leave an organisation (its owner transfers it first)."""
    with accounts_client(server, token) as api:
        api.post(f"/orgs/{org}/leave")
    emit(
        as_json,
        "parsec.member.removed",
        {"org": org, "username": None},
        lambda: typer.echo(f"left {org}"),
    )
