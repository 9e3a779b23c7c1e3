"""The ``parsec`` command line: exit codes, stdout/stderr contents and end-to-end runs."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_runs import (
    Proc,
    assert_clean_error,
    assert_one_line_error,
    invoke,
)
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve

import parsec
from parsec.auth.keyring import KeyRing
from parsec.auth.tokens import InvalidToken, TokenVerifier
from parsec.cli.subscribe import websocket_url
from parsec.testing import free_port

CHAT_CONFIG = """
[api]
key = "test-key"
[[namespaces]]
name = "chat"
history_size = 100
history_ttl = "300s"
force_recovery = true
allow_subscribe_for_client = true
"""


pytestmark = pytest.mark.usefixtures("hermetic")


# -- fake servers ---------------------------------------------------------------------------


class FakeApi:
    """A stand-in for ``/api``: records requests and answers with a fixed response."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b'{"result": {"offset": 1, "epoch": "ep"}}'
        self.requests: list[tuple[str, dict[str, str], bytes]] = []


@pytest.fixture
def fake_api() -> Iterator[tuple[str, FakeApi]]:
    """A local HTTP server playing the server API; yields its base URL."""
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            api.requests.append((self.path, dict(self.headers.items()), body))
            self.send_response(api.status)
            self.send_header("Content-Length", str(len(api.body)))
            self.end_headers()
            self.wfile.write(api.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", api
    server.shutdown()
    server.server_close()
    thread.join()


class FakeCentrifugo:
    """A scripted client-protocol server: replies to connect and subscribe, sends
    ``pushes``, then closes with ``close`` or waits for the client to leave. The default
    close is terminal (3503): after a reconnect code `parsec subscribe` would come back."""

    def __init__(self) -> None:
        self.subscribe_reply: dict[str, Any] = {"subscribe": {"epoch": "ep", "offset": 2}}
        self.pushes: list[dict[str, Any]] = []
        self.close: tuple[int, str] | None = (3503, "force disconnect")
        self.commands: list[dict[str, Any]] = []

    def handler(self, ws: ServerConnection) -> None:
        connect = json.loads(ws.recv())
        self.commands.append(connect)
        ws.send(json.dumps({"id": connect["id"], "connect": {"client": "c-1", "ping": 25}}))
        subscribe = json.loads(ws.recv())
        self.commands.append(subscribe)
        ws.send(json.dumps({"id": subscribe["id"], **self.subscribe_reply}))
        if self.pushes:
            ws.send("\n".join(json.dumps(push) for push in self.pushes))
        if self.close is None:
            for _ in ws:
                pass
        else:
            ws.close(*self.close)


@pytest.fixture
def fake_ws() -> Iterator[tuple[str, FakeCentrifugo]]:
    """A FakeCentrifugo on a loopback port; yields its http:// base URL."""
    fake = FakeCentrifugo()
    server = ws_serve(fake.handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", fake
    server.shutdown()
    thread.join()


def pub(offset: int, data: object, channel: str = "chat:a") -> dict[str, Any]:
    return {"push": {"channel": channel, "pub": {"data": data, "offset": offset}}}


# -- parsec serve ---------------------------------------------------------------------------


def test_serve_with_a_bad_config_file_names_the_key(tmp_path: Path) -> None:
    """A bad value in the file exits 2 with a message naming its key path."""
    config = tmp_path / "bad.toml"
    config.write_text('[[namespaces]]\nname = "chat"\nhistory_ttl = "soon"')
    result = invoke("serve", "--config", str(config))
    assert_clean_error(result, 2, "namespaces[0].history_ttl", "invalid duration 'soon'")


def test_serve_with_a_bad_token_broker_table_names_the_key(tmp_path: Path) -> None:
    """A wrong type under [[token_broker.roles]] exits 2 naming the key path."""
    config = tmp_path / "bad.toml"
    config.write_text(
        '[token_broker]\nenabled = true\n[[token_broker.roles]]\nname = "m"\npatterns = "chat:*"'
    )
    result = invoke("serve", "--config", str(config))
    assert_clean_error(result, 2, "token_broker.roles[0].patterns", "expected an array")


def test_serve_reads_parsec_config(tmp_path: Path) -> None:
    """The file named by PARSEC_CONFIG is read, and its errors reported."""
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 1")
    result = invoke("serve", env={"PARSEC_CONFIG": str(config)})
    assert_clean_error(result, 2, "server.port", "unknown key")


def test_serve_with_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    """A config path that does not exist exits 2."""
    result = invoke("serve", "-c", str(tmp_path / "absent.toml"))
    assert_clean_error(result, 2, "config file not found")


def test_serve_with_invalid_toml_exits_2(tmp_path: Path) -> None:
    """A TOML syntax error exits 2 naming the file."""
    config = tmp_path / "broken.toml"
    config.write_text("[server\n")
    assert_clean_error(invoke("serve", "-c", str(config)), 2, "invalid TOML", str(config))


def test_serve_with_a_bad_environment_value_names_the_variable() -> None:
    """A bad PARSEC_ADDR exits 2 naming the variable."""
    result = invoke("serve", env={"PARSEC_ADDR": "nowhere"})
    assert_clean_error(result, 2, "PARSEC_ADDR", "host:port")


def test_serve_with_a_bad_jwks_url_exits_2(tmp_path: Path) -> None:
    """An [auth] jwks_url that is not an http(s) URL exits 2 naming auth.jwks_url."""
    config = tmp_path / "parsec.toml"
    config.write_text('[auth]\njwks_url = "file:///etc/jwks.json"')
    assert_clean_error(invoke("serve", "-c", str(config)), 2, "auth.jwks_url", "http")


def test_serve_with_a_bad_addr_flag_exits_2() -> None:
    """A bad --addr exits 2 naming server.addr."""
    assert_clean_error(invoke("serve", "--addr", "localhost"), 2, "server.addr")


def test_serve_with_an_unusable_keyring_exits_1(tmp_path: Path) -> None:
    """A corrupt keyring.json in the state directory exits 1 naming the file."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "keyring.json").write_text("{not json")
    result = invoke("serve", "--state-dir", str(state), "--addr", f"127.0.0.1:{free_port()}")
    assert_clean_error(result, 1, "keyring.json")


def test_serve_help_documents_the_default_state_dir() -> None:
    """serve --help says the state directory defaults to .parsec and lists every flag."""
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for flag in (
        "--config",
        "-c",
        "--addr",
        "-a",
        "--state-dir",
        "--api-key",
        "--allow-anonymous",
        "--log-level",
        ".parsec",
    ):
        assert flag in result.stdout


def test_top_level_help_lists_the_commands() -> None:
    """parsec --help lists serve, tokens, publish and subscribe."""
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("serve", "tokens", "publish", "subscribe"):
        assert command in result.stdout


# -- parsec tokens --------------------------------------------------------------------------


def verifier(state_dir: Path) -> TokenVerifier:
    return TokenVerifier(KeyRing.open(state_dir))


@pytest.fixture
def server_keyring(tmp_path: Path) -> KeyRing:
    """The keyring in ./.parsec, as `parsec serve` in this directory leaves it (the
    commands that mint never create one: see test_cli_keyring.py)."""
    return KeyRing.open(tmp_path / ".parsec")


@pytest.mark.usefixtures("server_keyring")
def test_connect_token_is_the_only_output_and_verifies(tmp_path: Path) -> None:
    """tokens connect prints one token, signed by the .parsec keyring, with the claims."""
    result = invoke(
        "tokens",
        "connect",
        "--sub",
        "alice",
        "--channel",
        "chat:a",
        "--channel",
        "chat:b",
        "--info",
        '{"name": "Alice"}',
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = verifier(tmp_path / ".parsec").verify_connection(token)
    assert claims.user == "alice"
    assert [s.channel for s in claims.subscriptions] == ["chat:a", "chat:b"]
    assert json.loads(claims.info or b"") == {"name": "Alice"}
    assert claims.exp is not None
    assert claims.iat is not None
    assert claims.exp - claims.iat == 3600


@pytest.mark.usefixtures("server_keyring")
@pytest.mark.parametrize(("ttl", "lifetime"), [("90s", 90), ("1h30m", 5400), ("0", None)])
def test_connect_token_ttl(tmp_path: Path, ttl: str, lifetime: int | None) -> None:
    """--ttl sets the lifetime; 0 mints a token that never expires."""
    result = invoke("tokens", "connect", "--sub", "bob", "--ttl", ttl)
    claims = verifier(tmp_path / ".parsec").verify_connection(result.stdout.strip())
    lived = None if claims.exp is None else claims.exp - (claims.iat or 0)
    assert lived == lifetime


@pytest.mark.usefixtures("server_keyring")
def test_subscription_token_verifies(tmp_path: Path) -> None:
    """tokens subscription prints a token for the user and channel."""
    result = invoke("tokens", "subscription", "--sub", "alice", "--channel", "private:x")
    assert result.exit_code == 0, result.output
    claims = verifier(tmp_path / ".parsec").verify_subscription(result.stdout.strip())
    assert (claims.user, claims.channel) == ("alice", "private:x")


def test_state_dir_precedence_flag_env_file(tmp_path: Path) -> None:
    """The keyring comes from --state-dir, else PARSEC_STATE_DIR, else the config file."""
    config = tmp_path / "parsec.toml"
    config.write_text('[auth]\nstate_dir = "from-file"')
    dirs = {name: tmp_path / f"from-{name}" for name in ("file", "env", "flag")}
    rings = {name: KeyRing.open(path) for name, path in dirs.items()}

    def signer(*args: str, env: dict[str, str] | None = None) -> str:
        token = invoke("tokens", "connect", "--sub", "u", "-c", str(config), *args, env=env)
        for name, ring in rings.items():
            try:
                TokenVerifier(ring).verify_connection(token.stdout.strip())
            except InvalidToken:
                continue
            return name
        raise AssertionError(f"no keyring verifies {token.output!r}")

    assert signer() == "file"
    env = {"PARSEC_STATE_DIR": str(dirs["env"])}
    assert signer(env=env) == "env"
    assert signer("--state-dir", str(dirs["flag"]), env=env) == "flag"
    assert not (tmp_path / ".parsec").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["connect", "--sub", "u", "--ttl", "forever"], "--ttl: invalid duration"),
        (["connect", "--sub", "u", "--ttl", "-5s"], "--ttl: invalid duration"),
        (["connect", "--sub", "u", "--info", "{oops"], "--info is not valid JSON"),
        (["connect", "--sub", " "], "--sub must not be empty"),
        (["subscription", "--sub", "u", "--channel", ""], "--channel must not be empty"),
    ],
)
def test_bad_token_flags_exit_2(args: list[str], words: str) -> None:
    """Bad --ttl, --info, --sub or --channel values exit 2 with a message."""
    assert_clean_error(invoke("tokens", *args), 2, words)


@pytest.mark.parametrize("args", [["connect"], ["subscription", "--sub", "u"]])
def test_missing_required_token_flags_exit_2(args: list[str]) -> None:
    """A missing --sub or --channel is a usage error (exit 2)."""
    result = invoke("tokens", *args)
    assert result.exit_code == 2
    assert "Missing option" in result.stderr


def test_tokens_with_a_corrupt_keyring_exit_1(tmp_path: Path) -> None:
    """A keyring file that is not a keyring exits 1 naming the file."""
    (tmp_path / ".parsec").mkdir()
    (tmp_path / ".parsec" / "keyring.json").write_text("[]")
    assert_clean_error(invoke("tokens", "connect", "--sub", "u"), 1, "keyring.json")


def test_tokens_with_a_bad_config_exit_2(tmp_path: Path) -> None:
    """A bad config file exits 2 before any keyring is touched."""
    config = tmp_path / "parsec.toml"
    config.write_text("[auth]\nstate_dir = 5")
    result = invoke("tokens", "connect", "--sub", "u", "-c", str(config))
    assert_clean_error(result, 2, "auth.state_dir", "expected a string")
    assert not (tmp_path / ".parsec").exists()


# -- parsec publish -------------------------------------------------------------------------


def test_publish_posts_to_the_api_and_prints_the_result(fake_api: tuple[str, FakeApi]) -> None:
    """--data is sent to /api/publish with X-API-Key; the result is printed as JSON."""
    url, api = fake_api
    result = invoke("publish", "chat:a", "-d", '{"text": "hi"}', "--server", url, "--api-key", "k1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"offset": 1, "epoch": "ep"}
    ((path, headers, body),) = api.requests
    assert path == "/api/publish"
    assert headers["X-API-Key"] == "k1"
    assert json.loads(body) == {"channel": "chat:a", "data": {"text": "hi"}}


def test_publish_reads_a_file(fake_api: tuple[str, FakeApi], tmp_path: Path) -> None:
    """--file sends the file's JSON."""
    url, api = fake_api
    data = tmp_path / "data.json"
    data.write_text('{\n  "multi": ["line"]\n}\n')
    result = invoke("publish", "c", "--file", str(data), "--server", url)
    assert result.exit_code == 0, result.output
    assert json.loads(api.requests[0][2])["data"] == {"multi": ["line"]}
    assert "X-API-Key" not in api.requests[0][1]


def test_publish_reads_stdin_and_environment(fake_api: tuple[str, FakeApi]) -> None:
    """Without --data or --file the JSON comes from stdin; server and key from env."""
    url, api = fake_api
    env = {"PARSEC_SERVER": url + "/", "PARSEC_API_KEY": "env-key"}
    result = invoke("publish", "c", input="[1, 2, 3]", env=env)
    assert result.exit_code == 0, result.output
    path, headers, body = api.requests[0]
    assert (path, headers["X-API-Key"]) == ("/api/publish", "env-key")
    assert json.loads(body)["data"] == [1, 2, 3]


def test_publish_without_result_prints_an_empty_object(fake_api: tuple[str, FakeApi]) -> None:
    """A reply without result (a channel without history) prints {}."""
    url, api = fake_api
    api.body = b"{}"
    result = invoke("publish", "c", "-d", "1", "--server", url)
    assert (result.exit_code, result.stdout) == (0, "{}\n")


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (
            200,
            b'{"error": {"code": 102, "message": "unknown channel"}}',
            "error 102: unknown channel",
        ),
        (401, b"", "rejected the API key (HTTP 401)"),
        (500, b"boom", "HTTP 500"),
        (200, b"<html>", "not JSON"),
        (200, b"[1]", "unexpected reply"),
    ],
)
def test_publish_api_failures_exit_1(
    fake_api: tuple[str, FakeApi], status: int, body: bytes, words: str
) -> None:
    """Error replies, rejected keys and garbage replies exit 1 with a message."""
    url, api = fake_api
    api.status, api.body = status, body
    assert_clean_error(invoke("publish", "c", "-d", "1", "--server", url), 1, words)


