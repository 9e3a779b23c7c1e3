"""``parsec login`` (the device flow) and ``parsec logout --server`` end to end: a real
``parsec serve`` with ``[accounts]`` and the fake GitHub, ``python -m parsec login
--no-browser`` as a process; the test plays the browser (logs in through the fake
GitHub, opens the verify page, approves or denies), then runs the accounts commands
with the stored login."""

from __future__ import annotations

import html
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_runs import SRC, Proc, assert_one_line_error
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub

from parsec.client.device_login import DeviceLogin, DeviceLoginError

from .parsec_process import ParsecServer, ServerFactory

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("hermetic")]

ACCOUNTS = """
[accounts]
session_key = "0123456789abcdef0123456789abcdef-device"
base_url = "BASE_URL"

[accounts.github]
client_id = "CLIENT_ID"
client_secret = "CLIENT_SECRET"
authorize_url = "GITHUB/login/oauth/authorize"
token_url = "GITHUB/login/oauth/access_token"
user_url = "GITHUB/user"
"""

OIDC_LOGIN = {
    "issuer": "https://sso.example.com",
    "client_id": "parsec",
    "client_secret": None,
    "token_endpoint": "https://sso.example.com/token",
    "id_token": "an.id.token",
    "refresh_token": None,
    "expires_at": 4102444800,
}


@pytest.fixture(scope="module")
def accounts_server(server_factory: ServerFactory, github_served: FakeGitHub) -> ParsecServer:
    def config(server: ParsecServer) -> str:
        return (
            ACCOUNTS.replace("BASE_URL", server.http_url)
            .replace("CLIENT_ID", CLIENT_ID)
            .replace("CLIENT_SECRET", CLIENT_SECRET)
            .replace("GITHUB", github_served.base_url)
        )

    return server_factory.start(extra_toml=config)


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    """The OIDC credentials file; ``parsec login`` keeps its logins beside it."""
    return tmp_path / "secrets" / "credentials.json"


def run(creds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parsec", *args],
        env={"PYTHONPATH": str(SRC), "PARSEC_CREDENTIALS": str(creds), "PATH": "/usr/bin:/bin"},
        cwd=creds.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_login(spawn: Any, server: ParsecServer, creds: Path) -> tuple[Proc, str, str]:
    """A ``parsec login`` process, the URL it asks to open and the code it shows."""
    proc: Proc = spawn(
        "login",
        "--server",
        server.http_url,
        "--no-browser",
        cwd=creds.parent.parent,
        env={"PARSEC_CREDENTIALS": str(creds)},
    )
    url = proc.wait_for("err", "To log in, open").rpartition(" ")[2]
    code = proc.wait_for("err", "shows the code").rpartition(" ")[2]
    return proc, url, code


def play_the_browser(url: str, decision: str) -> str:
    """Open ``url`` as a browser with no session: log in through the fake GitHub, land
    back on the verify page, and decide; the final page."""
    with httpx.Client(follow_redirects=True, trust_env=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert str(page.url) == url  # back on the verify page after the login
        assert "alice" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        code = re.search(r'name="user_code" value="([^"]+)"', page.text)
        assert token is not None
        assert code is not None
        done = browser.post(
            url.split("?")[0],
            data={
                "user_code": html.unescape(code.group(1)),
                "decision": decision,
                "csrf_token": html.unescape(token.group(1)),
            },
        )
        assert done.status_code == 200, done.text
        return done.text


def test_login_then_list_orgs_then_logout(
    spawn: Any, accounts_server: ParsecServer, fake_github: FakeGitHub, creds: Path
) -> None:
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps(OIDC_LOGIN))  # an OIDC login, kept as it is
    proc, url, code = start_login(spawn, accounts_server, creds)
    assert url == f"{accounts_server.http_url}/oauth/device?user_code={code}"
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", code)

    assert "go back to your terminal" in play_the_browser(url, "approve")
    exit_code, stderr = proc.finish()
    assert exit_code == 0, stderr
    out = "".join(f"{line}\n" for line in iter(lambda: proc.lines["out"].get(timeout=30), None))
    assert f"logged in to  {accounts_server.http_url}" in out
    logins = creds.parent / "logins.json"
    assert f"saved to      {logins}" in out
    assert stat.S_IMODE(logins.stat().st_mode) == 0o600
    stored = json.loads(logins.read_text())["logins"][accounts_server.http_url]
    assert set(stored) == {"server", "access_token", "expires_at"}
    assert stored["access_token"].startswith("psu_")
    assert stored["access_token"] not in out + stderr
    assert json.loads(creds.read_text()) == OIDC_LOGIN

    orgs = run(creds, "orgs", "list", "--server", accounts_server.http_url)
    assert orgs.returncode == 0, orgs.stderr
    header, row = orgs.stdout.splitlines()
    assert header.split() == ["SLUG", "NAME", "ROLE", "PERSONAL"]
    assert row.split() == ["alice", "Alice", "Liddell", "owner", "yes"]

    logout = run(creds, "logout", "--server", accounts_server.http_url + "/")
    assert logout.returncode == 0, logout.stderr
    assert logout.stdout.strip() == f"logged out of {accounts_server.http_url}"
    assert not logins.exists()
    assert creds.exists()  # the OIDC login is another login
    after = run(creds, "orgs", "list", "--server", accounts_server.http_url)
    assert after.returncode == 2
    assert_one_line_error(after.stderr, "not logged in", "parsec login")
    oidc_logout = run(creds, "logout")
    assert oidc_logout.returncode == 0
    assert not creds.exists()


def test_a_denied_login_exits_1_and_stores_nothing(
    spawn: Any, accounts_server: ParsecServer, fake_github: FakeGitHub, creds: Path
) -> None:
    proc, url, _ = start_login(spawn, accounts_server, creds)
    proc.wait_for("err", "Waiting for the login")
    assert "was denied" in play_the_browser(url, "deny")
    exit_code, stderr = proc.finish()
    assert exit_code == 1
    assert_one_line_error(stderr, "denied")
    assert not (creds.parent / "logins.json").exists()


def test_a_server_without_accounts_or_a_bad_flag(creds: Path, server: ParsecServer) -> None:
    """A server without [accounts] exits 1 saying so; a bad --server exits 2."""
    plain = run(creds, "login", "--server", server.http_url, "--no-browser")
    assert plain.returncode == 1
    assert_one_line_error(plain.stderr, "no device login")
    bad = run(creds, "login", "--server", "not-a-url")
    assert bad.returncode == 2
    assert_one_line_error(bad.stderr, "--server")


def test_the_client_honours_interval_and_slow_down(
    accounts_server: ParsecServer, fake_github: FakeGitHub
) -> None:
    """Polls that come too soon (the client's sleeps are recorded, not slept) meet
    ``slow_down``, and each makes the client wait 5 seconds more; a denial ends it."""
    waits: list[float] = []
    verify: list[str] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            play_the_browser(verify[0], "deny")

    with DeviceLogin(accounts_server.http_url, sleep=sleep) as login:
        device = login.start()
        verify.append(device.verification_uri_complete)
        with pytest.raises(DeviceLoginError, match="denied") as denied:
            login.wait(device)
    assert denied.value.error == "access_denied"
    assert waits == [5, 5, 10, 15]
