"""The accounts commands as a user runs them: real ``parsec`` processes against a real
``parsec serve`` with ``[accounts]``, after a browser login through the fake GitHub.

``parsec apikeys create`` prints the key once → ``parsec whoami`` with that key is the
key, in its org → ``apikeys list`` shows it without the key → ``audit list`` has its
creation → ``apikeys revoke`` → ``whoami`` with the key fails (exit 1,
PARSEC_UNAUTHENTICATED)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub
from parsec_cli import parsec_command

from parsec.accounts.session_cookie import COOKIE_NAME, SessionCookies
from parsec.accounts.user_tokens import UserTokens

from .parsec_process import ParsecServer, ServerFactory

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("hermetic")]

SESSION_KEY = "0123456789abcdef0123456789abcdef-cli-tests"
ACCOUNTS = """
[accounts]
session_key = "SESSION_KEY"
base_url = "BASE_URL"

[accounts.github]
client_id = "CLIENT_ID"
client_secret = "CLIENT_SECRET"
authorize_url = "GITHUB/login/oauth/authorize"
token_url = "GITHUB/login/oauth/access_token"
user_url = "GITHUB/user"
"""


def parsec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*parsec_command(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def payload(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["payload"]


@pytest.fixture
def server(server_factory: ServerFactory, fake_github: FakeGitHub) -> ParsecServer:
    def config(server: ParsecServer) -> str:
        return (
            ACCOUNTS.replace("SESSION_KEY", SESSION_KEY)
            .replace("BASE_URL", server.http_url)
            .replace("CLIENT_ID", CLIENT_ID)
            .replace("CLIENT_SECRET", CLIENT_SECRET)
            .replace("GITHUB", fake_github.base_url)
        )

    return server_factory.start(extra_toml=config)


def user_token(server: ParsecServer) -> str:
    """Log alice in with a browser; a user access token for her."""
    with httpx.Client(base_url=server.http_url, follow_redirects=True, trust_env=False) as browser:
        landed = browser.get("/auth/github/start", params={"next": "/api/v1/orgs"})
        assert landed.status_code == 200, landed.text
        cookie = browser.cookies[COOKIE_NAME]
    user_id = SessionCookies(SESSION_KEY, base_url=server.http_url).verify(cookie).user_id
    return UserTokens(SESSION_KEY).mint(user_id)


def test_an_api_key_from_create_to_revoke(server: ParsecServer) -> None:
    url = server.http_url
    alice = ["--server", url, "--token", user_token(server)]

    me = parsec("whoami", *alice)
    assert me.returncode == 0, me.stderr
    assert "kind   user" in me.stdout
    assert "org    alice" in me.stdout

    made = parsec(
        "apikeys", "create", "ci", "--scope", "org:read", "--scope", "audit:read",
        "--expires-in", "30d", *alice,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "it will not be shown again" in made.stderr
    key_line = next(line for line in made.stdout.splitlines() if line.startswith("key "))
    key = key_line.split()[-1]
    assert key.startswith("psk_")
    key_id = next(line for line in made.stdout.splitlines() if line.startswith("id ")).split()[-1]

    robot = ["--server", url, "--token", key]
    who = payload(parsec("whoami", *robot, "--json"))
    assert who["kind"] == "api_key"
    assert who["api_key"]["name"] == "ci"
    assert who["api_key"]["scopes"] == ["org:read", "audit:read"]
    assert who["org"] == {"slug": "alice", "name": "Alice Liddell", "role": None}

    listed = parsec("apikeys", "list", *alice)
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert key not in listed.stdout
    keys = payload(parsec("apikeys", "list", "--org", "alice", "--json", *alice))["apikeys"]
    assert [(k["id"], k["name"], k["created_by"]) for k in keys] == [(key_id, "ci", "alice")]
    assert keys[0]["last_used_at"] is not None

    audit = payload(parsec("audit", "list", "--action", "apikey.created", "--json", *robot))
    assert [e["target"] for e in audit["events"]] == [key_id]
    assert key not in json.dumps(audit)
    forbidden = parsec("apikeys", "list", *robot)
    assert forbidden.returncode == 1
    assert "PARSEC_PERMISSION_DENIED" in forbidden.stderr

    revoked = parsec("apikeys", "revoke", key_id, *alice)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked API key {key_id} of alice" in revoked.stdout

    refused = parsec("whoami", *robot)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "parsec: error: PARSEC_UNAUTHENTICATED: invalid API key"
    assert "Traceback" not in refused.stderr
    assert key not in (server.workdir / "server.log").read_text(errors="replace")


def test_bad_input_exits_2_before_any_request(server: ParsecServer) -> None:
    url = server.http_url
    alice = ["--server", url, "--token", user_token(server)]
    for args, flag in [
        (["apikeys", "create", "ci", "--expires-in", "soon"], "--expires-in"),
        (["audit", "list", "--since", "yesterday"], "--since"),
        (["audit", "list", "--limit", "0"], "--limit"),
    ]:
        run = parsec(*args, *alice)
        assert run.returncode == 2, (args, run.stderr)
        assert flag in run.stderr
        assert "Traceback" not in run.stderr
    unknown = parsec("apikeys", "create", "ci", "--scope", "root", *alice)
    assert unknown.returncode == 1
    assert "PARSEC_INVALID_ARGUMENT" in unknown.stderr
    other = parsec("whoami", "--org", "bob", *alice)
    assert other.returncode == 1
    assert "PARSEC_PERMISSION_DENIED" in other.stderr