def test_publish_to_an_unreachable_server_exits_1() -> None:
    """Nothing listening exits 1 with a clear message."""
    server = f"http://127.0.0.1:{free_port()}"
    result = invoke("publish", "c", "-d", "1", "--server", server)
    assert_clean_error(result, 1, f"cannot reach the server at {server}")


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["-d", "{not json"], None, "not valid JSON"),
        (["-d", "   "], None, "empty"),
        ([], "", "empty"),
        (["-d", "1", "-f", "x.json"], None, "either --data or --file"),
        (["-f", "missing.json"], None, "cannot read --file missing.json"),
    ],
)
def test_publish_bad_data_exits_2(args: list[str], stdin: str | None, words: str) -> None:
    """Data that is missing, unreadable or not JSON exits 2 before anything is sent."""
    result = invoke("publish", "c", *args, "--server", "http://127.0.0.1:1", input=stdin)
    assert_clean_error(result, 2, words)


def test_publish_to_an_empty_channel_exits_2() -> None:
    """An empty channel name exits 2."""
    assert_clean_error(invoke("publish", "", "-d", "1"), 2, "channel must not be empty")


# -- parsec subscribe -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/connection/websocket"),
        ("https://rt.example/", "wss://rt.example/connection/websocket"),
        ("https://rt.example/parsec", "wss://rt.example/parsec/connection/websocket"),
        ("ws://h:1", "ws://h:1/connection/websocket"),
        ("wss://h:1/custom/ws", "wss://h:1/custom/ws"),
    ],
)
def test_websocket_url(server: str, url: str) -> None:
    """--server URLs map to the client-protocol endpoint."""
    assert websocket_url(server) == url


