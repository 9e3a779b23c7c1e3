"""The HTTP request body limit (``server.max_request_body_size``) on a real server.

Every route answers a body over the limit with 413 — never a 500, never a traceback —
and does so before the body is sent when its length is declared. The server goes on
serving, on the same connection too.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import pytest_asyncio

from .conftest import ServerFactory
from .harness import API_KEY, WAIT, Server

LIMIT = 16 * 1024
PUBLIC = "public:body.room"
ROUTES = [
    "/api/publish",
    "/api",
    "/twirp/parsec.ParsecService/Publish",
    "/twirp/parsec.ParsecService/Nowhere",
    "/healthz",
    "/manifest",
    "/no/such/route",
]


@pytest_asyncio.fixture(loop_scope="session")
async def server(make_server: ServerFactory) -> Server:
    return await make_server(server={"max_request_body_size": LIMIT})


pytestmark = pytest.mark.usefixtures("no_errors_logged")


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The status line and the body of the next response (Content-Length framed)."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0], body


async def _healthy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        assert (await http.get("/healthz", timeout=WAIT)).status_code == 200


@pytest.mark.parametrize("path", ROUTES)
async def test_a_declared_oversized_body_is_413_before_it_is_sent(
    server: Server, path: str
) -> None:
    """A 64 MiB Content-Length is answered 413 at once, on every route: the client has
    sent only the head and the first kilobyte, nothing waited for (or kept) the rest."""
    reader, writer = await server.open_socket()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {64 * 1024 * 1024}\r\n\r\n".encode()
        + b"{" * 1024
    )
    status, body = await _response(reader)
    writer.close()

    assert status.startswith(b"HTTP/1.1 413 ")
    assert str(LIMIT).encode() in body
    await _healthy(server)


async def test_a_chunked_oversized_body_is_413_and_the_connection_goes_on(
    server: Server,
) -> None:
    """A chunked body is counted as it arrives: over the limit, the client gets 413 in
    place of the route's answer, and its next request on the connection is served."""
    reader, writer = await server.open_socket()
    chunk = b"%x\r\n%s\r\n" % (4096, b" " * 4096)
    writer.write(
        f"POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
        + chunk * 8
        + b"0\r\n\r\n"
    )
    status, body = await _response(reader)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    next_status, next_body = await _response(reader)
    writer.close()

    assert status.startswith(b"HTTP/1.1 413 ")
    assert b"too large" in body
    assert (next_status, next_body) == (b"HTTP/1.1 200 OK", b"ok")


async def test_a_body_at_the_limit_is_served_and_one_byte_more_is_413(server: Server) -> None:
    """The limit is inclusive: a publish whose body is exactly the limit goes through."""
    start = b'{"channel": "plain:x", "data": {"n": 1}'
    at_limit = start + b" " * (LIMIT - len(start) - 1) + b"}"
    assert len(at_limit) == LIMIT

    accepted = await server.api("publish", at_limit)
    refused = await server.api("publish", at_limit[:-1] + b" }")

    assert (accepted.status_code, accepted.json()) == (200, {"result": {}})
    assert refused.status_code == 413


async def test_an_sdk_sending_a_large_body_gets_the_413(server: Server) -> None:
    """An HTTP client that sends its whole 2 MiB body before reading gets a 413 answer,
    not a reset connection; ParsecService answers with a Twirp error body."""
    await server.managed(PUBLIC)
    token = server.parsec.issue_mgmt("operator").token
    big = json.dumps({"name": PUBLIC, "data": "e30=" * (512 * 1024)})
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        api = await http.post(
            "/api/publish",
            content=json.dumps({"channel": "plain:y", "data": "x" * 2**21}),
            headers={"X-API-Key": API_KEY},
            timeout=WAIT,
        )
        twirp = await http.post(
            "/twirp/parsec.ParsecService/Publish",
            content=big,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=WAIT,
        )

    assert api.status_code == 413
    assert twirp.status_code == 413
    assert twirp.json()["code"] == "invalid_argument"
    assert twirp.json()["meta"] == {"parsec_code": "PARSEC_PAYLOAD_TOO_LARGE"}
    history = await server.parsec.node.history(PUBLIC)
    assert history.position.offset == 0
