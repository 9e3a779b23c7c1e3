"""The management commands' bearer when no ``--token`` is given: the stored login of
``parsec login oidc``, its ID token refreshed at the provider when it expires within 30 s.

The server side is a tiny recorder that keeps each request's ``Authorization`` header and
answers a Twirp ``unauthenticated`` error, so the tests see exactly which bearer a
command sent; the refresh is seen at the local OpenID provider (its token requests, the
rotated refresh token) and in the rewritten credentials file.
"""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cli_runs import assert_clean_error, invoke
from oidc_provider import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, PUBLIC_CLIENT, OIDCProvider
from typer.testing import Result

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")


class Recorder(ThreadingHTTPServer):
    """Records the Authorization header of every request; answers 401 unauthenticated."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bearers: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.bearers.append(self.headers.get("Authorization"))
        body = json.dumps({"code": "unauthenticated", "msg": "who are you?"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.shutdown()
        recorder.server_close()
        thread.join(10)


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    return tmp_path / "credentials.json"


def log_in(
    idp: OIDCProvider,
    creds: Path,
    *,
    ttl: int = 300,
    client_id: str = PUBLIC_CLIENT,
    secret: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A stored login as ``parsec login oidc`` leaves it, its ID token living ``ttl`` s."""
    tokens = _issue(idp, client_id, ttl)
    document = {
        "issuer": idp.issuer,
        "client_id": client_id,
        "client_secret": secret,
        "token_endpoint": idp.token_endpoint,
        "id_token": tokens["id_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": jwt.decode(tokens["id_token"], options={"verify_signature": False})["exp"],
    } | fields
    creds.write_text(json.dumps(document))
    creds.chmod(0o600)
    return document


def _issue(idp: OIDCProvider, client_id: str, ttl: int) -> dict[str, Any]:
    default, idp.id_token_ttl = idp.id_token_ttl, ttl
    try:
        return idp.issue(client_id)
    finally:
        idp.id_token_ttl = default


def channels_list(server: Recorder, creds: Path, *args: str) -> Result:
    env = {"PARSEC_CREDENTIALS": str(creds)}
    return invoke("channels", "list", "--server", server.url, *args, env=env)


def test_a_fresh_login_is_the_bearer(server: Recorder, idp: OIDCProvider, creds: Path) -> None:
    login = log_in(idp, creds)
    result = channels_list(server, creds)
    assert_clean_error(result, 1, "PARSEC_AUTH_EXPIRED", "who are you?")
    assert server.bearers == [f"Bearer {login['id_token']}"]
    assert idp.token_requests == []
    assert json.loads(creds.read_text()) == login


@pytest.mark.parametrize(
    ("client_id", "secret"), [(PUBLIC_CLIENT, None), (CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET)]
)
def test_an_expiring_login_is_refreshed_first(
    server: Recorder, idp: OIDCProvider, creds: Path, client_id: str, secret: str | None
) -> None:
    old = log_in(idp, creds, ttl=20, client_id=client_id, secret=secret)
    result = channels_list(server, creds)
    assert_clean_error(result, 1, "PARSEC_AUTH_EXPIRED")
    assert idp.token_requests == ["refresh_token"]

    new = json.loads(creds.read_text())
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert new["id_token"] != old["id_token"]
    assert new["refresh_token"] != old["refresh_token"]  # rotated, and the new one kept
    assert new["expires_at"] > old["expires_at"]
    kept = ("issuer", "client_id", "client_secret", "token_endpoint")
    assert {k: new[k] for k in kept} == {k: old[k] for k in kept}
    assert server.bearers == [f"Bearer {new['id_token']}"]

    again = channels_list(server, creds)  # the new token is fresh: no second refresh
    assert again.exit_code == 1
    assert idp.token_requests == ["refresh_token"]
    assert server.bearers[-1] == f"Bearer {new['id_token']}"
    assert old["refresh_token"] not in idp.flows.refresh_tokens  # refused from now on


@pytest.mark.parametrize("refresh_token", ["revoked-at-the-provider", None])
def test_a_login_that_cannot_be_refreshed_exits_2(
    server: Recorder, idp: OIDCProvider, creds: Path, refresh_token: str | None
) -> None:
    log_in(idp, creds, ttl=-60, refresh_token=refresh_token)
    result = channels_list(server, creds)
    assert_clean_error(
        result, 2, "your login expired", f": run `parsec login oidc --issuer {idp.issuer}`"
    )
    assert "invalid_grant" in result.stderr
    assert server.bearers == []


def test_a_refresh_lost_to_another_command_uses_its_result(
    server: Recorder, idp: OIDCProvider, creds: Path
) -> None:
    """Two commands refresh at once: the provider rotates the refresh token for the first
    and refuses the second, which then finds the first one's fresh login in the file."""
    log_in(idp, creds, ttl=10, refresh_token="already-rotated")
    winner: dict[str, Any] = {}

    def the_other_command_won(grant_type: str) -> None:
        winner.update(log_in(idp, creds))

    idp.on_token_request = the_other_command_won
    result = channels_list(server, creds)
    assert_clean_error(result, 1, "PARSEC_AUTH_EXPIRED")
    assert server.bearers == [f"Bearer {winner['id_token']}"]
    assert json.loads(creds.read_text()) == winner


def test_a_provider_that_cannot_be_reached_exits_1(
    server: Recorder, idp: OIDCProvider, creds: Path
) -> None:
    gone = f"http://127.0.0.1:{free_port()}/token"
    log_in(idp, creds, ttl=10, token_endpoint=gone)
    result = channels_list(server, creds)
    assert_clean_error(result, 1, "cannot renew your login", gone)
    assert server.bearers == []


def test_an_explicit_token_wins(server: Recorder, idp: OIDCProvider, creds: Path) -> None:
    log_in(idp, creds, ttl=-60, refresh_token="revoked")
    result = channels_list(server, creds, "--token", "mgmt-token")
    assert result.exit_code == 1
    assert server.bearers == ["Bearer mgmt-token"]
    env = {"PARSEC_CREDENTIALS": str(creds), "PARSEC_TOKEN": "env-token"}
    invoke("channels", "list", "--server", server.url, env=env)
    assert server.bearers[-1] == "Bearer env-token"
    assert idp.token_requests == []


def test_no_token_and_no_login_names_both_ways(server: Recorder, creds: Path) -> None:
    result = channels_list(server, creds)
    assert_clean_error(result, 2, "no management token", "PARSEC_TOKEN", "parsec login oidc")
    assert server.bearers == []


def test_a_damaged_credentials_file_exits_2(server: Recorder, creds: Path) -> None:
    creds.write_text('{"issuer": ')
    result = channels_list(server, creds)
    assert_clean_error(result, 2, str(creds), "not a Parsec credentials file", "parsec login oidc")
    assert server.bearers == []


def test_publish_uses_the_login_too(server: Recorder, idp: OIDCProvider, creds: Path) -> None:
    login = log_in(idp, creds)
    env = {"PARSEC_CREDENTIALS": str(creds)}
    result = invoke("publish", "public:app.lobby", "--data", "{}", "--server", server.url, env=env)
    assert_clean_error(result, 1, "PARSEC_AUTH_EXPIRED")
    assert server.bearers == [f"Bearer {login['id_token']}"]
