"""``parsec orgs|members|invites`` against a real ``parsec serve`` with ``[accounts]``:
users logged in through the fake GitHub, each calling with a user access token, see
what the commands print (text and ``--json``) and their exit codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from cli_runs import assert_clean_error, invoke
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub, FakeGitHubUser

from parsec.accounts.session_cookie import SessionCookies
from parsec.accounts.user_tokens import UserTokens

from .parsec_process import ParsecServer, ServerFactory
from .test_accounts_serve import ACCOUNTS

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("hermetic")]

SESSION_KEY = "0123456789abcdef0123456789abcdef-tests"


@pytest.fixture
def accounts_server(server_factory: ServerFactory, fake_github: FakeGitHub) -> ParsecServer:
    def config(server: ParsecServer) -> str:
        return (
            ACCOUNTS.replace("BASE_URL", server.http_url)
            .replace("CLIENT_ID", CLIENT_ID)
            .replace("CLIENT_SECRET", CLIENT_SECRET)
            .replace("GITHUB", fake_github.base_url)
        )

    return server_factory.start(extra_toml=config)


def login(server: ParsecServer, github: FakeGitHub, name: str) -> str:
    """A user access token of GitHub user ``name``, logged in through a browser."""
    if name not in github.users:
        github.users[name] = FakeGitHubUser(
            id=7000 + len(github.users), login=name, email=f"{name}@example.com"
        )
    github.login_as = name
    with httpx.Client(base_url=server.http_url, follow_redirects=True, trust_env=False) as b:
        assert b.get("/auth/github/start", params={"next": "/api/v1/orgs"}).status_code == 200
        cookie = b.cookies["parsec_session"]
    user_id = SessionCookies(SESSION_KEY.encode(), base_url=server.http_url).verify(cookie).user_id
    return UserTokens(SESSION_KEY.encode()).mint(user_id)


def parsec(server: ParsecServer, token: str, *args: str) -> Any:
    """``parsec ARGS --json`` as the holder of ``token``: the envelope's payload."""
    result = invoke(*args, "--server", server.http_url, "--token", token, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["payload"]


def text(server: ParsecServer, token: str, *args: str) -> str:
    result = invoke(*args, "--server", server.http_url, "--token", token)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_invite_accept_list_set_role_remove(
    accounts_server: ParsecServer, fake_github: FakeGitHub
) -> None:
    server = accounts_server
    alice = login(server, fake_github, "alice")
    bob = login(server, fake_github, "bob")
    carol = login(server, fake_github, "carol")

    made = parsec(server, alice, "orgs", "create", "acme", "--name", "Acme Inc")
    assert made == {"slug": "acme", "name": "Acme Inc", "personal": False, "role": "owner"}
    assert "name      Acme Inc" in text(server, alice, "orgs", "rename", "acme", "Acme Inc")

    invited = text(server, alice, "invites", "create", "--org", "acme", "--username", "bob")
    fields = dict(line.split(None, 1) for line in invited.splitlines())
    assert fields["to"] == "bob"
    assert fields["role"] == "member"
    assert len(fields["token"]) >= 43
    mine = parsec(server, bob, "invites", "mine")["invites"]
    assert [(i["id"], i["org"]) for i in mine] == [(fields["id"], "acme")]
    assert text(server, bob, "invites", "accept", fields["id"]) == "joined acme as member\n"

    by_email = parsec(
        server, alice, "invites", "create", "--org", "acme",
        "--email", "carol@example.com", "--role", "admin", "--expires-in", "2h",
    )  # fmt: skip
    assert by_email["email"] == "carol@example.com"
    listed = parsec(server, alice, "invites", "list", "--org", "acme")["invites"]
    assert [i["id"] for i in listed] == [by_email["id"]]
    joined = parsec(server, carol, "invites", "accept", "--invite-token", by_email["token"])
    assert (joined["org"], joined["role"]) == ("acme", "admin")

    members = parsec(server, alice, "members", "list", "--org", "acme")["members"]
    assert [(m["username"], m["role"]) for m in members] == [
        ("alice", "owner"),
        ("bob", "member"),
        ("carol", "admin"),
    ]
    table = text(server, bob, "members", "list", "--org", "acme")
    assert table.split("\n")[0].split() == ["USERNAME", "NAME", "ROLE", "JOINED"]

    assert text(server, alice, "members", "set-role", "bob", "admin", "--org", "acme") == (
        "bob is now admin in acme\n"
    )
    refused = invoke(
        "members", "set-role", "alice", "member", "--org", "acme",
        "--server", server.http_url, "--token", carol,
    )  # fmt: skip
    assert_clean_error(refused, 1, "PARSEC_PERMISSION_DENIED")

    assert text(server, alice, "members", "remove", "bob", "--org", "acme") == (
        "removed bob from acme\n"
    )
    assert text(server, carol, "members", "leave", "--org", "acme") == "left acme\n"
    members = parsec(server, alice, "members", "list", "--org", "acme")["members"]
    assert [m["username"] for m in members] == ["alice"]


def test_transfer_decline_revoke_delete(
    accounts_server: ParsecServer, fake_github: FakeGitHub
) -> None:
    server = accounts_server
    alice = login(server, fake_github, "alice")
    bob = login(server, fake_github, "bob")
    parsec(server, alice, "orgs", "create", "globex")
    first = parsec(server, alice, "invites", "create", "--org", "globex", "--username", "bob")
    assert parsec(server, bob, "invites", "decline", first["id"]) == {"id": first["id"]}
    gone = invoke("invites", "accept", first["id"], "--server", server.http_url, "--token", bob)
    assert_clean_error(gone, 1, "PARSEC_NOT_FOUND")
    second = parsec(server, alice, "invites", "create", "--org", "globex", "--username", "bob")
    assert text(server, alice, "invites", "revoke", second["id"], "--org", "globex") == (
        f"revoked invite {second['id']}\n"
    )
    third = parsec(server, alice, "invites", "create", "--org", "globex", "--username", "bob")
    parsec(server, bob, "invites", "accept", third["id"])
    assert text(server, alice, "orgs", "transfer", "globex", "bob") == (
        "bob now owns globex; you are an admin\n"
    )
    assert parsec(server, alice, "orgs", "show", "globex")["role"] == "admin"
    refused = invoke(
        "orgs", "delete", "globex", "--yes", "--server", server.http_url, "--token", alice
    )
    assert_clean_error(refused, 1, "PARSEC_PERMISSION_DENIED")
    assert text(server, bob, "orgs", "delete", "globex", "--yes") == "deleted globex\n"
    assert [o["slug"] for o in parsec(server, alice, "orgs", "list")["orgs"]] == ["alice"]


def test_bad_input_exits_cleanly(accounts_server: ParsecServer, fake_github: FakeGitHub) -> None:
    server = accounts_server
    alice = login(server, fake_github, "alice")
    common = ("--server", server.http_url, "--token", alice)
    assert_clean_error(invoke("orgs", "create", "Bad_Slug", *common), 1, "PARSEC_INVALID_ARGUMENT")
    assert_clean_error(invoke("orgs", "delete", "alice", "--yes", *common), 1, "PARSEC_CONFLICT")
    assert_clean_error(invoke("invites", "create", *common), 2, "--username", "--email")
    assert_clean_error(
        invoke("invites", "create", "--username", "bob", "--role", "owner", *common),
        1,
        "PARSEC_INVALID_ARGUMENT",
    )
    assert_clean_error(invoke("invites", "accept", *common), 2, "--invite-token")
    assert_clean_error(
        invoke("invites", "create", "--email", "x@example.com", "--expires-in", "soon", *common),
        2,
        "--expires-in",
    )
    asked = invoke("orgs", "delete", "alice", *common, input="n\n")
    assert asked.exit_code == 2
    assert asked.stderr.endswith("parsec: error: not deleted (pass --yes to skip the question)\n")
