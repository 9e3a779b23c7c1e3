"""The management CLI (``parsec channels|keys|tokens|manifest``) and its Twirp-JSON client.

Two servers play the other side: a scripted fake ParsecService (exact request bodies,
int64-as-string and base64 decoding, every kind of error reply), and a real Parsec served
on a free port in a background thread (end to end, with the real error codes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import stat
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cli_runs import invoke
from typer.testing import Result

from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.scopes import OPERATOR_SCOPES, Scope
from parsec.client.management import (
    ManagementClient,
    ManagementError,
    ManagementTransportError,
)
from parsec.testing import TestServer, free_port, serve_for_tests

_T = TypeVar("_T")

TOKEN = "mgmt-token-for-tests"
SHUTDOWN_POLL = 0.02
"""How often the fake server's loop checks for shutdown (its teardown latency)."""

CHANNEL = {
    "name": "public:app.lobby",
    "state": "open",
    "ttl_seconds": 1800,
    "created_at": "2026-01-01T00:00:00Z",
    "last_active": "2026-01-01T00:05:00Z",
}

MANIFEST = {
    "format_version": "1.0",
    "kind": "parsec.manifest",
    "generated_at": "2026-01-01T00:00:00Z",
    "payload": {"service": "parsec", "version": "0.1.0", "key_rotation": "supported"},
}


pytestmark = pytest.mark.usefixtures("hermetic")


def assert_error(result: Result, code: int, *words: str) -> None:
    """The command exited ``code``, printed no traceback, and its last stderr line is an
    error message holding ``words``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    message = result.stderr.splitlines()[-1]
    assert message.startswith("parsec: error: "), result.stderr
    for word in words:
        assert word in message, message


def envelope_of(result: Result, kind: str) -> dict[str, Any]:
    """The payload of the descriptor envelope ``result`` printed, checking its frame."""
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"format_version", "kind", "generated_at", "payload"}
    assert document["format_version"] == "1.0"
    assert document["kind"] == kind
    assert document["generated_at"].endswith("Z")
    payload: dict[str, Any] = document["payload"]
    return payload


# -- a scripted ParsecService --------------------------------------------------------------


@dataclass
class Call:
    """One request the fake server received."""

    method: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """Answers ``POST /twirp/parsec.ParsecService/<Method>`` from ``replies`` (default
    ``200 {}``) and ``GET /manifest`` with ``manifest``; records every call."""

    url: str = ""
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    manifest: tuple[int, bytes] = (200, json.dumps(MANIFEST).encode())
    calls: list[Call] = field(default_factory=list)

    def reply(self, method: str, body: Any, status: int = 200) -> None:
        """Answer ``method`` with ``body`` (JSON-encoded unless bytes) and ``status``."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.replies[method] = (status, raw)

    def only_call(self) -> Call:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


@pytest.fixture
def fake() -> Iterator[FakeService]:
    """A scripted ParsecService on a free loopback port."""
    service = FakeService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            method = self.path.removeprefix("/twirp/parsec.ParsecService/")
            service.calls.append(Call(method, dict(self.headers.items()), json.loads(raw)))
            self._send(*service.replies.get(method, (200, b"{}")))

        def do_GET(self) -> None:
            service.calls.append(Call(f"GET {self.path}", dict(self.headers.items()), None))
            self._send(*service.manifest)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
    thread.start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield service
    server.shutdown()
    server.server_close()
    thread.join()


def run(fake: FakeService, *args: str, input: str | None = None) -> Result:
    """The CLI against ``fake`` with the management token in the environment."""
    env = {"PARSEC_SERVER": fake.url, "PARSEC_TOKEN": TOKEN}
    return invoke(*args, input=input, env=env)


# -- channels against the fake -------------------------------------------------------------


def test_channels_list_prints_a_table_and_sends_the_bearer(fake: FakeService) -> None:
    """channels list shows each channel's name, state and TTL, authenticated by the token."""
    fake.reply("ListChannels", {"channels": [CHANNEL, {**CHANNEL, "name": "public:app.x"}]})
    result = run(fake, "channels", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "TTL", "CREATED", "LAST", "ACTIVE"]
    assert lines[1].split()[:3] == ["public:app.lobby", "open", "30m"]
    assert lines[2].split()[0] == "public:app.x"
    call = fake.only_call()
    assert call.method == "ListChannels"
    assert call.body == {}
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_channels_list_json_is_a_descriptor_envelope(fake: FakeService) -> None:
    """channels list --json prints the parsec.channels.list envelope with numeric TTLs."""
    fake.reply("ListChannels", {"channels": [{**CHANNEL, "ttl_seconds": "1800"}]})
    payload = envelope_of(run(fake, "channels", "list", "--json"), "parsec.channels.list")
    assert payload == {"channels": [CHANNEL]}


def test_channels_list_when_there_are_none(fake: FakeService) -> None:
    """An empty list says so instead of printing an empty table."""
    fake.reply("ListChannels", {"channels": []})
    result = run(fake, "channels", "list")
    assert result.exit_code == 0
    assert result.stdout == "no channels\n"


def test_channels_open_sends_the_ttl_in_seconds(fake: FakeService) -> None:
    """channels open --ttl 45m sends ttl_seconds 2700 and prints the channel."""
    fake.reply("OpenPublic", {"channel": {**CHANNEL, "ttl_seconds": 2700}})
    result = run(fake, "channels", "open", "public:app.lobby", "--ttl", "45m")
    assert result.exit_code == 0, result.output
    assert fake.only_call().body == {"name": "public:app.lobby", "ttl_seconds": 2700}
    assert "ttl          45m" in result.stdout
    assert "state        open" in result.stdout