@pytest.mark.parametrize("server", ["ftp://h", "127.0.0.1:8000", "http://"])
def test_subscribe_with_a_bad_server_url_exits_2(server: str) -> None:
    """A --server that is not an http(s) or ws(s) URL exits 2."""
    result = invoke("subscribe", "c", "--server", server, "--token", "t")
    assert_clean_error(result, 2, "--server must be")


def test_since_offset_needs_an_epoch() -> None:
    """--since-offset without --epoch exits 2."""
    result = invoke("subscribe", "c", "--since-offset", "3", "--token", "t")
    assert_clean_error(result, 2, "--since-offset and --epoch")


def test_subscribe_prints_publications_as_ndjson(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """Each publication is one JSON line with channel, offset, epoch and data."""
    url, fake = fake_ws
    fake.pushes = [pub(3, {"n": 3}), pub(4, "four")]
    result = invoke("subscribe", "chat:a", "--server", url, "--token", "tok")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"channel": "chat:a", "offset": 3, "epoch": "ep", "data": {"n": 3}},
        {"channel": "chat:a", "offset": 4, "epoch": "ep", "data": "four"},
    ]
    assert "subscribed to chat:a (epoch ep, offset 2)" in result.stderr
    assert_clean_error(result, 1, "disconnected: 3503 force disconnect")
    assert fake.commands[0]["connect"]["token"] == "tok"
    assert fake.commands[1]["subscribe"] == {"channel": "chat:a"}


