"""Issue 13's OIDC bridge end to end: a real ``parsec serve`` with ``[auth.oidc]`` and
the local OpenID provider; people log in with ``parsec login oidc`` (a real process, the
test approving the device code as the user) and every management command then runs as
them, with what their groups are granted: deny wins, an unknown group gets nothing, an
expiring login is refreshed on the way, and ``parsec logout`` ends it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_runs import Proc, assert_clean_error, invoke
from oidc_provider import PUBLIC_CLIENT, OIDCProvider
from typer.testing import Result

from .parsec_process import ParsecServer, ServerFactory

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("hermetic")]

BRIDGE = """
[auth.oidc]
issuer = "ISSUER"
audience = "parsec-cli"
grants = [
  { if_group = "parsec-admins", scope = "public:**", verbs = ["subscribe", "publish", "manage"] },
  { if_group = "parsec-admins", scope = "private:**", verbs = ["subscribe", "publish", "manage"] },
  { if_group = "newsroom", scope = "public:news.**", verbs = ["publish", "manage"] },
  { if_group = "interns", scope = "public:news.**", verbs = ["manage"], deny = true },
]
"""


@pytest.fixture
def idp(served: OIDCProvider) -> OIDCProvider:
    """The module's provider, not reset: its keys stay those the server fetched."""
    return served


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, served: OIDCProvider) -> ParsecServer:
    return server_factory.start(extra_toml=BRIDGE.replace("ISSUER", served.issuer))


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    return tmp_path / "config" / "credentials.json"


def log_in(spawn: Any, idp: OIDCProvider, creds: Path, *groups: str, user: str = "alice") -> None:
    """``parsec login oidc`` (device flow), approved at the provider as ``user``."""
    proc: Proc = spawn(
        "login",
        "oidc",
        "--issuer",
        idp.issuer,
        "--client-id",
        PUBLIC_CLIENT,
        cwd=creds.parent.parent,
        env={"PARSEC_CREDENTIALS": str(creds)},
    )
    url = proc.wait_for("err", "To log in, open").rpartition(" ")[2]
    code = url.partition("user_code=")[2]
    idp.approve(code, (user, groups))
    exit_code, stderr = proc.finish()
    assert exit_code == 0, stderr


def parsec(server: ParsecServer, creds: Path, *args: str) -> Result:
    """A management command run as the stored login (no --token, no PARSEC_TOKEN)."""
    env = {"PARSEC_CREDENTIALS": str(creds)}
    return invoke(*args, "--server", server.http_url, env=env)


def channel(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def test_an_admin_logs_in_and_manages_channels(
    spawn: Any, idp: OIDCProvider, server: ParsecServer, creds: Path
) -> None:
    log_in(spawn, idp, creds, "parsec-admins")
    name = channel("public:app")
    opened = parsec(server, creds, "channels", "open", name)
    assert opened.exit_code == 0, opened.output
    listed = parsec(server, creds, "channels", "list", "--json")
    assert listed.exit_code == 0, listed.output
    names = [c["name"] for c in json.loads(listed.stdout)["payload"]["channels"]]
    assert name in names
    keys = parsec(server, creds, "keys", "list")  # an operator-only method
    assert keys.exit_code == 0, keys.output


@pytest.mark.parametrize(
    ("groups", "prefix", "allowed"),
    [
        (("newsroom",), "public:news", True),
        (("newsroom",), "public:sport", False),
        (("newsroom", "interns"), "public:news", False),
    ],
    ids=["granted", "outside-the-grant", "deny-wins"],
)
def test_grants_decide_what_a_login_may_do(
    spawn: Any,
    idp: OIDCProvider,
    server: ParsecServer,
    creds: Path,
    groups: tuple[str, ...],
    prefix: str,
    allowed: bool,
) -> None:
    log_in(spawn, idp, creds, *groups)
    result = parsec(server, creds, "channels", "open", channel(prefix))
    if allowed:
        assert result.exit_code == 0, result.output
    else:
        assert_clean_error(result, 1, "PARSEC_AUTH_DENIED", "may not manage")


def test_an_unknown_group_gets_nothing(
    spawn: Any, idp: OIDCProvider, server: ParsecServer, creds: Path
) -> None:
    log_in(spawn, idp, creds, "visitors")
    result = parsec(server, creds, "channels", "list")
    assert_clean_error(result, 1, "PARSEC_AUTH_DENIED", "no [auth.oidc] grant")


def test_an_expired_login_is_refreshed_and_accepted(
    spawn: Any, idp: OIDCProvider, server: ParsecServer, creds: Path
) -> None:
    """The stored ID token has expired: the command refreshes it at the provider and the
    server accepts the new one."""
    log_in(spawn, idp, creds, "parsec-admins")
    stored = json.loads(creds.read_text())
    stored["expires_at"] = 0  # as if the ID token had expired
    creds.write_text(json.dumps(stored))
    result = parsec(server, creds, "channels", "list")
    assert result.exit_code == 0, result.output
    assert idp.token_requests[-1] == "refresh_token"
    assert json.loads(creds.read_text())["id_token"] != stored["id_token"]


def test_logout_ends_the_login(
    spawn: Any, idp: OIDCProvider, server: ParsecServer, creds: Path
) -> None:
    log_in(spawn, idp, creds, "parsec-admins")
    out = invoke("logout", env={"PARSEC_CREDENTIALS": str(creds)})
    assert out.exit_code == 0, out.output
    assert not creds.exists()
    result = parsec(server, creds, "channels", "list")
    assert_clean_error(result, 2, "no management token", "parsec login oidc")