def test_channels_open_without_ttl_leaves_the_server_default(fake: FakeService) -> None:
    """Without --ttl no ttl_seconds is sent, so the server's configured default applies."""
    fake.reply("OpenPublic", {"channel": CHANNEL})
    payload = envelope_of(
        run(fake, "channels", "open", "public:app.lobby", "--json"), "parsec.channel.open"
    )
    assert fake.only_call().body == {"name": "public:app.lobby"}
    assert payload == {"channel": CHANNEL}


@pytest.mark.parametrize("ttl", ["soon", "0", "1.5s", "-5m"])
def test_channels_open_with_a_bad_ttl_exits_2(fake: FakeService, ttl: str) -> None:
    """A TTL that is not a whole, positive number of seconds is refused before any call."""
    assert_error(run(fake, "channels", "open", "public:app.lobby", "--ttl", ttl), 2, "--ttl")
    assert fake.calls == []


CREDENTIALS = {
    "name": "private:app.user.42",
    "access_token": "ACCESS",
    "refresh_token": "REFRESH",
    "access_expires_unix": "1767225900",
    "refresh_expires_unix": "1767226500",
}


def test_channels_create_prints_the_credentials(fake: FakeService) -> None:
    """channels create prints both tokens and their expiry as RFC 3339 and unix seconds."""
    fake.reply("CreatePrivate", CREDENTIALS)
    result = run(fake, "channels", "create", "private:app.user.42", "-s", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "name             private:app.user.42",
        "access_token     ACCESS",
        "access_expires   2026-01-01T00:05:00Z (unix 1767225900)",
        "refresh_token    REFRESH",
        "refresh_expires  2026-01-01T00:15:00Z (unix 1767226500)",
    ]
    assert fake.only_call().body == {"name": "private:app.user.42", "subject": "alice"}


def test_channels_create_json_decodes_int64_strings(fake: FakeService) -> None:
    """The credentials envelope carries the expiries as numbers."""
    fake.reply("CreatePrivate", CREDENTIALS)
    payload = envelope_of(
        run(fake, "channels", "create", "private:app.user.42", "-s", "alice", "--json"),
        "parsec.channel.credentials",
    )
    assert payload["access_expires_unix"] == 1767225900
    assert payload["refresh_expires_unix"] == 1767226500
    assert payload["access_token"] == "ACCESS"


def test_channels_create_builds_scopes_from_the_flags(fake: FakeService) -> None:
    """--verb applies to every --scope; --deny-verb defaults to the granted verbs."""
    fake.reply("CreatePrivate", CREDENTIALS)
    result = run(
        fake,
        "channels",
        "create",
        "private:app.user.42",
        "--subject",
        "alice",
        "--ttl",
        "10m",
        "--scope",
        "private:app.user.42.*",
        "--scope",
        "public:app.**",
        "--verb",
        "subscribe",
        "--verb",
        "publish",
        "--deny-scope",
        "public:app.admin",
    )
    assert result.exit_code == 0, result.output
    assert fake.only_call().body == {
        "name": "private:app.user.42",
        "subject": "alice",
        "ttl_seconds": 600,
        "scopes": [
            {"pattern": "private:app.user.42.*", "verbs": ["subscribe", "publish"], "deny": False},
            {"pattern": "public:app.**", "verbs": ["subscribe", "publish"], "deny": False},
            {"pattern": "public:app.admin", "verbs": ["subscribe", "publish"], "deny": True},
        ],
    }


def test_channels_create_scope_defaults(fake: FakeService) -> None:
    """A bare --scope grants subscribe; --deny-verb picks what a deny scope withholds."""
    fake.reply("CreatePrivate", CREDENTIALS)
    run(
        fake,
        "channels",
        "create",
        "private:app.user.42",
        "-s",
        "alice",
        "--scope",
        "public:app.*",
        "--deny-scope",
        "public:app.secret",
        "--deny-verb",
        "publish",
    )
    assert fake.only_call().body["scopes"] == [
        {"pattern": "public:app.*", "verbs": ["subscribe"], "deny": False},
        {"pattern": "public:app.secret", "verbs": ["publish"], "deny": True},
    ]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--verb", "publish"], "--verb needs at least one --scope"),
        (["--scope", "public:a.b", "--deny-verb", "publish"], "--deny-verb needs"),
        (["--scope", "public:a.b", "--verb", "read"], "'read' is not a verb"),
        (["--scope", "*:a.b"], "--scope"),
        (["--scope", "public:a.**.b"], "--scope"),
        (["--deny-scope", "public:A"], "--deny-scope"),
    ],
)
def test_channels_create_bad_scopes_exit_2(fake: FakeService, flags: list[str], words: str) -> None:
    """Scope mistakes are caught locally: exit 2, a message, and no request."""
    result = run(fake, "channels", "create", "private:app.user.42", "-s", "alice", *flags)
    assert_error(result, 2, words)
    assert fake.calls == []


def test_channels_create_needs_a_subject(fake: FakeService) -> None:
    """The tokens of a private channel belong to someone: --subject is required."""
    missing = run(fake, "channels", "create", "private:app.user.42")
    assert missing.exit_code == 2
    assert "--subject" in missing.stderr
    assert_error(run(fake, "channels", "create", "private:app.user.42", "-s", " "), 2, "--subject")
    assert fake.calls == []