def test_subscribe_without_epoch_omits_it(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """Publications of a channel without a stream position have no epoch key."""
    url, fake = fake_ws
    fake.subscribe_reply = {"subscribe": {}}
    fake.pushes = [{"push": {"channel": "news", "pub": {"data": True}}}]
    result = invoke("subscribe", "news", "--server", url, "--token", "tok")
    assert json.loads(result.stdout) == {"channel": "news", "offset": 0, "data": True}


def test_subscribe_recovers_since_an_offset(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """--since-offset/--epoch ask for recovery and print the replayed publications first."""
    url, fake = fake_ws
    replayed = [{"data": "a", "offset": 6}, {"data": "b", "offset": 7}]
    fake.subscribe_reply = {
        "subscribe": {"epoch": "ep", "offset": 7, "recovered": True, "publications": replayed}
    }
    fake.pushes = [pub(8, "c")]
    result = invoke(
        "subscribe",
        "chat:a",
        "--server",
        url,
        "--token",
        "t",
        "--since-offset",
        "5",
        "--epoch",
        "ep",
        "--sub-token",
        "st",
    )
    assert [json.loads(line)["data"] for line in result.stdout.splitlines()] == ["a", "b", "c"]
    assert fake.commands[1]["subscribe"] == {
        "channel": "chat:a",
        "token": "st",
        "recover": True,
        "offset": 5,
        "epoch": "ep",
    }
    assert "lost" not in result.stderr


def test_subscribe_warns_when_recovery_fails(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """When the server cannot recover, a warning says publications were lost."""
    url, fake = fake_ws
    fake.subscribe_reply = {"subscribe": {"epoch": "new", "recovered": False}}
    result = invoke(
        "subscribe",
        "chat:a",
        "--server",
        url,
        "--token",
        "t",
        "--since-offset",
        "5",
        "--epoch",
        "old",
    )
    assert "publications since --since-offset are lost" in result.stderr


def test_subscribe_error_reply_exits_1(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """A subscribe error reply exits 1 printing its code and message."""
    url, fake = fake_ws
    fake.subscribe_reply = {"error": {"code": 103, "message": "permission denied"}}
    fake.close = None
    result = invoke("subscribe", "secret", "--server", url, "--token", "t")
    assert_clean_error(result, 1, "error 103: permission denied")


def test_subscribe_unsubscribe_push_exits_1(fake_ws: tuple[str, FakeCentrifugo]) -> None:
    """A server unsubscribe ends the command with exit 1 and its code."""
    url, fake = fake_ws
    fake.pushes = [
        {"push": {"channel": "c", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}}
    ]
    fake.close = None
    result = invoke("subscribe", "c", "--server", url, "--token", "t")
    assert_clean_error(result, 1, "unsubscribed from c: 2000 server unsubscribe")


def test_subscribe_to_an_unreachable_server_exits_1() -> None:
    """Nothing listening exits 1 with a clear message."""
    result = invoke("subscribe", "c", "--server", f"http://127.0.0.1:{free_port()}", "--token", "t")
    assert_clean_error(result, 1, "cannot connect to ws://127.0.0.1:")


def test_subscribe_mints_a_token_for_sub(
    fake_ws: tuple[str, FakeCentrifugo], tmp_path: Path
) -> None:
    """Without --token, a token for --sub is minted from the state directory's keyring."""
    url, fake = fake_ws
    KeyRing.open(tmp_path / "keys")
    invoke("subscribe", "c", "--server", url, "--sub", "robot", "--state-dir", "keys")
    token = fake.commands[0]["connect"]["token"]
    assert verifier(tmp_path / "keys").verify_connection(token).user == "robot"


@pytest.mark.usefixtures("server_keyring")
def test_subscribe_defaults_to_user_cli(
    fake_ws: tuple[str, FakeCentrifugo], tmp_path: Path
) -> None:
    """The minted token's user defaults to "cli" and the keyring to .parsec."""
    url, fake = fake_ws
    invoke("subscribe", "c", "--server", url)
    token = fake.commands[0]["connect"]["token"]
    assert verifier(tmp_path / ".parsec").verify_connection(token).user == "cli"


def test_subscribe_takes_the_token_from_the_environment(
    fake_ws: tuple[str, FakeCentrifugo],
) -> None:
    """PARSEC_CONNECTION_TOKEN is the connection token; PARSEC_TOKEN (the management
    bearer of other commands) is not used for it."""
    url, fake = fake_ws
    env = {"PARSEC_CONNECTION_TOKEN": "env-token", "PARSEC_TOKEN": "mgmt-token"}
    invoke("subscribe", "c", "--server", url, env=env)
    assert fake.commands[0]["connect"]["token"] == "env-token"


def test_subscribe_exits_0_on_ctrl_c(
    fake_ws: tuple[str, FakeCentrifugo], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """SIGINT ends a running subscribe with exit code 0 after printing what arrived."""
    url, fake = fake_ws
    fake.pushes = [pub(3, "x")]
    fake.close = None
    proc = spawn("subscribe", "chat:a", "--server", url, "--token", "t", cwd=tmp_path)
    proc.wait_for("out", '"data":"x"')
    assert proc.stop(signal.SIGINT) == 0


# -- python -m parsec and end to end -------------------------------------------------------


def test_python_dash_m_parsec_runs_the_cli(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    """python -m parsec --help shows the parsec usage."""
    proc = spawn("--help", cwd=tmp_path)
    proc.wait_for("out", "Usage: parsec")
    assert proc.popen.wait(timeout=30) == 0


@pytest.fixture
def server(spawn: Callable[..., Proc], tmp_path: Path) -> tuple[Proc, str]:
    """A real `parsec serve` with the chat namespace and API key "test-key"."""
    config = tmp_path / "parsec.toml"
    config.write_text(CHAT_CONFIG)
    port = free_port()
    proc = spawn("serve", "-c", str(config), "--addr", f"127.0.0.1:{port}", cwd=tmp_path)
    proc.wait_for("err", "parsec listening on")
    return proc, f"http://127.0.0.1:{port}"


def test_serve_prints_the_banner(server: tuple[Proc, str]) -> None:
    """The banner names the URLs and the token command with the state directory."""
    proc, url = server
    ws = url.replace("http://", "ws://")
    assert f"parsec listening on {url} (websocket {ws}/connection/websocket)" in proc.seen
    line = proc.wait_for("err", " tokens connect --sub alice ")
    assert line.endswith(
        f" --config {Path.cwd() / 'parsec.toml'} --state-dir {Path.cwd() / '.parsec'}"
    )


def test_publish_reaches_subscribe_end_to_end(
    server: tuple[Proc, str], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """A publication made with `parsec publish` is printed by `parsec subscribe`, and a
    later subscribe recovers it from history."""
    _, url = server
    sub = spawn("subscribe", "chat:room", "--server", url, cwd=tmp_path)
    sub.wait_for("err", "subscribed to chat:room")
    result = invoke(
        "publish", "chat:room", "-d", '{"text": "hello"}', "--server", url, "--api-key", "test-key"
    )
    assert result.exit_code == 0, result.output
    position = json.loads(result.stdout)
    line = json.loads(sub.wait_for("out", "hello"))
    assert line == {
        "channel": "chat:room",
        "offset": position["offset"],
        "epoch": position["epoch"],
        "data": {"text": "hello"},
    }
    assert sub.stop(signal.SIGINT) == 0

    late = spawn(
        "subscribe",
        "chat:room",
        "--server",
        url,
        "--since-offset",
        "0",
        "--epoch",
        position["epoch"],
        cwd=tmp_path,
    )
    assert json.loads(late.wait_for("out", "hello")) == line
    assert late.stop(signal.SIGINT) == 0


def test_minted_tokens_work_with_the_server(
    server: tuple[Proc, str], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """A token from `parsec tokens connect` is accepted by the server it shares .parsec with."""
    _, url = server
    token = invoke("tokens", "connect", "--sub", "alice").stdout.strip()
    sub = spawn("subscribe", "chat:x", "--server", url, "--token", token, cwd=tmp_path)
    sub.wait_for("err", "subscribed to chat:x")
    assert sub.stop(signal.SIGINT) == 0


def test_subscribe_to_an_unknown_namespace_exits_1(server: tuple[Proc, str]) -> None:
    """The server's 102 error reply, naming the namespace, is printed; exit 1."""
    _, url = server
    result = invoke("subscribe", "nope:x", "--server", url)
    assert_clean_error(result, 1, "error 102: unknown channel: namespace 'nope' is not configured")


def test_subscribe_with_a_bad_token_exits_1(server: tuple[Proc, str]) -> None:
    """The server's 3500 close for a bad token is printed and the command exits 1."""
    _, url = server
    result = invoke("subscribe", "chat:x", "--server", url, "--token", "not-a-jwt")
    assert_clean_error(result, 1, "disconnected: 3500")


def test_publish_with_a_wrong_api_key_exits_1(server: tuple[Proc, str]) -> None:
    """The real server rejects a wrong API key and publish exits 1."""
    _, url = server
    result = invoke("publish", "chat:x", "-d", "1", "--server", url, "--api-key", "wrong")
    assert_clean_error(result, 1, "rejected the API key")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_signals(server: tuple[Proc, str], sig: int) -> None:
    """SIGTERM and SIGINT stop the server with exit code 0."""
    proc, _ = server
    assert proc.stop(sig) == 0


def test_serve_on_the_port_of_a_running_server_exits_2(
    server: tuple[Proc, str], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """A second server on the port of a running one exits 2 with one line naming the
    address and the flag that changes it."""
    _, url = server
    other = tmp_path / "other"
    other.mkdir()
    addr = url.removeprefix("http://")
    code, stderr = spawn("serve", "--addr", addr, cwd=other).finish()
    assert code == 2, stderr
    assert_one_line_error(stderr, f"cannot listen on {addr}: the address is already in use")
    assert "--addr HOST:PORT" in stderr


def test_version_prints_the_package_version() -> None:
    """`parsec --version` (and -V) prints `parsec <version>` and exits 0."""
    for flag in ("--version", "-V"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert result.stdout.strip() == f"parsec {parsec.__version__}"


def test_short_help_flag_works_on_every_level() -> None:
    """`-h` is `--help` for the root command and its subcommands."""
    assert "Commands" in invoke("-h").stdout
    assert "--broker" in invoke("serve", "-h").stdout
    assert "connect" in invoke("tokens", "-h").stdout


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [
        ("redis://127.0.0.1:6379", "redis", "redis"),
        ("rediss://127.0.0.1:6380", "redis", "redis"),
        ("unix:///tmp/redis.sock", "redis", "redis"),
        ("redis+sentinel://127.0.0.1:26379/mymaster", "redis", "redis"),
        ("redis+cluster://127.0.0.1:7000", "redis", "redis"),
        ("nats://127.0.0.1:4222", "nats", "nats"),
        ("tls://127.0.0.1:4443", "nats", "nats"),
    ],
)
def test_a_broker_without_its_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, driver: str, extra: str
) -> None:
    """Without the driver, every URL scheme of its broker exits 2 with one line naming
    the extra to install."""
    for name in list(sys.modules):
        if name == driver or name.startswith((f"{driver}.", f"parsec.backends.{driver}")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, driver, None)  # what `import <driver>` sees uninstalled
    result = invoke("serve", "--broker", url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"pip install 'parsec-realtime[{extra}]'")
