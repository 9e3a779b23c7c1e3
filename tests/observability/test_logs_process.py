"""``parsec serve --log-format json``: what an operator reads on stderr.

One real server runs a scenario that presents secrets, good and bad (API keys, the
HMAC secret's tokens, management tokens, a cookie, a token in a query string, a
password in a URL), at ``--log-level debug``; its whole output must parse as JSON, one
object per line, and contain none of them. The same run checks the access log's
request id, the connection lines and the ``auth_failure`` reason codes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from parsec_cli import ParsecServe
from waiting import until

WS_PATH = "/connection/websocket"


def _secret(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(20)}"


HMAC_SECRET = _secret("hmac")
API_KEY = _secret("apikey")
WRONG_API_KEY = _secret("wrongkey")
COOKIE = _secret("cookie")
QUERY_TOKEN = _secret("query")
URL_PASSWORD = _secret("urlpw")


def _hs256(claims: dict[str, Any], key: str = HMAC_SECRET) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


@dataclasses.dataclass(frozen=True)
class Jwts:
    """The tokens a scenario presents, made when the test runs (not at collection: a
    long run would let the good ones expire first)."""

    good_connection: str
    expired_connection: str
    forged_connection: str
    forged_subscription: str
    forged_mgmt: str

    @classmethod
    def now(cls) -> Jwts:
        soon, past = int(time.time()) + 600, int(time.time()) - 600
        return cls(
            good_connection=_hs256({"sub": "alice", "exp": soon}),
            expired_connection=_hs256({"sub": "bob", "exp": past}),
            forged_connection=_hs256({"sub": "mallory", "exp": soon}, _secret("other")),
            forged_subscription=_hs256(
                {"sub": "alice", "channel": "news", "exp": soon}, _secret("other")
            ),
            forged_mgmt=_hs256({"sub": "operator", "typ": "mgmt"}, _secret("other")),
        )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ParsecServe]:
    config = f'[auth]\ntoken_hmac_secret = "{HMAC_SECRET}"\n'
    serve = ParsecServe(
        tmp_path,
        config,
        *("--api-key", API_KEY, "--region", "eu-west-1"),
        *("--log-level", "debug", "--log-format", "json"),
    )
    await serve.start()
    try:
        yield serve
    finally:
        await serve.stop()


async def _command(ws: Any, command: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(command))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


async def _scenario(server: ParsecServe, jwts: Jwts) -> tuple[httpx.Response, str]:
    """Present every secret, good and bad; the response to a request sent with an
    ``X-Request-ID``, and the good management token."""
    mgmt = (server.state_dir / "operator.token").read_text().strip()
    ws_url = server.url.replace("http://", "ws://") + WS_PATH
    async with websockets.connect(ws_url) as ws:  # alice connects, then fails a subscribe
        reply = await _command(ws, {"id": 1, "connect": {"token": jwts.good_connection}})
        assert reply.get("connect", {}).get("client"), reply
        reply = await _command(
            ws, {"id": 2, "subscribe": {"channel": "news", "token": jwts.forged_subscription}}
        )
        assert "error" in reply, reply
    for token in (jwts.expired_connection, jwts.forged_connection):
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
            await _drain(ws)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=10) as http:
        twirp = "/twirp/parsec.ParsecService/ListChannels"
        ok = await http.post(twirp, json={}, headers={"Authorization": f"Bearer {mgmt}"})
        assert ok.status_code == 200, ok.text
        bad = await http.post(
            twirp, json={}, headers={"Authorization": f"Bearer {jwts.forged_mgmt}"}
        )
        assert bad.status_code == 401, bad.text
        for key in (API_KEY, WRONG_API_KEY):
            await http.post("/api/info", json={}, headers={"X-API-Key": key})
        await http.get(
            f"/healthz?token={QUERY_TOKEN}", headers={"Cookie": f"parsec_session={COOKIE}"}
        )
        traced = await http.get("/healthz", headers={"X-Request-ID": "req-42.abc"})
    host = server.url.removeprefix("http://")
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        await http.get(f"http://ops:{URL_PASSWORD}@{host}/manifest")
    return traced, mgmt


async def _drain(ws: Any) -> None:
    """Read until the server closes the connection (a refused connect)."""
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        return


def _lines(server: ParsecServe) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.strip()]


def _has(lines: list[dict[str, Any]], **fields: object) -> bool:
    return any(all(line.get(k) == v for k, v in fields.items()) for line in lines)


async def test_json_logs_parse_line_by_line_and_hold_no_secret(server: ParsecServe) -> None:
    jwts = Jwts.now()
    traced, mgmt = await _scenario(server, jwts)
    await until(lambda: '"path":"/manifest"' in server.log())
    await server.stop()
    text = server.log()
    lines = _lines(server)  # every line of the run is one JSON object
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "msg"} <= line.keys(), line
        assert line["time"].endswith("Z"), line
        assert line["region"] == "eu-west-1", line
    basic = base64.b64encode(f"ops:{URL_PASSWORD}".encode()).decode()
    for secret in (
        HMAC_SECRET,
        API_KEY,
        WRONG_API_KEY,
        COOKIE,
        QUERY_TOKEN,
        URL_PASSWORD,
        basic,
        mgmt,
        *dataclasses.astuple(jwts),
    ):
        assert secret not in text
        assert secret.split(".")[-1] not in text  # a JWT's signature alone neither
    assert traced.headers["X-Request-ID"] == "req-42.abc"


async def test_the_access_log_line_carries_the_request_id(server: ParsecServe) -> None:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=10) as http:
        sent = await http.get("/healthz?x=1", headers={"X-Request-ID": "abc-123"})
        generated = await http.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
    assert sent.headers["X-Request-ID"] == "abc-123"
    fresh = generated.headers["X-Request-ID"]
    assert len(fresh) == 24
    assert set(fresh) <= set("0123456789abcdef")
    await until(lambda: fresh in server.log())
    access = [line for line in _lines(server) if line["msg"] == "http_request"]
    mine = next(line for line in access if line["request_id"] == "abc-123")
    assert mine["logger"] == "parsec.access"
    assert mine["method"] == "GET"
    assert mine["path"] == "/healthz"  # no query string
    assert mine["status"] == 200
    assert mine["remote_addr"] == "127.0.0.1"
    assert isinstance(mine["duration_ms"], float | int)
    assert _has(access, request_id=fresh, status=200)


async def test_connection_lines_and_auth_failure_reason_codes(server: ParsecServe) -> None:
    await _scenario(server, Jwts.now())
    await until(lambda: '"path":"/manifest"' in server.log())
    lines = _lines(server)
    connect = next(line for line in lines if line["msg"] == "connect")
    assert connect["level"] == "debug"
    assert connect["user"] == "alice"
    assert connect["transport"] == "websocket"
    assert _has(lines, msg="disconnect", client=connect["client"], level="debug")
    failures = [line for line in lines if line["msg"] == "auth_failure"]
    assert all(line["level"] == "warning" for line in failures)
    assert _has(failures, token_type="connection", reason="expired")
    assert _has(failures, token_type="connection", reason="invalid_signature")
    assert _has(failures, token_type="subscription", reason="invalid_signature", user="alice")
    assert _has(failures, token_type="management", reason="denied")
    assert _has(failures, token_type="api_key", reason="invalid")
