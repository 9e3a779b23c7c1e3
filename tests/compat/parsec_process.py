"""Run ``parsec serve`` as a real process on a free loopback port, and mint its tokens.

``ServerFactory.start`` writes a TOML config into a fresh directory, starts the server,
and returns once ``GET /healthz`` answers 200; ``ServerFactory.close`` stops every server
it started (SIGTERM, then SIGKILL after a grace period). Tokens are minted with PyJWT
directly: HS256 with the config's ``token_hmac_secret`` and no ``kid`` header, the
documented shared-secret path.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import jwt
from redis_keys import REDIS_URL, scratch_prefix

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "DEFAULT_NAMESPACES",
    "EXPIRED_CLOSE_DELAY",
    "ParsecServer",
    "ServerFactory",
    "ServerStartError",
    "free_port",
    "mint_connection_token",
    "mint_subscription_token",
]

TomlScalar = str | int | float | bool

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_CHARS = 4000

EXPIRED_CLOSE_DELAY = 2.0
"""Seconds an expired, unrefreshed connection is kept before it is closed with 3005."""

DEFAULT_CLIENT_OPTIONS: Mapping[str, TomlScalar] = {
    "ping_interval": "25s",
    "expired_close_delay": f"{EXPIRED_CLOSE_DELAY:g}s",
}
"""The ``[client]`` table of every test server: a short ``expired_close_delay`` so that
an expired, unrefreshed connection is closed (3005) within a test's time budget."""

DEFAULT_NAMESPACES = """
[[namespaces]]
name = "chat"
history_size = 100
history_ttl = "300s"
presence = true
join_leave = true
force_recovery = true
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_history_for_subscriber = true
allow_presence_for_subscriber = true

[[namespaces]]
name = "plain"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_history_for_subscriber = true
allow_presence_for_subscriber = true
"""
"""``chat`` keeps history and presence; ``plain`` keeps neither (history and presence
calls there answer 108). ``private`` is built into Parsec."""


class ServerStartError(RuntimeError):
    """``parsec serve`` exited or did not answer ``/healthz`` in time; carries its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mint_connection_token(
    secret: str,
    user: str,
    *,
    ttl: float | None = 3600,
    info: object = None,
    channels: Sequence[str] = (),
) -> str:
    """A connection JWT (HS256, no kid). ``ttl`` may be negative (already expired);
    ``None`` leaves ``exp`` out."""
    claims: dict[str, object] = {"sub": user}
    if ttl is not None:
        claims["exp"] = int(time.time() + ttl)
    if info is not None:
        claims["info"] = info
    if channels:
        claims["channels"] = list(channels)
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_subscription_token(
    secret: str, user: str, channel: str, *, ttl: float = 3600, info: object = None
) -> str:
    """A subscription JWT (HS256, no kid) for ``user`` in ``channel``."""
    claims: dict[str, object] = {"sub": user, "channel": channel, "exp": int(time.time() + ttl)}
    if info is not None:
        claims["info"] = info
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True, slots=True)
class ParsecServer:
    """A running ``parsec serve``: where it listens and the secrets it was given."""

    port: int
    api_key: str
    hmac_secret: str
    workdir: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def api_url(self) -> str:
        return f"{self.http_url}/api"

    def connection_token(
        self,
        user: str,
        *,
        ttl: float | None = 3600,
        info: object = None,
        channels: Sequence[str] = (),
    ) -> str:
        """A connection token this server accepts (see ``mint_connection_token``)."""
        return mint_connection_token(self.hmac_secret, user, ttl=ttl, info=info, channels=channels)

    def subscription_token(
        self, user: str, channel: str, *, ttl: float = 3600, info: object = None
    ) -> str:
        """A subscription token this server accepts (see ``mint_subscription_token``)."""
        return mint_subscription_token(self.hmac_secret, user, channel, ttl=ttl, info=info)

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def manage(self, method: str, body: Mapping[str, object]) -> dict[str, Any]:
        """Call a ParsecService method with an operator token minted from the server's
        own keyring file (as `parsec tokens mgmt --state-dir` does)."""
        from parsec.auth.keyring import KeyRing
        from parsec.auth.parsec_tokens import ParsecTokens

        bearer = ParsecTokens(KeyRing.open(self.state_dir)).issue_mgmt("operator").token
        response = httpx.post(
            f"{self.http_url}/twirp/parsec.ParsecService/{method}",
            json=dict(body),
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def create_private(self, name: str, subject: str) -> dict[str, Any]:
        """Create a private channel (CreatePrivate); its access and refresh tokens."""
        return self.manage("CreatePrivate", {"name": name, "subject": subject})

    def log_tail(self) -> str:
        """The end of the server's combined stdout/stderr, for failure messages."""
        text = (self.workdir / "server.log").read_text(errors="replace")
        return text[-LOG_TAIL_CHARS:]


