"""``parsec serve`` that cannot start: one ``parsec: error:`` line saying what to do,
exit code 2, never a traceback; and a browser origin it refuses, logged with the
setting that admits it. The broker cases are in tests/redis/test_redis_serve.py and
tests/nats/test_nats_serve.py; the missing-extra cases in test_cli.py."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_runs import Proc, assert_one_line_error
from oidc_provider import OIDCProvider
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from parsec.backends.factory import BrokerUnreachable, check_reachable
from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")


@pytest.fixture
def listening() -> Iterator[Callable[[bool], int]]:
    """``listening(reuse_port)``: the port of a socket listening on 127.0.0.1 (bound
    with SO_REUSEPORT when asked, as a ``--workers`` server binds), held until the
    test ends."""
    held: list[socket.socket] = []

    def listen(reuse_port: bool) -> int:
        sock = socket.socket()
        held.append(sock)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port: int = sock.getsockname()[1]
        return port

    yield listen
    for sock in held:
        sock.close()


ADDR_WORDS = ("already in use", "--addr HOST:PORT", "PARSEC_ADDR", "[server] addr")


@pytest.mark.parametrize(
    ("args", "env", "reuse_port"),
    [
        pytest.param([], {}, False, id="one-process"),
        pytest.param([], {"PARSEC_WORKER": "0"}, False, id="a-worker-binding-with-reuse-port"),
        pytest.param(["--workers", "2"], {}, False, id="workers"),
        pytest.param(["--workers", "2"], {}, True, id="workers-beside-another-workers-server"),
    ],
)
def test_serve_on_a_port_in_use_exits_2_naming_the_address_and_the_flag(
    spawn: Callable[..., Proc],
    listening: Callable[[bool], int],
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    reuse_port: bool,
) -> None:
    """Another socket listening on the address: one line naming the address and how
    to choose another one, exit 2, whichever process binds (one server, a worker, the
    supervisor of --workers), also when that socket shares ports (SO_REUSEPORT)."""
    addr = f"127.0.0.1:{listening(reuse_port)}"
    if args:  # --workers needs a shared broker; the address is checked first
        env = {**env, "PARSEC_BROKER_URL": "redis://127.0.0.1:6379/0"}
    proc = spawn("serve", "--addr", addr, *args, cwd=tmp_path, env=env)
    code, stderr = proc.finish()
    assert code == 2, stderr
    assert_one_line_error(stderr, f"cannot listen on {addr}", *ADDR_WORDS)


@pytest.mark.parametrize(
    ("addr", "words"),
    [
        ("10.255.254.253:8000", "not an address of this machine"),
        ("host.invalid:8000", "cannot resolve host 'host.invalid'"),
    ],
)
def test_serve_on_an_address_it_cannot_listen_on_exits_2(
    spawn: Callable[..., Proc], tmp_path: Path, addr: str, words: str
) -> None:
    """An address that is not this machine's, or a host that does not resolve, is one
    line naming the address and the flag, exit 2."""
    proc = spawn("serve", "--addr", addr, cwd=tmp_path)
    code, stderr = proc.finish()
    assert code == 2, stderr
    assert_one_line_error(stderr, f"cannot listen on {addr}", words, "--addr HOST:PORT")


# -- browser origins --------------------------------------------------------------------


def test_allowed_origin_flags_admit_origins_and_a_refusal_says_how_to_admit_one(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """--allowed-origin (repeatable, globs) admits those origins; any other is refused
    with 403 and an INFO line naming it and the flag that would admit it."""
    addr = f"127.0.0.1:{free_port()}"
    origins = [
        "--allowed-origin",
        "https://app.example.com",
        "--allowed-origin",
        "https://*.ex.org",
    ]
    proc = spawn("serve", "--addr", addr, "--allow-anonymous", *origins, cwd=tmp_path)
    proc.wait_for("err", "parsec listening on")
    url = f"ws://{addr}/connection/websocket"
    for origin in ("https://app.example.com", "https://x.ex.org"):
        with connect(url, origin=Origin(origin), open_timeout=10) as ws:
            ws.send('{"id":1,"connect":{}}')
            assert '"connect"' in str(ws.recv(timeout=10))
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=Origin("https://evil.example.com"), open_timeout=10)
    assert refused.value.response.status_code == 403
    line = proc.wait_for("err", "refused")
    assert " INFO parsec.websocket: " in line
    assert "origin 'https://evil.example.com' refused" in line
    assert "admits only https://app.example.com, https://*.ex.org" in line
    assert "--allowed-origin 'https://evil.example.com'" in line


# -- check_reachable: a broker that never answers -----------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """The port of a TCP server that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in [*accepted, sock]:
        conn.close()