def test_channels_get_and_delete(fake: FakeService) -> None:
    """get prints the channel; delete confirms and its envelope names the channel."""
    fake.reply("GetChannel", {"channel": CHANNEL})
    got = run(fake, "channels", "get", "public:app.lobby")
    assert got.exit_code == 0
    assert "name         public:app.lobby" in got.stdout
    deleted = run(fake, "channels", "delete", "public:app.lobby")
    assert deleted.stdout == "deleted public:app.lobby\n"
    payload = envelope_of(
        run(fake, "channels", "delete", "public:app.lobby", "--json"), "parsec.channel.deleted"
    )
    assert payload == {"channel": "public:app.lobby"}
    assert [call.body for call in fake.calls] == [{"name": "public:app.lobby"}] * 3


# -- errors against the fake ---------------------------------------------------------------


def test_an_error_reply_prints_its_parsec_code_and_exits_1(fake: FakeService) -> None:
    """A Twirp error prints ``PARSEC_CODE: message`` from its meta."""
    fake.reply(
        "GetChannel",
        {
            "code": "not_found",
            "msg": "channel public:app.gone does not exist",
            "meta": {"parsec_code": "PARSEC_CHANNEL_NOT_FOUND"},
        },
        status=404,
    )
    result = run(fake, "channels", "get", "public:app.gone")
    assert_error(result, 1, "PARSEC_CHANNEL_NOT_FOUND: channel public:app.gone does not exist")
    assert result.stdout == ""


def test_an_error_reply_without_a_parsec_code_is_mapped(fake: FakeService) -> None:
    """Without meta.parsec_code the Twirp code is mapped as the Go client does."""
    fake.reply("ListKeys", {"code": "permission_denied", "msg": "not an operator"}, status=403)
    assert_error(run(fake, "keys", "list"), 1, "PARSEC_AUTH_DENIED: not an operator")


def test_a_malformed_reply_without_a_parsec_code_is_invalid_argument(fake: FakeService) -> None:
    """Twirp's ``malformed`` (a request the server could not decode) is the caller's
    bad input, not an internal error."""
    fake.reply("ListKeys", {"code": "malformed", "msg": "not JSON"}, status=400)
    assert_error(run(fake, "keys", "list"), 1, "PARSEC_INVALID_ARGUMENT: not JSON")


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (502, b"<html>Bad Gateway</html>", "HTTP 502"),
        (404, b"404 page not found", "not a management API error"),
        (200, b"not json", "does not send"),
        (200, b'{"channels": "nope"}', "does not send"),
    ],
)
def test_a_reply_that_is_not_the_management_api_exits_1(
    fake: FakeService, status: int, body: bytes, words: str
) -> None:
    """Proxies, other servers and garbage are reported as such, never as a traceback."""
    fake.reply("ListChannels", body, status=status)
    assert_error(run(fake, "channels", "list"), 1, words)


def test_an_unreachable_server_exits_1() -> None:
    """Connection refused is a run-time failure naming the server."""
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("channels", "list", "--server", url, "--token", TOKEN)
    assert_error(result, 1, "cannot reach the server at", url)


def test_a_missing_token_exits_2_before_any_request(fake: FakeService) -> None:
    """Without --token or PARSEC_TOKEN the command says how to get one."""
    result = invoke("channels", "list", "--server", fake.url)
    assert_error(result, 2, "no management token", "PARSEC_TOKEN")
    assert fake.calls == []


@pytest.mark.parametrize("server", ["localhost:8000", "ftp://host", "http://", "http://h/?q=1"])
def test_a_malformed_server_url_exits_2(server: str) -> None:
    """--server must be an http(s) URL with a host."""
    assert_error(invoke("channels", "list", "--server", server, "--token", TOKEN), 2, "--server")


def test_table_cells_are_not_read_as_markup(fake: FakeService) -> None:
    """Server text is printed as is: rich markup in it can neither style nor break a table."""
    fake.reply("ListChannels", {"channels": [{**CHANNEL, "name": "[/]x[bold]y"}]})
    result = run(fake, "channels", "list")
    assert result.exit_code == 0, result.output
    assert "[/]x[bold]y" in result.stdout


def test_the_token_never_appears_in_output(fake: FakeService) -> None:
    """Error output does not echo the bearer token."""
    fake.reply("ListChannels", {"code": "unauthenticated", "msg": "bad token"}, status=401)
    result = run(fake, "channels", "list")
    assert_error(result, 1, "PARSEC_AUTH_EXPIRED")
    assert TOKEN not in result.output


# -- tokens against the fake ---------------------------------------------------------------


def test_tokens_refresh_sends_no_bearer(fake: FakeService) -> None:
    """tokens refresh authenticates with the refresh token alone and prints the new pair."""
    fake.reply(
        "RefreshToken",
        {
            "access_token": "A2",
            "access_expires_unix": "1767225900",
            "refresh_token": "R2",
            "refresh_expires_unix": "1767226500",
            "rotated": True,
        },
    )
    result = run(fake, "tokens", "refresh", "R1")
    assert result.exit_code == 0, result.output
    call = fake.only_call()
    assert call.body == {"refresh_token": "R1"}
    assert "Authorization" not in call.headers
    assert "access_token     A2" in result.stdout
    assert "refresh_token    R2" in result.stdout
    assert "rotated          yes" in result.stdout