def _toml_value(value: TomlScalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _render_config(
    server: ParsecServer,
    client: Mapping[str, TomlScalar],
    extra_toml: str,
    auth: Mapping[str, TomlScalar] | None = None,
) -> str:
    """The TOML config of ``server``; ``auth`` adds keys to the ``[auth]`` table;
    ``extra_toml`` is appended after the built-in namespaces, so it may add tables such
    as ``[[namespaces]]``."""
    client_lines = "\n".join(f"{key} = {_toml_value(value)}" for key, value in client.items())
    auth_lines = "".join(f"{key} = {_toml_value(value)}\n" for key, value in (auth or {}).items())
    return (
        "[server]\n"
        f'addr = "127.0.0.1:{server.port}"\n'
        "[auth]\n"
        f"state_dir = {json.dumps(str(server.workdir / 'state'))}\n"
        f"token_hmac_secret = {json.dumps(server.hmac_secret)}\n"
        f"{auth_lines}"
        "[api]\n"
        f"key = {json.dumps(server.api_key)}\n"
        "[client]\n"
        f"{client_lines}\n"
        f"{DEFAULT_NAMESPACES}\n"
        f"{extra_toml}\n"
    )


def _serve_command(config: Path, args: Sequence[str] = ()) -> list[str]:
    """``parsec serve --config <config> <args>``: the venv's console script when
    installed, else ``python -m parsec``."""
    script = Path(sys.executable).with_name("parsec")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "parsec"]
    return [*head, "serve", "--config", str(config), *args]


@dataclass(slots=True)
class _Running:
    server: ParsecServer
    process: subprocess.Popen[bytes]
    log: IO[bytes]


def _wait_ready(running: _Running) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    url = f"{running.server.http_url}/healthz"
    with httpx.Client(trust_env=False, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise ServerStartError(
                    f"parsec serve exited with {running.process.returncode}:\n"
                    f"{running.server.log_tail()}"
                )
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise ServerStartError(
        f"parsec serve did not answer {url} within {READY_TIMEOUT}s:\n{running.server.log_tail()}"
    )


def _stop(running: _Running) -> None:
    process = running.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    running.log.close()


@dataclass(slots=True)
class ServerFactory:
    """Starts ``parsec serve`` processes under ``base_dir`` and stops them on ``close``."""

    base_dir: Path
    _running: list[_Running] = field(default_factory=list)

    def start(
        self,
        extra_toml: str | Callable[[ParsecServer], str] = "",
        *,
        client: Mapping[str, TomlScalar] | None = None,
        auth: Mapping[str, TomlScalar] | None = None,
        args: Sequence[str] = (),
        hmac_secret: str | None = None,
    ) -> ParsecServer:
        """Start a server and wait until it is healthy.

        ``client`` entries override ``DEFAULT_CLIENT_OPTIONS`` in the ``[client]``
        table, ``auth`` entries are added to ``[auth]``; ``extra_toml`` is appended to
        the config (a callable is given the server, its port chosen, and returns it);
        ``hmac_secret`` shares a token secret with another server (default: a new one).
        Raises ``ServerStartError`` (with the server's log) when the process exits or
        never becomes healthy.
        """
        workdir = self.base_dir / f"server-{len(self._running)}"
        workdir.mkdir(parents=True)
        server = ParsecServer(
            port=free_port(),
            api_key=secrets.token_hex(16),
            hmac_secret=hmac_secret or secrets.token_hex(32),
            workdir=workdir,
        )
        config = workdir / "parsec.toml"
        options = {**DEFAULT_CLIENT_OPTIONS, **(client or {})}
        extra = extra_toml(server) if callable(extra_toml) else extra_toml
        config.write_text(_render_config(server, options, extra, auth))
        log = (workdir / "server.log").open("wb")
        process = subprocess.Popen(
            _serve_command(config, args),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running = _Running(server=server, process=process, log=log)
        self._running.append(running)
        _wait_ready(running)
        return server

    def process(self, server: ParsecServer) -> subprocess.Popen[bytes]:
        """The process of one server started here (to signal it)."""
        for running in self._running:
            if running.server is server:
                return running.process
        raise ValueError("not a server of this factory")

    def kill(self, server: ParsecServer) -> None:
        """SIGKILL one server started here, as a crash would: no shutdown, no cleanup."""
        for running in self._running:
            if running.server is server:
                running.process.kill()
                running.process.wait(STOP_TIMEOUT)
                return
        raise ValueError("not a server of this factory")

    def close(self) -> None:
        """Stop every server started here (SIGTERM, SIGKILL after a grace period)."""
        while self._running:
            _stop(self._running.pop())


@contextlib.contextmanager
def redis_pair(base_dir: Path, extra_toml: str = "") -> Iterator[tuple[ParsecServer, ParsecServer]]:
    """Two ``parsec serve`` nodes with ``extra_toml`` sharing the real Redis under a
    scratch key prefix; both are stopped before the prefix's keys are deleted."""
    with scratch_prefix() as prefix:
        factory = ServerFactory(base_dir)
        broker = f'[broker]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        try:
            yield factory.start(broker + extra_toml), factory.start(broker + extra_toml)
        finally:
            factory.close()
