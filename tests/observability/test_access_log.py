"""The access log of a served Parsec: remote address (X-Forwarded-For believed from
trusted proxies only), bearer subject, request id, WebSocket upgrades."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import jwt
import pytest
import websockets

from parsec.options import ObservabilityOptions, Options, ServerOptions
from parsec.testing import TestServer, serve_for_tests

CLIENT = "203.0.113.7"


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "parsec.access" and r.msg == "http_request"]


def _by_id(caplog: pytest.LogCaptureFixture, request_id: str) -> Any:
    return next(r for r in _lines(caplog) if getattr(r, "request_id", None) == request_id)


async def _get(server: TestServer, request_id: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        return await http.get("/healthz", headers={"X-Request-ID": request_id, **headers})


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [([], "127.0.0.1"), (["10.0.0.0/8"], "127.0.0.1"), (["127.0.0.0/8"], CLIENT)],
)
async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    caplog: pytest.LogCaptureFixture, trusted: list[str], seen: str
) -> None:
    caplog.set_level(logging.INFO, "parsec.access")
    options = Options(observability=ObservabilityOptions(trusted_proxies=trusted))
    async with serve_for_tests(options) as server:
        forwarded = f"198.51.100.1, {CLIENT}"  # the proxy appends the client it saw
        await _get(server, "xff", **{"X-Forwarded-For": forwarded})
    assert _by_id(caplog, "xff").remote_addr == seen


async def test_the_bearer_subject_is_logged_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "parsec.access")
    unverified = jwt.encode({"sub": "carol"}, "k" * 32, algorithm="HS256")
    async with serve_for_tests() as server:
        await _get(server, "jwt", Authorization=f"Bearer {unverified}")
        await _get(server, "opaque", Authorization="Bearer psk_0123456789abcdef")
    assert _by_id(caplog, "jwt").bearer_subject == "carol"
    assert not hasattr(_by_id(caplog, "opaque"), "bearer_subject")
    assert unverified not in caplog.text
    assert "psk_0123456789abcdef" not in caplog.text


@pytest.mark.parametrize("native", [True, False], ids=["native", "asgi"])
async def test_a_websocket_upgrade_gets_one_line(
    caplog: pytest.LogCaptureFixture, native: bool
) -> None:
    caplog.set_level(logging.INFO, "parsec.access")
    options = Options(
        server=ServerOptions(native_websocket=native),
        observability=ObservabilityOptions(trusted_proxies=["127.0.0.1/32"]),
    )
    async with serve_for_tests(options) as server:
        headers = {"X-Request-ID": "ws-1", "X-Forwarded-For": CLIENT}
        async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Request-ID"] == "ws-1"
            token = server.connection_token("dave")
            await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
            await ws.recv()
    line = _by_id(caplog, "ws-1")
    assert (line.method, line.path, line.status) == ("GET", "/connection/websocket", 101)
    assert line.remote_addr == CLIENT
    assert [r for r in _lines(caplog) if getattr(r, "request_id", None) == "ws-1"] == [line]
