"""A small synchronous client of the accounts REST API (``/api/v1``), for the CLI.

::

    with AccountsClient("http://127.0.0.1:8000", "psu_…") as api:
        orgs = api.get("/orgs")
        api.post("/orgs/acme/invites", {"username": "bob", "role": "member"})

Paths are relative to ``/api/v1``. Answers are the decoded JSON (None for 204).

What it raises::

    AccountsApiError        the server answered an error: code (PARSEC_*), status, message
    AccountsTransportError  the server could not be reached, or what answered is not
                            Parsec's accounts API (not JSON, no [accounts] there)
    ValueError              a server URL that is not http(s)://host[:port][/prefix]
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

__all__ = ["AccountsApiError", "AccountsClient", "AccountsTransportError"]

API_PREFIX: Final = "/api/v1"
DEFAULT_TIMEOUT: Final = 10.0


class AccountsApiError(Exception):
    """The server refused: ``code`` (PARSEC_*), HTTP ``status``, ``message``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message


class AccountsTransportError(Exception):
    """No answer, or an answer that is not the accounts API's."""


class AccountsClient:
    """Calls ``/api/v1`` of ``server`` with ``token`` as the bearer (None: no
    ``Authorization`` header)."""

    def __init__(self, server: str, token: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {server!r}")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server + API_PREFIX, headers=headers, timeout=timeout, trust_env=False
        )

    def __enter__(self) -> AccountsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(
        self,
        path: str,
        body: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        return self.request("POST", path, body=body, params=params)

    def patch(
        self, path: str, body: Mapping[str, object], params: Mapping[str, str] | None = None
    ) -> Any:
        return self.request("PATCH", path, body=body, params=params)

    def delete(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One call; the decoded JSON answer (None for an empty one)."""
        try:
            reply = self._http.request(
                method, path, json=body, params={k: v for k, v in (params or {}).items() if v}
            )
        except httpx.HTTPError as exc:
            raise AccountsTransportError(f"cannot reach {self.server}: {exc}") from None
        if reply.status_code == 204 or (reply.is_success and not reply.content):
            return None
        try:
            data = reply.json()
        except ValueError:
            raise AccountsTransportError(
                f"{self.server} answered {reply.status_code} without JSON: is it a Parsec "
                "server with [accounts]?"
            ) from None
        if reply.is_success:
            return data
        detail = data.get("error") if isinstance(data, dict) else None
        if not isinstance(detail, dict) or not isinstance(detail.get("code"), str):
            raise AccountsTransportError(
                f"{self.server} answered {reply.status_code}: is it a Parsec server with "
                "[accounts]?"
            )
        raise AccountsApiError(detail["code"], reply.status_code, str(detail.get("message", "")))
