"""``parsec login oidc`` and ``parsec logout`` against the local OpenID provider.

The flows run end to end with a real ``python -m parsec login oidc`` process: the test
reads the code or the URL it prints on stderr and plays the user (approving the device
code at the provider) or the browser (following the authorization URL to the CLI's
loopback listener). The error paths run in-process. What is checked is what a user sees:
exit codes, messages, and the credentials file.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cli_runs import Proc, assert_clean_error, invoke
from oidc_provider import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, PUBLIC_CLIENT, OIDCProvider

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")

CREDENTIAL_KEYS = {
    "issuer",
    "client_id",
    "client_secret",
    "token_endpoint",
    "id_token",
    "refresh_token",
    "expires_at",
}


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "credentials.json"


def start_login(spawn: Any, idp: OIDCProvider, creds: Path, *args: str, **env: str) -> Proc:
    proc: Proc = spawn(
        "login",
        "oidc",
        "--issuer",
        idp.issuer,
        *args,
        cwd=creds.parent.parent,
        env={"PARSEC_CREDENTIALS": str(creds), "PARSEC_OIDC_CLIENT_ID": PUBLIC_CLIENT} | env,
    )
    return proc


def user_code_of(proc: Proc) -> tuple[str, str]:
    """The URL and the user code a device login printed."""
    url = proc.wait_for("err", "To log in, open").rpartition(" ")[2]
    code = proc.wait_for("err", "code").rpartition(" ")[2]
    return url, code


def stdout_of(proc: Proc) -> str:
    lines: list[str] = []
    while (line := proc.lines["out"].get(timeout=30)) is not None:
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def stored(creds: Path) -> dict[str, Any]:
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    document: dict[str, Any] = json.loads(creds.read_text())
    assert set(document) == CREDENTIAL_KEYS
    return document


# -- the device flow --------------------------------------------------------------------------


def test_device_login_end_to_end(spawn: Any, idp: OIDCProvider, creds: Path) -> None:
    proc = start_login(spawn, idp, creds)
    url, code = user_code_of(proc)
    assert url == f"{idp.issuer}/device?user_code={code}"
    idp.approve(code)
    exit_code, stderr = proc.finish()
    out = stdout_of(proc)
    assert exit_code == 0, stderr
    assert "logged in as  alice" in out
    assert f"saved to      {creds}" in out

    document = stored(creds)
    assert document["issuer"] == idp.issuer
    assert document["client_id"] == PUBLIC_CLIENT
    assert document["client_secret"] is None
    assert document["token_endpoint"] == idp.token_endpoint
    assert document["refresh_token"]
    claims = claims_of(document["id_token"])
    assert claims["aud"] == PUBLIC_CLIENT
    assert claims["iss"] == idp.issuer
    assert claims["groups"] == ["parsec-admins"]
    assert document["expires_at"] == claims["exp"]
    assert document["id_token"] not in out + stderr
    assert [p.name for p in creds.parent.iterdir()] == ["credentials.json"]  # no temp file
    assert idp.token_requests[-1] == "urn:ietf:params:oauth:grant-type:device_code"


def test_device_login_of_a_confidential_client_as_json(
    spawn: Any, idp: OIDCProvider, creds: Path
) -> None:
    """The secret comes from the environment, authenticates the client, is stored for
    the refreshes and is never printed."""
    proc = start_login(
        spawn,
        idp,
        creds,
        "--json",
        "--scope",
        "email",
        "--scope",
        "groups,profile",
        PARSEC_OIDC_CLIENT_ID=CONFIDENTIAL_CLIENT,
        PARSEC_OIDC_CLIENT_SECRET=CONFIDENTIAL_SECRET,
    )
    _, code = user_code_of(proc)
    assert idp.device(code).scope == "openid email groups profile"
    idp.approve(code, ("bob", ("ops",)))
    exit_code, stderr = proc.finish()
    out = stdout_of(proc)
    assert exit_code == 0, stderr
    document = json.loads(out)
    assert document["kind"] == "parsec.login.oidc"
    payload = document["payload"]
    subject = claims_of(stored(creds)["id_token"])["sub"]
    assert payload == {
        "issuer": idp.issuer,
        "subject": subject,
        "username": "bob",
        "expires_at": payload["expires_at"],
        "credentials": str(creds),
    }
    assert payload["expires_at"].endswith("Z")
    assert stored(creds)["client_secret"] == CONFIDENTIAL_SECRET
    assert CONFIDENTIAL_SECRET not in out + stderr + "".join(proc.seen)


def test_the_default_place_is_the_config_dir(spawn: Any, idp: OIDCProvider, tmp_path: Path) -> None:
    """Without PARSEC_CREDENTIALS: $XDG_CONFIG_HOME/parsec/credentials.json, in a
    directory only the user can enter."""
    proc: Proc = spawn(
        "login",
        "oidc",
        "--issuer",
        idp.issuer,
        "--client-id",
        PUBLIC_CLIENT,
        cwd=tmp_path,
    )
    _, code = user_code_of(proc)
    idp.approve(code)
    assert proc.finish()[0] == 0
    creds = tmp_path / ".config" / "parsec" / "credentials.json"
    assert stored(creds)["issuer"] == idp.issuer
    assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("act", "words"),
    [
        (OIDCProvider.deny, "the login was denied at the OpenID provider"),
        (OIDCProvider.expire, "the login code expired before it was approved"),
    ],
)
def test_device_login_denied_or_expired_exits_1(
    spawn: Any, idp: OIDCProvider, creds: Path, act: Any, words: str
) -> None:
    proc = start_login(spawn, idp, creds)
    _, code = user_code_of(proc)
    act(idp, code)
    exit_code, stderr = proc.finish()
    assert exit_code == 1
    assert stderr.splitlines()[-1] == f"parsec: error: {words}"
    assert not creds.exists()


def test_device_login_times_out(spawn: Any, idp: OIDCProvider, creds: Path) -> None:
    proc = start_login(spawn, idp, creds, "--timeout", "2s")
    user_code_of(proc)
    exit_code, stderr = proc.finish()
    assert exit_code == 1
    assert stderr.splitlines()[-1] == (
        "parsec: error: the login was not completed within 2s (--timeout)"
    )
    assert not creds.exists()


def test_slow_down_adds_five_seconds_to_the_interval(
    spawn: Any, idp: OIDCProvider, creds: Path
) -> None:
    idp.slow_down_polls = 1
    proc = start_login(spawn, idp, creds)
    _, code = user_code_of(proc)
    idp.approve(code)
    exit_code, stderr = proc.finish()
    assert exit_code == 0, stderr
    first, second = idp.device_polls
    assert second - first >= 1 + 5 - 0.2  # the interval (1 s) plus 5


# -- the browser flow -------------------------------------------------------------------------


def authorization_url_of(proc: Proc) -> str:
    return proc.wait_for("err", "To log in, open").rpartition(" ")[2]


def test_browser_login_end_to_end(spawn: Any, idp: OIDCProvider, creds: Path) -> None:
    proc = start_login(spawn, idp, creds, "--browser")
    url = authorization_url_of(proc)
    params = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{idp.issuer}/protocol/openid-connect/auth?")
    assert params["code_challenge_method"] == "S256"
    assert params["client_id"] == PUBLIC_CLIENT
    assert params["scope"] == "openid email profile groups"
    redirect = urlsplit(params["redirect_uri"])
    assert (redirect.scheme, redirect.hostname, redirect.path) == ("http", "127.0.0.1", "/callback")

    page = httpx.get(url, follow_redirects=True, timeout=10)  # the browser
    assert page.status_code == 200
    assert urlsplit(str(page.url)).netloc == redirect.netloc
    assert "You can close this tab" in page.text
    exit_code, stderr = proc.finish()
    assert exit_code == 0, stderr
    assert "logged in as  alice" in stdout_of(proc)
    claims = claims_of(stored(creds)["id_token"])
    assert claims["nonce"] == params["nonce"]
    assert idp.token_requests == ["authorization_code"]
    with pytest.raises(httpx.ConnectError):  # the listener is closed
        httpx.get(params["redirect_uri"], timeout=5)


def test_browser_login_refused_by_the_provider(spawn: Any, idp: OIDCProvider, creds: Path) -> None:
    idp.deny_authorization = True
    proc = start_login(spawn, idp, creds, "--browser", "--no-open")
    page = httpx.get(authorization_url_of(proc), follow_redirects=True, timeout=10)
    assert "Login failed: access_denied" in page.text
    exit_code, stderr = proc.finish()
    assert exit_code == 1
    assert stderr.splitlines()[-1] == (
        "parsec: error: the OpenID provider refused the login: access_denied: the user said no"
    )
    assert not creds.exists()


def test_browser_callback_with_a_wrong_state_fails(
    spawn: Any, idp: OIDCProvider, creds: Path
) -> None:
    proc = start_login(spawn, idp, creds, "--browser")
    params = parse_qs(urlsplit(authorization_url_of(proc)).query)
    page = httpx.get(params["redirect_uri"][0], params={"code": "x", "state": "forged"})
    assert page.status_code == 400
    exit_code, stderr = proc.finish()
    assert exit_code == 1
    assert "wrong state" in stderr.splitlines()[-1]
    assert idp.token_requests == []


# -- what fails before any flow ---------------------------------------------------------------


def login(idp: OIDCProvider, creds: Path, *args: str) -> Any:
    env = {"PARSEC_CREDENTIALS": str(creds)}
    return invoke(
        "login", "oidc", "--issuer", idp.issuer, "--client-id", PUBLIC_CLIENT, *args, env=env
    )


def test_an_issuer_that_is_not_the_discovered_one_exits_1(idp: OIDCProvider, creds: Path) -> None:
    idp.discovery_overrides = {"issuer": "https://sso.example.org/realms/parsec"}
    result = login(idp, creds)
    assert_clean_error(result, 1, "names the issuer 'https://sso.example.org/realms/parsec'")
    assert "must match exactly" in result.stderr


def test_a_provider_without_device_flow_points_to_browser(idp: OIDCProvider, creds: Path) -> None:
    idp.discovery_overrides = {"device_authorization_endpoint": None}
    assert_clean_error(login(idp, creds), 1, "offers no device flow", "--browser")


def test_a_wrong_client_secret_is_refused_and_not_printed(idp: OIDCProvider, creds: Path) -> None:
    env = {"PARSEC_CREDENTIALS": str(creds), "PARSEC_OIDC_CLIENT_SECRET": "wrong-secret"}
    args = ["--issuer", idp.issuer, "--client-id", CONFIDENTIAL_CLIENT]
    result = invoke("login", "oidc", *args, env=env)
    assert_clean_error(result, 1, "the OpenID provider refused the login: invalid_client")
    assert "wrong-secret" not in result.output
    assert not creds.exists()


def test_an_unreachable_provider_exits_1(creds: Path) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/realms/none"
    result = invoke("login", "oidc", "--issuer", issuer, "--client-id", PUBLIC_CLIENT)
    assert_clean_error(result, 1, "cannot reach the OpenID provider")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--timeout", "soon"], "--timeout"),
        (["--timeout", "0"], "--timeout"),
        (["--scope", ", ,"], "--scope must name at least one scope"),
    ],
)
def test_bad_flags_exit_2(idp: OIDCProvider, creds: Path, args: list[str], words: str) -> None:
    assert_clean_error(login(idp, creds, *args), 2, words)


def test_a_non_http_issuer_exits_2() -> None:
    result = invoke("login", "oidc", "--issuer", "sso.example.org", "--client-id", "x")
    assert_clean_error(result, 2, "--issuer must be an http(s) URL")


@pytest.mark.parametrize("missing", ["--issuer", "--client-id"])
def test_missing_required_flags_exit_2(missing: str) -> None:
    args = {"--issuer": "https://sso.example.org", "--client-id": "parsec-cli"}
    del args[missing]
    result = invoke("login", "oidc", *(part for pair in args.items() for part in pair))
    assert result.exit_code == 2
    assert f"Missing option '{missing}'" in result.stderr


# -- logout -----------------------------------------------------------------------------------


def test_logout_deletes_the_login(idp: OIDCProvider, creds: Path) -> None:
    creds.parent.mkdir()
    creds.write_text("{}")
    env = {"PARSEC_CREDENTIALS": str(creds)}
    result = invoke("logout", env=env)
    assert result.exit_code == 0
    assert result.stdout == f"logged out: deleted {creds}\n"
    assert not creds.exists()
    again = invoke("logout", env=env)
    assert again.exit_code == 0
    assert again.stdout == f"not logged in (no {creds})\n"