def test_tokens_refresh_json(fake: FakeService) -> None:
    """tokens refresh --json prints the parsec.token.refreshed envelope."""
    fake.reply("RefreshToken", {"access_token": "A2", "access_expires_unix": "5"})
    payload = envelope_of(run(fake, "tokens", "refresh", "R1", "--json"), "parsec.token.refreshed")
    assert payload == {
        "access_token": "A2",
        "access_expires_unix": 5,
        "refresh_token": "",
        "refresh_expires_unix": 0,
        "rotated": False,
    }


def test_tokens_mgmt_through_the_server(fake: FakeService) -> None:
    """tokens mgmt asks IssueMgmt (operator, 24h) and prints only the token on stdout."""
    fake.reply(
        "IssueMgmt",
        {"mgmt_token": "M", "expires_unix": "1767312000", "signed_by_key_id": "k-1"},
    )
    result = run(fake, "tokens", "mgmt")
    assert result.exit_code == 0, result.output
    assert result.stdout == "M\n"
    assert "2026-01-02T00:00:00Z" in result.stderr
    assert "k-1" in result.stderr
    call = fake.only_call()
    assert call.body == {"subject": "operator", "ttl_seconds": 86400}
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_tokens_mgmt_with_scopes_defaults_to_manage(fake: FakeService) -> None:
    """--scope on tokens mgmt grants manage unless --verb says otherwise."""
    fake.reply("IssueMgmt", {"mgmt_token": "M", "expires_unix": "1", "signed_by_key_id": "k"})
    payload = envelope_of(
        run(fake, "tokens", "mgmt", "-s", "ci", "--ttl", "2h", "--scope", "public:ci.**", "--json"),
        "parsec.token.mgmt",
    )
    assert payload == {"mgmt_token": "M", "expires_unix": 1, "signed_by_key_id": "k"}
    assert fake.only_call().body == {
        "subject": "ci",
        "ttl_seconds": 7200,
        "scopes": [{"pattern": "public:ci.**", "verbs": ["manage"], "deny": False}],
    }


def test_tokens_revoke_and_revoke_user(fake: FakeService) -> None:
    """revoke sends the token id, user and reason; revoke-user the user and reason."""
    revoked = run(fake, "tokens", "revoke", "jti-1", "-u", "alice", "-r", "leaked")
    assert revoked.stdout == "revoked token jti-1\n"
    payload = envelope_of(
        run(fake, "tokens", "revoke-user", "bob", "--reason", "left", "--json"),
        "parsec.token.user_revoked",
    )
    assert payload == {"user_id": "bob", "reason": "left"}
    assert [(call.method, call.body) for call in fake.calls] == [
        ("RevokeToken", {"token_id": "jti-1", "user_id": "alice", "reason": "leaked"}),
        ("RevokeUser", {"user_id": "bob", "reason": "left"}),
    ]


def test_tokens_revoke_json_envelope(fake: FakeService) -> None:
    """revoke --json prints parsec.token.revoked with what was sent."""
    payload = envelope_of(run(fake, "tokens", "revoke", "jti-9", "--json"), "parsec.token.revoked")
    assert payload == {"token_id": "jti-9", "user_id": "", "reason": ""}
    assert fake.only_call().body == {"token_id": "jti-9"}


def test_tokens_mgmt_with_an_empty_subject_exits_2(fake: FakeService) -> None:
    """A blank --subject is refused locally."""
    assert_error(run(fake, "tokens", "mgmt", "--subject", " "), 2, "--subject")
    assert fake.calls == []


# -- tokens mgmt minted locally ------------------------------------------------------------


