"""``parsec invites create|list|revoke|mine|accept|decline``: inviting people into an
organisation, and answering your own invites.

``create`` prints the invite's token once: give it to the invitee, who runs
``parsec invites accept --invite-token TOKEN`` (or accepts by id, when the invite names them).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from parsec.cli._accounts import ApiToken, OrgOption, accounts_client, list_org, org_slug
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    emit,
    fail,
    print_fields,
    print_table,
    ttl_seconds,
)

__all__ = ["app"]

app = typer.Typer(name="invites", help="Invitations into organisations.", no_args_is_help=True)

InviteId = Annotated[str, typer.Argument(help="The invite's id.", metavar="ID")]


def _to(invite: dict[str, Any]) -> str:
    return str(invite.get("username") or invite.get("email") or "")


@app.command("create")
def create_invite(
    username: Annotated[
        str | None, typer.Option("--username", help="Invite this user.", show_default=False)
    ] = None,
    email: Annotated[
        str | None,
        typer.Option("--email", help="Invite whoever has this email.", show_default=False),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", metavar="admin|member", help="Their role once in.")
    ] = "member",
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            metavar="DURATION",
            help="How long it stays open: 90m, 48h, 3600 (default 7 days, at most 30).",
            show_default=False,
        ),
    ] = None,
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Invite a user (--username) or an email (--email) into an organisation (admins
    and the owner; only the owner invites an admin). Prints the token once."""
    if (username is None) == (email is None):
        fail("give exactly one of --username and --email", EXIT_USAGE)
    body: dict[str, object] = {"role": role}
    body |= {"username": username} if username is not None else {"email": email}
    seconds = ttl_seconds(expires_in, "--expires-in")
    if seconds is not None:
        body["expires_in_seconds"] = seconds
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        invite: dict[str, Any] = api.post(f"/orgs/{slug}/invites", body)
    emit(
        as_json,
        "parsec.invite.created",
        {"org": slug, **invite},
        lambda: print_fields(
            [
                ("id", invite["id"]),
                ("org", slug),
                ("to", _to(invite)),
                ("role", invite["role"]),
                ("expires", invite["expires_at"]),
                ("token", invite["token"]),
            ]
        ),
    )


@app.command("list")
def list_invites(
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """List an organisation's open invites (admins and the owner)."""
    list_org(
        "invites",
        org,
        server,
        token,
        as_json,
        ["ID", "TO", "ROLE", "EXPIRES"],
        lambda i: [i["id"], _to(i), i["role"], i["expires_at"]],
    )


@app.command("revoke")
def revoke_invite(
    invite_id: InviteId,
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an open invite (admins and the owner)."""
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        api.delete(f"/orgs/{slug}/invites/{invite_id}")
    emit(
        as_json,
        "parsec.invite.revoked",
        {"org": slug, "id": invite_id},
        lambda: typer.echo(f"revoked invite {invite_id}"),
    )


@app.command("mine")
def my_invites(
    server: ServerUrl = DEFAULT_SERVER, token: ApiToken = None, as_json: JsonFlag = False
) -> None:
    """List the open invites addressed to you (your username or your email)."""
    with accounts_client(server, token) as api:
        invites: list[dict[str, Any]] = api.get("/invites")
    emit(
        as_json,
        "parsec.invites.list",
        {"invites": invites},
        lambda: print_table(
            ["ID", "ORG", "ROLE", "EXPIRES"],
            [[i["id"], i["org"], i["role"], i["expires_at"]] for i in invites],
        ),
    )


@app.command("accept")
def accept_invite(
    invite_id: Annotated[
        str | None,
        typer.Argument(help="An invite addressed to you (see `mine`).", metavar="ID"),
    ] = None,
    invite_token: Annotated[
        str | None,
        typer.Option(
            "--invite-token",
            metavar="TOKEN",
            help="The token the invite was created with (instead of an ID).",
            show_default=False,
        ),
    ] = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Accept an invite: one addressed to you, by its ID, or any one with its token
    (--invite-token; --token stays the credential you call the server with)."""
    if (invite_id is None) == (invite_token is None):
        fail("give exactly one of an invite ID and --invite-token", EXIT_USAGE)
    with accounts_client(server, token) as api:
        if invite_token is not None:
            joined: dict[str, Any] = api.post("/invites/accept", {"token": invite_token})
        else:
            joined = api.post(f"/invites/{invite_id}/accept")
    emit(
        as_json,
        "parsec.invite.accepted",
        joined,
        lambda: typer.echo(f"joined {joined['org']} as {joined['role']}"),
    )


@app.command("decline")
def decline_invite(
    invite_id: InviteId,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Decline an invite addressed to you."""
    with accounts_client(server, token) as api:
        api.post(f"/invites/{invite_id}/decline")
    emit(
        as_json,
        "parsec.invite.declined",
        {"id": invite_id},
        lambda: typer.echo(f"declined invite {invite_id}"),
    )
