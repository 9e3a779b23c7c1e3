"""The device side of a Parsec server's device flow (RFC 8628), for ``parsec login``.

::

    with DeviceLogin("https://parsec.example.com") as login:
        device = login.start()                 # show device.verification_uri_complete
        token = login.wait(device)             # polls until approved, denied or expired

``wait`` polls ``/oauth/device/token`` every ``interval`` seconds, adding 5 seconds at
each ``slow_down`` (RFC 8628 §3.5); ``sleep`` and ``clock`` are injectable.

What it raises: :class:`DeviceLoginError` for a login that did not happen — denied,
expired, refused, or a server that cannot be reached or is not a Parsec with
``[accounts]`` (the message says which; never a code or token); ``ValueError`` for a
server URL that is not http(s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

__all__ = ["CLIENT_ID", "DeviceCode", "DeviceLogin", "DeviceLoginError", "UserToken"]

CLIENT_ID: Final = "parsec-cli"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP: Final = 5
HTTP_TIMEOUT: Final = 10.0


class DeviceLoginError(Exception):
    """The login did not happen; ``error`` is the OAuth error code when the server
    answered one (``access_denied``, ``expired_token``…), else None."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What the server answered ``POST /oauth/device/code``."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class UserToken:
    """A user access token and when it expires (Unix seconds)."""

    access_token: str
    expires_at: int


class DeviceLogin:
    """Logs in at ``server`` (``http(s)://host[:port]``) with the device flow."""

    def __init__(
        self,
        server: str,
        *,
        timeout: float = HTTP_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {server!r}")
        self.server = server.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(base_url=self.server, timeout=timeout, trust_env=False)

    def __enter__(self) -> DeviceLogin:
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

    def start(self, scope: str | None = None) -> DeviceCode:
        """Ask the server for a device code."""
        form = {"client_id": CLIENT_ID} | ({"scope": scope} if scope else {})
        status, body = self._post("/oauth/device/code", form)
        if status != 200:
            raise self._refused(body)
        try:
            return DeviceCode(
                device_code=_str(body, "device_code"),
                user_code=_str(body, "user_code"),
                verification_uri=_str(body, "verification_uri"),
                verification_uri_complete=str(
                    body.get("verification_uri_complete") or body["verification_uri"]
                ),
                expires_in=int(body["expires_in"]),
                interval=max(1, int(body.get("interval", 5))),
            )
        except (KeyError, TypeError, ValueError):
            raise DeviceLoginError(f"{self.server} answered a malformed device code") from None

    def wait(self, device: DeviceCode) -> UserToken:
        """Poll until the code is approved (the token), denied, or expired.

        Raises:
            DeviceLoginError: denied, expired, refused, or the server went away.
        """
        interval = device.interval
        deadline = self._clock() + device.expires_in
        form = {"grant_type": GRANT_TYPE, "device_code": device.device_code, "client_id": CLIENT_ID}
        while True:
            self._sleep(interval)
            status, body = self._post("/oauth/device/token", form)
            if status == 200:
                return self._token(body)
            error = body.get("error")
            if error == "authorization_pending":
                pass
            elif error == "slow_down":
                interval += SLOW_DOWN_STEP
            elif error == "access_denied":
                raise DeviceLoginError("the login was denied", error)
            elif error == "expired_token":
                raise DeviceLoginError(
                    "the code expired before it was approved: run `parsec login` again", error
                )
            else:
                raise self._refused(body)
            if self._clock() >= deadline:
                raise DeviceLoginError(
                    "the code expired before it was approved: run `parsec login` again",
                    "expired_token",
                )

    def _token(self, body: dict[str, Any]) -> UserToken:
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise DeviceLoginError(f"{self.server} answered a malformed token")
        return UserToken(token, int(self._clock()) + expires_in)

    def _refused(self, body: dict[str, Any]) -> DeviceLoginError:
        error = body.get("error")
        description = body.get("error_description")
        if not isinstance(error, str):
            return DeviceLoginError(f"{self.server} refused the login")
        detail = f": {description}" if isinstance(description, str) and description else ""
        return DeviceLoginError(f"{self.server} refused the login ({error}{detail})", error)

    def _post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            reply = self._http.post(path, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise DeviceLoginError(
                f"cannot reach {self.server}: {type(exc).__name__}: {exc}"
            ) from None
        if reply.status_code == 404:
            raise DeviceLoginError(
                f"{self.server} offers no device login (is [accounts] configured there?)"
            )
        if reply.status_code >= 500:
            raise DeviceLoginError(
                f"{self.server} failed (HTTP {reply.status_code}): try again later"
            )
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise DeviceLoginError(
                f"{self.server} is not a Parsec server with accounts (HTTP {reply.status_code})"
            )
        return reply.status_code, body


def _str(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value