def test_tokens_mgmt_minted_locally_is_an_operator_token(tmp_path: Path) -> None:
    """--state-dir mints, with no server, a 24 h operator token the keyring verifies."""
    state = tmp_path / "state"
    ring = KeyRing.open(state)
    result = invoke("tokens", "mgmt", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    claims = ParsecTokens(ring).verify(result.stdout.strip(), "mgmt")
    assert claims.sub == "operator"
    assert claims.exp - claims.iat == 86400
    assert claims.scopes == OPERATOR_SCOPES
    assert ring.active.id in result.stderr


def test_tokens_mgmt_minted_locally_with_scopes_and_clamped_ttl(tmp_path: Path) -> None:
    """Local minting honours --scope/--deny-scope and clamps --ttl to at least 1 h."""
    state = tmp_path / "state"
    ring = KeyRing.open(state)
    result = invoke(
        "tokens",
        "mgmt",
        "--state-dir",
        str(state),
        "--subject",
        "ci",
        "--ttl",
        "1m",
        "--scope",
        "public:ci.**",
        "--deny-scope",
        "public:ci.prod",
        "--json",
    )
    payload = envelope_of(result, "parsec.token.mgmt")
    claims = ParsecTokens(ring).verify(payload["mgmt_token"], "mgmt")
    assert claims.sub == "ci"
    assert claims.exp - claims.iat == 3600
    assert payload["expires_unix"] == claims.exp
    assert payload["signed_by_key_id"] == ring.active.id
    assert claims.scopes == (
        Scope("public:ci.**", ("manage",)),
        Scope("public:ci.prod", ("manage",), deny=True),
    )


def test_tokens_mgmt_with_an_unusable_keyring_exits_1(tmp_path: Path) -> None:
    """A corrupt keyring file is reported with its code, not a traceback."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "keyring.json").write_text("{not json")
    assert_error(invoke("tokens", "mgmt", "--state-dir", str(state)), 1, "PARSEC_INTERNAL")


# -- keys against the fake -----------------------------------------------------------------

NEW_KEY = {
    "id": "k-000000000002",
    "role": "active",
    "created_at": "2025-12-15T00:00:00Z",
    "retired_at": "",
    "alg": "EdDSA",
}
KEYS = {
    "active_key_id": "k-000000000002",
    "keys": [
        {
            "id": "k-000000000001",
            "role": "retired",
            "created_at": "2025-12-01T00:00:00Z",
            "retired_at": "2026-01-01T00:00:00Z",
            "alg": "HS256",
        },
        NEW_KEY,
    ],
}


def test_keys_list_table_and_json(fake: FakeService) -> None:
    """keys list shows each key's id, role and alg; --json carries the active key id."""
    fake.reply("ListKeys", KEYS)
    result = run(fake, "keys", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["ID", "ROLE", "ALG", "CREATED", "RETIRED"]
    assert rows[1][:3] == ["k-000000000001", "retired", "HS256"]
    assert rows[2][:3] == ["k-000000000002", "active", "EdDSA"]
    assert rows[2][4] == "-"
    assert envelope_of(run(fake, "keys", "list", "--json"), "parsec.keys.list") == KEYS


@pytest.mark.parametrize(
    ("flag", "wire"),
    [([], "HS256"), (["--alg", "rs256"], "RS256"), (["--alg", "EdDSA"], "EdDSA")],
)
def test_keys_generate_sends_the_wire_alg(fake: FakeService, flag: list[str], wire: str) -> None:
    """--alg is case-insensitive and sent in JOSE spelling; HS256 by default."""
    fake.reply("GenerateKey", {**NEW_KEY, "role": "verify-only"})
    result = run(fake, "keys", "generate", *flag)
    assert result.exit_code == 0, result.output
    assert fake.only_call().body == {"alg": wire}
    assert "role        verify-only" in result.stdout


def test_keys_generate_with_an_unknown_alg_exits_2(fake: FakeService) -> None:
    """An algorithm outside the list is a usage error."""
    result = run(fake, "keys", "generate", "--alg", "hs512")
    assert result.exit_code == 2
    assert fake.calls == []


def test_keys_promote_retire_reload(fake: FakeService) -> None:
    """promote / retire send the key id, reload nothing; each says what happened."""
    assert "promoted k-1" in run(fake, "keys", "promote", "k-1").stdout
    assert "retired k-0" in run(fake, "keys", "retire", "k-0").stdout
    assert run(fake, "keys", "reload").stdout == "keyring reloaded\n"
    assert [(call.method, call.body) for call in fake.calls] == [
        ("PromoteKey", {"id": "k-1"}),
        ("RetireKey", {"id": "k-0"}),
        ("ReloadKeys", {}),
    ]


@pytest.mark.parametrize(
    ("args", "kind", "payload"),
    [
        (["promote", "k-1"], "parsec.key.promoted", {"id": "k-1"}),
        (["retire", "k-1"], "parsec.key.retired", {"id": "k-1"}),
        (["reload"], "parsec.keys.reloaded", {"ok": True}),
    ],
)
def test_keys_json_envelopes(
    fake: FakeService, args: list[str], kind: str, payload: dict[str, Any]
) -> None:
    """Each key command has its envelope kind and payload."""
    assert envelope_of(run(fake, "keys", *args, "--json"), kind) == payload


def test_keys_retire_of_the_active_key_shows_the_code(fake: FakeService) -> None:
    """The server's PARSEC_KEY_ACTIVE refusal reaches the user as exit 1 with its code."""
    fake.reply(
        "RetireKey",
        {
            "code": "failed_precondition",
            "msg": "cannot retire the active key",
            "meta": {"parsec_code": "PARSEC_KEY_ACTIVE"},
        },
        status=412,
    )
    assert_error(run(fake, "keys", "retire", "k-2"), 1, "PARSEC_KEY_ACTIVE")


# -- keys export / import ------------------------------------------------------------------


def key_ids(ring: KeyRing) -> set[str]:
    keys = ring.keys()
    return {key.id for key in keys}


def test_keys_export_then_import_moves_a_keyring(tmp_path: Path) -> None:
    """A keyring exported from one state dir and imported into another signs alike."""
    source = KeyRing.open(tmp_path / "a")
    source.generate("ES256")
    exported = invoke("keys", "export", "--state-dir", str(tmp_path / "a"))
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["active_key_id"] == source.active.id
    result = invoke("keys", "import", "--state-dir", str(tmp_path / "b"), input=exported.stdout)
    assert result.exit_code == 0, result.output
    target = KeyRing.open(tmp_path / "b")
    assert target.active.id == source.active.id
    assert key_ids(source) <= key_ids(target)
    assert f"imported 2 keys into {tmp_path / 'b' / 'keyring.json'}" in result.stdout


def test_keys_export_to_a_file_is_private(tmp_path: Path) -> None:
    """--out writes the document readable by its owner only, even over a wider file."""
    KeyRing.open(tmp_path / "a")
    out = tmp_path / "snapshot.json"
    out.write_text("old")
    out.chmod(0o644)
    result = invoke("keys", "export", "--state-dir", str(tmp_path / "a"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    imported = invoke(
        "keys", "import", "--state-dir", str(tmp_path / "b"), "--in", str(out), "--json"
    )
    payload = envelope_of(imported, "parsec.keys.imported")
    assert payload == {"active_key_id": KeyRing.open(tmp_path / "a").active.id, "keys": 1}


def test_keys_export_without_a_keyring_exits_2(tmp_path: Path) -> None:
    """Exporting a directory with no keyring fails, naming where it looked, instead of
    inventing one."""
    result = invoke("keys", "export", "--state-dir", str(tmp_path / "empty"))
    assert_error(result, 2, f"no keyring at {tmp_path / 'empty' / 'keyring.json'}")
    assert "--state-dir DIR or PARSEC_STATE_DIR" in result.stderr
    assert not (tmp_path / "empty").exists()


def test_keys_import_of_a_bad_document_exits_1(tmp_path: Path) -> None:
    """A document that is not a keyring is refused with PARSEC_INVALID_ARGUMENT."""
    result = invoke("keys", "import", "--state-dir", str(tmp_path / "b"), input='{"a": 1}')
    assert_error(result, 1, "PARSEC_INVALID_ARGUMENT")


def test_keys_import_of_a_conflicting_key_needs_force(tmp_path: Path) -> None:
    """A key id present locally with other material is refused unless --force."""
    ring = KeyRing.open(tmp_path / "a")
    document = json.loads(ring.snapshot_json())
    document["keys"][0]["secret_hex"] = "ab" * 32
    data = json.dumps(document)
    refused = invoke("keys", "import", "--state-dir", str(tmp_path / "a"), input=data)
    assert_error(refused, 1, "PARSEC_INVALID_ARGUMENT")
    forced = invoke("keys", "import", "--state-dir", str(tmp_path / "a"), "--force", input=data)
    assert forced.exit_code == 0, forced.output
    assert KeyRing.open(tmp_path / "a").active.secret == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--in", "missing.json"], "cannot read --in"), ([], "empty")],
)
def test_keys_import_without_input_exits_2(tmp_path: Path, args: list[str], words: str) -> None:
    """A missing --in file or empty stdin is a usage error."""
    result = invoke("keys", "import", "--state-dir", str(tmp_path / "b"), *args, input="")
    assert_error(result, 2, words)


# -- manifest against the fake -------------------------------------------------------------


def test_manifest_prints_the_fields(fake: FakeService) -> None:
    """parsec manifest GETs /manifest without a bearer and prints one field per line."""
    result = run(fake, "manifest")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "service       parsec",
        "version       0.1.0",
        "key_rotation  supported",
    ]
    call = fake.only_call()
    assert call.method == "GET /manifest"
    assert "Authorization" not in call.headers


def test_manifest_json_is_the_server_envelope(fake: FakeService) -> None:
    """--json prints the envelope exactly as the server sent it."""
    result = run(fake, "manifest", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == MANIFEST


@pytest.mark.parametrize(
    "reply",
    [(200, b'{"kind": "other", "payload": {}}'), (200, b"[]"), (500, b"oops")],
)
def test_manifest_from_something_else_exits_1(fake: FakeService, reply: tuple[int, bytes]) -> None:
    """A reply that is not a manifest envelope is an error, not a crash."""
    fake.manifest = reply
    assert_error(run(fake, "manifest"), 1)


# -- the client alone ----------------------------------------------------------------------


def mock_client(handler: Any, token: str | None = TOKEN) -> ManagementClient:
    """A client whose requests ``handler(request) -> httpx.Response`` answers."""
    return ManagementClient("http://parsec.test/", token, transport=httpx.MockTransport(handler))


def test_client_publish_sends_base64_json_and_decodes_the_offset() -> None:
    """Publish data travels as base64 of its JSON; the uint64 offset comes back an int."""
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"offset": "18446744073709551615", "epoch": "e"})

    with mock_client(handler) as client:
        ack = client.publish("public:app.lobby", {"text": "hi"})
    assert ack.offset == 2**64 - 1
    assert ack.epoch == "e"
    path, body = seen[0]
    assert path == "/twirp/parsec.ParsecService/Publish"
    assert json.loads(base64.b64decode(body["data"])) == {"text": "hi"}


def test_client_presence_and_manifest_rpc() -> None:
    """Presence returns the subscriber count; Manifest decodes its base64 envelope."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Presence"):
            return httpx.Response(200, json={"subscribers": 3})
        assert "Authorization" not in request.headers
        payload = base64.b64encode(json.dumps(MANIFEST).encode()).decode()
        return httpx.Response(200, json={"payload": payload})

    with mock_client(handler) as client:
        assert client.presence("public:app.lobby") == 3
        assert client.manifest() == MANIFEST


def test_client_error_carries_every_field() -> None:
    """ManagementError exposes the Parsec code, Twirp code, HTTP status and message."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"code": "already_exists", "msg": "taken", "meta": {"parsec_code": "X_CODE"}}
        return httpx.Response(409, json=body)

    with mock_client(handler) as client, pytest.raises(ManagementError) as caught:
        client.create_private("private:app.user.1", "alice")
    error = caught.value
    assert (error.parsec_code, error.twirp_code, error.status, error.message) == (
        "X_CODE",
        "already_exists",
        409,
        "taken",
    )


def test_client_timeout_is_a_transport_error() -> None:
    """A request that times out raises ManagementTransportError saying so."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with mock_client(handler) as client, pytest.raises(ManagementTransportError, match="in time"):
        client.list_keys()


def test_client_rejects_a_url_without_a_host() -> None:
    """Constructing a client for a malformed URL raises ValueError."""
    with pytest.raises(ValueError, match="http"):
        ManagementClient("parsec.example.com")


# -- against a real Parsec -----------------------------------------------------------------


@dataclass
class LiveServer:
    """A real Parsec serving on a free port in a background thread's event loop."""

    server: TestServer
    loop: asyncio.AbstractEventLoop
    token: str
    """A full operator management token, as ``parsec serve`` prints at start."""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state_dir(self) -> Path:
        state_dir = self.server.parsec.options.auth.state_dir
        assert state_dir is not None
        return state_dir

    def cli(self, *args: str, token: str | None = None, input: str | None = None) -> Result:
        """The CLI against this server, with ``token`` (default: the operator's)."""
        env = {"PARSEC_SERVER": self.url, "PARSEC_TOKEN": token or self.token}
        return invoke(*args, input=input, env=env)

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """A real Parsec (``parsec.testing.serve_for_tests``) for one test."""
    loop = asyncio.new_event_loop()
    started: queue.Queue[TestServer | BaseException] = queue.Queue()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            async with serve_for_tests() as server:
                started.put(server)
                await stop.wait()
        except BaseException as exc:
            started.put(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    outcome = started.get(timeout=30)
    if isinstance(outcome, BaseException):
        thread.join()
        loop.close()
        raise outcome
    token = outcome.parsec.issue_mgmt("operator").token
    try:
        yield LiveServer(outcome, loop, token)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


def test_live_channel_lifecycle(live: LiveServer) -> None:
    """open, list, get and delete a public channel; a deleted channel is not found."""
    opened = live.cli("channels", "open", "public:app.lobby", "--ttl", "45m", "--json")
    channel = envelope_of(opened, "parsec.channel.open")["channel"]
    assert channel["name"] == "public:app.lobby"
    assert channel["state"] == "open"
    assert channel["ttl_seconds"] == 2700
    listed = live.cli("channels", "list")
    assert listed.stdout.splitlines()[1].split()[:3] == ["public:app.lobby", "open", "45m"]
    got = envelope_of(
        live.cli("channels", "get", "public:app.lobby", "--json"), "parsec.channel.get"
    )
    assert got["channel"]["created_at"] == channel["created_at"]
    assert live.cli("channels", "delete", "public:app.lobby").exit_code == 0
    gone = live.cli("channels", "get", "public:app.lobby")
    assert_error(gone, 1, "PARSEC_CHANNEL_NOT_FOUND")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["channels", "open", "Public:App"], "PARSEC_CHANNEL_INVALID"),
        (["channels", "create", "private:app.user", "-s", "u"], "PARSEC_CHANNEL_INVALID"),
        (["channels", "create", "private:app.user.1", "-s", "u", "--ttl", "2h"], "TTL_EXCEEDS"),
        (["channels", "delete", "public:app.nothing"], "PARSEC_CHANNEL_NOT_FOUND"),
        (["keys", "promote", "k-000000000000"], "PARSEC_KEY_NOT_FOUND"),
        (["tokens", "refresh", "not-a-token"], "PARSEC_AUTH_DENIED"),
    ],
)
def test_live_bad_input_gets_its_code(live: LiveServer, args: list[str], code: str) -> None:
    """Each bad input exits 1 with the server's PARSEC_* code, never a traceback."""
    assert_error(live.cli(*args), 1, code)