@pytest.mark.parametrize(("scheme", "kind"), [("redis", "Redis"), ("nats", "NATS")])
async def test_a_broker_that_never_answers_is_unreachable_within_the_bound(
    silent_server: int, scheme: str, kind: str
) -> None:
    """A server that accepts the connection and never answers is reported once the
    bound has passed, naming the URL without its password and what to check."""
    url = f"{scheme}://user:s3cret@127.0.0.1:{silent_server}"
    async with asyncio.timeout(10):
        with pytest.raises(BrokerUnreachable) as failure:
            await check_reachable(url, within=0.5)
    message = str(failure.value)
    assert message.startswith(f"cannot reach the broker at {scheme}://")
    assert f"127.0.0.1:{silent_server}: no answer within 0.5s" in message
    assert f"check that {kind} is running there" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("scheme", ["redis", "nats"])
async def test_a_closed_port_is_unreachable_at_once(scheme: str) -> None:
    """Nothing listening: the error says the connection was refused."""
    url = f"{scheme}://127.0.0.1:{free_port()}"
    with pytest.raises(BrokerUnreachable) as failure:
        await check_reachable(url, within=30)
    assert failure.value.problem == "connection refused"
    assert failure.value.url == url


async def test_memory_is_always_reachable() -> None:
    """memory:// has nothing to reach."""
    await check_reachable("memory://")


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        pytest.param("{idp}-missing", "HTTP 404", id="unknown-realm"),
        pytest.param("http://127.0.0.1:{port}/realms/x", "ConnectError", id="nobody-listens"),
    ],
)
def test_serve_with_an_undiscoverable_openid_provider_exits_2(
    spawn: Callable[..., Proc], served: OIDCProvider, tmp_path: Path, issuer: str, problem: str
) -> None:
    """``[auth.oidc]`` names a provider that cannot be discovered: the server does not
    start half-configured; one line names the setting and the discovery URL."""
    issuer = issuer.format(idp=served.issuer, port=free_port())
    (tmp_path / "parsec.toml").write_text(
        "[auth.oidc]\n"
        f'issuer = "{issuer}"\n'
        'audience = "parsec-cli"\n'
        'grants = [{if_group = "ops", scope = "public:**", verbs = ["manage"]}]\n'
    )
    proc = spawn(
        "serve", "--config", "parsec.toml", "--addr", f"127.0.0.1:{free_port()}", cwd=tmp_path
    )
    code, stderr = proc.finish()
    assert code == 2, stderr
    assert_one_line_error(
        stderr,
        "auth.oidc.issuer: the OpenID provider cannot be discovered",
        f"{issuer}/.well-known/openid-configuration",
        problem,
    )


def test_serve_with_accounts_on_an_unreachable_database_exits_1(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """``[accounts]`` on a PostgreSQL that does not answer: one line naming the
    database (its password hidden), exit 1; nothing serves half-configured."""
    (tmp_path / "parsec.toml").write_text(
        "[database]\n"
        f'url = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:{free_port()}/parsec"\n'
        "[accounts]\n"
        'session_key = "0123456789abcdef0123456789abcdef"\n'
        'base_url = "http://127.0.0.1:8000"\n'
    )
    proc = spawn(
        "serve", "--config", "parsec.toml", "--addr", f"127.0.0.1:{free_port()}", cwd=tmp_path
    )
    code, stderr = proc.finish()
    assert code == 1, stderr
    line = assert_one_line_error(stderr, "PARSEC_DATABASE_UNAVAILABLE", "cannot reach the database")
    assert "s3cret" not in stderr
    assert "***" in line
