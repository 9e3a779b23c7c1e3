"""What ParsecService reads as a request body, over a real server: JSON in UTF-8, sent
as ``application/json`` or with no Content-Type. A body that cannot be decoded (not
UTF-8, not JSON) is ``400 malformed``, another Content-Type is ``400 malformed`` naming
the one to send, and none of it logs an ERROR line. Every method is checked, taken
from the server's own OpenAPI document so that a new method cannot be forgotten."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from parsec.api.management import PUBLIC_METHODS
from parsec.testing import TestServer, serve_for_tests

from .twirp import PREFIX, assert_twirp_error

UNDECODABLE = [
    b"\xe8",
    b'{"name": "\xe8"}',
    b"\xff\xfe{\x00}\x00",
    b"{not json",
    b"NaN",
    b"\xef\xbb\xbf{}",
    b"\x00{}",
    b'{"name": "\\ud800"}',
    b'{"ttl_seconds": 1e999}',
    b"[" * 100_000 + b"]" * 100_000,
]
"""Bodies that are not JSON in UTF-8: invalid UTF-8, a UTF-16 BOM, syntax errors, NaN,
a UTF-8 BOM, a lone surrogate escape, a number out of range, nesting beyond any limit."""


@pytest_asyncio.fixture
async def server() -> AsyncIterator[TestServer]:
    """A Parsec server on a free loopback port."""
    async with serve_for_tests() as running:
        yield running


@pytest_asyncio.fixture
async def http(server: TestServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``server``, sending the operator's management token."""
    token = server.parsec.issue_mgmt("operator").token
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, trust_env=False) as client:
        yield client


async def service_methods(http: httpx.AsyncClient) -> list[str]:
    """Every ParsecService method the server documents in /openapi.json."""
    paths = (await http.get("/openapi.json")).json()["paths"]
    methods = sorted(path.removeprefix(PREFIX) for path in paths if path.startswith(PREFIX))
    assert {"Manifest", "RefreshToken", "OpenPublic", "DlqReplay"} <= set(methods)
    return methods


def assert_malformed(response: httpx.Response) -> None:
    """``response`` is a Twirp ``malformed`` error (400, PARSEC_INVALID_ARGUMENT)."""
    assert_twirp_error(response, 400, "malformed", "PARSEC_INVALID_ARGUMENT")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("content_type", [None, "application/json"])
async def test_every_method_answers_a_non_utf8_body_malformed(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, content_type: str | None
) -> None:
    """``printf '\\xe8' | curl --data-binary @-`` style bodies: 400 malformed on every
    method, the public ones included, and no ERROR line."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    for method in await service_methods(http):
        response = await http.post(PREFIX + method, content=b"\xe8", headers=headers)
        assert_malformed(response)
        assert "UTF-8" in response.json()["msg"], method

    assert errors_logged(caplog) == []


async def test_public_methods_answer_malformed_without_a_bearer(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Manifest and RefreshToken need no login, so anyone can send them bytes."""
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as anonymous:
        for method in sorted(PUBLIC_METHODS):
            for body in UNDECODABLE:
                response = await anonymous.post(
                    PREFIX + method, content=body, headers={"Content-Type": "application/json"}
                )
                assert_malformed(response)
        protected = await anonymous.post(PREFIX + "OpenPublic", content=b"\xe8")

    assert_twirp_error(protected, 401, "unauthenticated", "PARSEC_AUTH_MISSING")
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("body", UNDECODABLE, ids=range(len(UNDECODABLE)))
async def test_a_body_that_is_not_json_is_malformed(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """Anything that does not decode as JSON is malformed, never a 500."""
    for method in ["OpenPublic", "ListChannels", "PublishOrSink"]:
        response = await http.post(
            PREFIX + method, content=body, headers={"Content-Type": "application/json"}
        )
        assert_malformed(response)

    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/protobuf",
        "application/json-patch+json",
        "nonsense",
    ],
)
async def test_another_content_type_is_malformed_and_names_json(
    http: httpx.AsyncClient, content_type: str
) -> None:
    """curl's default form type (and any other) gets 400 malformed whose message says to
    send application/json; the body is not read as JSON behind the caller's back."""
    for method in ["Manifest", "OpenPublic"]:
        response = await http.post(
            PREFIX + method,
            content=b'{"name": "public:app.lobby"}',
            headers={"Content-Type": content_type},
        )
        assert_malformed(response)
        assert "application/json" in response.json()["msg"]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "Application/JSON"],
)
async def test_json_with_or_without_content_type_is_read(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    """application/json (any case, with a charset) and no Content-Type at all are JSON."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await http.post(
        PREFIX + "OpenPublic", content=b'{"name": "public:app.lobby"}', headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["channel"]["name"] == "public:app.lobby"


async def test_json_of_the_wrong_shape_stays_invalid_argument(http: httpx.AsyncClient) -> None:
    """JSON that decodes but does not fit the message is invalid_argument, not malformed."""
    for body in [b"[]", b'{"name": 5}', b'{"name": "public:app.lobby", "ttl_seconds": "x"}']:
        response = await http.post(
            PREFIX + "OpenPublic", content=body, headers={"Content-Type": "application/json"}
        )
        assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")


@pytest.mark.parametrize("body", [b"null", b" null\n", b"[]", b"5", b'"{}"', b"true"])
async def test_json_that_is_not_an_object_is_invalid_argument_on_every_method(
    http: httpx.AsyncClient, body: bytes
) -> None:
    """Every request message is a JSON object: ``null``, an array, a number, a string or
    a boolean is invalid_argument on every method, including those whose fields are all
    optional (``null`` was read as an empty body there, and answered 200)."""
    for method in await service_methods(http):
        response = await http.post(
            PREFIX + method, content=body, headers={"Content-Type": "application/json"}
        )
        assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")
        assert "object" in response.json()["msg"], (method, response.text)