def test_live_create_refresh_and_reuse(live: LiveServer) -> None:
    """A refresh rotates the credentials; reusing a spent refresh token revokes the family."""
    created = live.cli("channels", "create", "private:app.user.42", "-s", "alice", "--json")
    credentials = envelope_of(created, "parsec.channel.credentials")
    assert credentials["access_expires_unix"] <= credentials["refresh_expires_unix"]
    first = credentials["refresh_token"]
    rotated = envelope_of(live.cli("tokens", "refresh", first, "--json"), "parsec.token.refreshed")
    assert rotated["rotated"] is True
    assert rotated["refresh_token"] != first
    assert_error(live.cli("tokens", "refresh", first), 1, "PARSEC_AUTH_DENIED")
    assert_error(live.cli("tokens", "refresh", rotated["refresh_token"]), 1, "PARSEC_AUTH_DENIED")


def test_live_created_channel_is_subscribable_with_its_access_token(live: LiveServer) -> None:
    """centrifuge-python subscribes with the created access token there and nowhere else."""
    created = live.cli("channels", "create", "private:app.user.42", "-s", "alice", "--json")
    access = envelope_of(created, "parsec.channel.credentials")["access_token"]
    envelope_of(
        live.cli("channels", "create", "private:app.user.43", "-s", "bob", "--json"),
        "parsec.channel.credentials",
    )
    assert live.run(_subscribe(live, "private:app.user.42", access)) == "subscribed"
    assert live.run(_subscribe(live, "private:app.user.43", access)) == "refused"
    assert live.run(_subscribe(live, "private:app.user.42", None)) == "refused"


