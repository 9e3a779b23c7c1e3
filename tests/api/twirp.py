"""Helpers for calling ParsecService over HTTP and checking its replies.

``api.call("OpenPublic", {"name": ...})`` posts to ``/twirp/parsec.ParsecService/OpenPublic``
with the client's management token; ``token=None`` sends no Authorization header and
``content=`` sends raw bytes instead of a JSON body.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import httpx

__all__ = ["DIGITS", "PREFIX", "RFC3339", "Api", "assert_twirp_error", "b64json"]

PREFIX: Final = "/twirp/parsec.ParsecService/"
RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
DIGITS: Final = re.compile(r"\d+")
_DEFAULT: Final = object()


@dataclass
class Api:
    """Calls ParsecService methods over HTTP."""

    http: httpx.AsyncClient
    token: str

    async def call(
        self,
        method: str,
        body: object = None,
        *,
        token: object = _DEFAULT,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` (JSON; ``{}`` when None) or ``content`` to ``method``."""
        sent = dict(headers or {})
        bearer = self.token if token is _DEFAULT else token
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        if content is None:
            content = json.dumps({} if body is None else body).encode()
            sent.setdefault("Content-Type", "application/json")
        return await self.http.post(PREFIX + method, content=content, headers=sent)

    async def ok(self, method: str, body: object = None, **kwargs: Any) -> dict[str, Any]:
        """Call ``method`` and return its JSON reply, failing the test unless it is 200."""
        response = await self.call(method, body, **kwargs)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply


def b64json(value: object) -> str:
    """Standard base64 of ``value``'s JSON, as Publish's ``data`` wants it."""
    return base64.b64encode(json.dumps(value).encode()).decode()


def assert_twirp_error(response: httpx.Response, status: int, code: str, parsec_code: str) -> None:
    """``response`` is a Twirp error with ``status``, Twirp ``code`` and ``parsec_code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert body["meta"]["parsec_code"] == parsec_code, body
    assert isinstance(body["msg"], str)
    assert body["msg"]