async def _subscribe(live: LiveServer, channel: str, token: str | None) -> str:
    """``subscribed`` or ``refused``: what the official Python SDK sees."""
    from centrifuge import Client, SubscriptionState

    client = Client(live.server.ws_url, token=live.server.connection_token("alice"))
    subscribed = asyncio.Event()
    failed = asyncio.Event()
    try:
        await client.connect()
        sub = client.new_subscription(channel, token=token or "")

        async def on_subscribed(ctx: Any) -> None:
            subscribed.set()

        async def on_unsubscribed(ctx: Any) -> None:
            failed.set()

        sub.events.on_subscribed = on_subscribed
        sub.events.on_unsubscribed = on_unsubscribed
        await sub.subscribe()
        waiters = {asyncio.ensure_future(e.wait()) for e in (subscribed, failed)}
        await asyncio.wait(waiters, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        assert subscribed.is_set() or failed.is_set(), sub.state
        return "subscribed" if sub.state == SubscriptionState.SUBSCRIBED else "refused"
    finally:
        await client.disconnect()


def test_live_key_rotation(live: LiveServer) -> None:
    """Old-key tokens work while the key verifies, not once retired; the active key stays."""
    old = envelope_of(live.cli("keys", "list", "--json"), "parsec.keys.list")["active_key_id"]
    new = envelope_of(
        live.cli("keys", "generate", "--alg", "eddsa", "--json"), "parsec.key.generated"
    )
    assert (new["role"], new["alg"]) == ("verify-only", "EdDSA")
    assert live.cli("keys", "promote", new["id"]).exit_code == 0
    minted = envelope_of(live.cli("tokens", "mgmt", "--json"), "parsec.token.mgmt")
    assert minted["signed_by_key_id"] == new["id"]
    fresh = minted["mgmt_token"]
    assert live.cli("channels", "list").exit_code == 0  # the old key verifies
    assert live.cli("keys", "retire", old, token=fresh).exit_code == 0
    assert_error(live.cli("channels", "list"), 1, "PARSEC_AUTH")
    assert_error(live.cli("keys", "retire", new["id"], token=fresh), 1, "PARSEC_KEY_ACTIVE")
    ring = envelope_of(live.cli("keys", "list", "--json", token=fresh), "parsec.keys.list")
    roles = {key["id"]: key["role"] for key in ring["keys"]}
    assert roles == {old: "retired", new["id"]: "active"}


def test_live_import_then_reload(live: LiveServer, tmp_path: Path) -> None:
    """A keyring imported into the server's state dir takes effect on `keys reload`."""
    other = KeyRing.open(tmp_path / "other")
    exported = invoke("keys", "export", "--state-dir", str(tmp_path / "other"))
    imported = invoke("keys", "import", "--state-dir", str(live.state_dir), input=exported.stdout)
    assert imported.exit_code == 0, imported.output
    assert live.cli("keys", "reload").stdout == "keyring reloaded\n"
    ring = envelope_of(live.cli("keys", "list", "--json"), "parsec.keys.list")
    assert ring["active_key_id"] == other.active.id


def test_live_scoped_mgmt_token(live: LiveServer) -> None:
    """A mgmt token scoped to public:team.** manages only those channels."""
    minted = live.cli("tokens", "mgmt", "-s", "team", "--scope", "public:team.**")
    scoped = minted.stdout.strip()
    live.cli("channels", "open", "public:other.room")
    assert live.cli("channels", "open", "public:team.room", token=scoped).exit_code == 0
    denied = live.cli("channels", "open", "public:other.x", token=scoped)
    assert_error(denied, 1, "PARSEC_AUTH_DENIED")
    assert_error(live.cli("keys", "list", token=scoped), 1, "PARSEC_AUTH_DENIED")
    listed = envelope_of(
        live.cli("channels", "list", "--json", token=scoped), "parsec.channels.list"
    )
    assert [channel["name"] for channel in listed["channels"]] == ["public:team.room"]


def test_live_revocations(live: LiveServer) -> None:
    """revoke refuses one token by its jti; revoke-user every token the user holds."""
    one = live.cli("tokens", "mgmt", "-s", "ci").stdout.strip()
    two = live.cli("tokens", "mgmt", "-s", "deploy").stdout.strip()
    jti = jwt.decode(one, options={"verify_signature": False})["jti"]
    assert live.cli("tokens", "revoke", jti, "-u", "ci", "-r", "leaked").exit_code == 0
    assert_error(live.cli("channels", "list", token=one), 1, "PARSEC_AUTH")
    assert live.cli("channels", "list", token=two).exit_code == 0
    assert live.cli("tokens", "revoke-user", "deploy").exit_code == 0
    assert_error(live.cli("channels", "list", token=two), 1, "PARSEC_AUTH")


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_live_a_bad_token_is_unauthenticated(live: LiveServer, token: str) -> None:
    """A token that is not a valid management token exits 1 with a PARSEC_AUTH code."""
    assert_error(live.cli("channels", "list", token=token), 1, "PARSEC_AUTH")


def test_live_a_non_mgmt_token_is_refused(live: LiveServer) -> None:
    """A channel access token is not a management token."""
    created = live.cli("channels", "create", "private:app.user.7", "-s", "eve", "--json")
    access = envelope_of(created, "parsec.channel.credentials")["access_token"]
    assert_error(live.cli("channels", "list", token=access), 1, "PARSEC_AUTH")


def test_live_manifest(live: LiveServer) -> None:
    """parsec manifest shows the server's manifest; --json its parsec.manifest envelope."""
    text = live.cli("manifest")
    assert text.exit_code == 0, text.output
    assert any(line.split() == ["service", "parsec"] for line in text.stdout.splitlines())
    payload = envelope_of(live.cli("manifest", "--json"), "parsec.manifest")
    assert payload["service"] == "parsec"
