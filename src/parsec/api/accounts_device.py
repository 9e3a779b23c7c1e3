"""The device flow's routes (RFC 8628; :mod:`parsec.accounts.device_flow`): OAuth
endpoints, outside ``/api/v1``::

    POST /oauth/device/code    form client_id=parsec-cli[, scope]: 200 {device_code,
                               user_code, verification_uri, verification_uri_complete,
                               expires_in, interval}
    POST /oauth/device/token   form grant_type=urn:ietf:params:oauth:grant-type:device_code,
                               device_code, client_id: 200 {access_token (psu_…),
                               token_type "Bearer", expires_in}, or 400 {error,
                               error_description}
    GET  /oauth/device         the verify page (?user_code=…): logged in, it shows the
                               code and Approve / Deny; else 302 to the login, back here
    POST /oauth/device         form user_code, decision (approve|deny), csrf_token

OAuth answers are JSON with ``Cache-Control: no-store``; errors are RFC 6749 §5.2's
``{"error", "error_description"}`` (400; 401 ``invalid_client``). The verify page's
form carries a CSRF token bound to the logged-in user (:mod:`parsec.accounts.csrf`),
checked on POST, on top of the cookie's ``SameSite=Lax``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qs, urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from parsec.accounts.device_flow import (
    CLI_CLIENT_ID,
    GRANT_TYPE,
    DeviceFlowError,
    format_user_code,
    normalize_user_code,
)
from parsec.accounts.errors import InvalidSession
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.api import accounts_device_pages as pages
from parsec.services.accounts import AccountsService

__all__ = ["CODE_PATH", "TOKEN_PATH", "VERIFY_PATH", "DeviceRoutes", "device_routes"]

log = logging.getLogger("parsec.accounts")

CODE_PATH: Final = "/oauth/device/code"
TOKEN_PATH: Final = "/oauth/device/token"
VERIFY_PATH: Final = "/oauth/device"
LOGIN_PAGE: Final = "/auth/login"
"""Where a logged-out browser goes when the server offers several ways to log in."""
MAX_FORM_BYTES: Final = 8192
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class FormError(Exception):
    """A request body that is not a small, well-formed urlencoded form."""


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """An RFC 6749 §5.2 error answer."""
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


async def read_form(request: Request) -> dict[str, str]:
    """The request's ``application/x-www-form-urlencoded`` body, each name once.

    Raises:
        FormError: another content type, a body over 8 KiB, not UTF-8, or a name given
            twice (RFC 6749 §3.1).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError("the body must be application/x-www-form-urlencoded")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise FormError("the body is too large")
    except ClientDisconnect:
        raise FormError("the client left mid-body") from None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the body is not a valid form") from None
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise FormError(f"parameters given more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in fields.items()}


def _missing(form: Mapping[str, str], *names: str) -> list[str]:
    return [name for name in names if not form.get(name)]


class DeviceRoutes:
    """The device flow's routes over one :class:`AccountsService`."""

    def __init__(self, accounts: AccountsService) -> None:
        self.accounts = accounts

    def routes(self) -> list[Route]:
        return [
            Route(CODE_PATH, self.device_code, methods=["POST"]),
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(VERIFY_PATH, self.verify_page, methods=["GET"]),
            Route(VERIFY_PATH, self.decide, methods=["POST"]),
        ]

    @property
    def verification_uri(self) -> str:
        return self.accounts.options.base_url.rstrip("/") + VERIFY_PATH

    # --- the device's endpoints (RFC 8628 §3.1-3.5) --------------------------------

    async def device_code(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return oauth_error("invalid_request", str(exc))
        if not form.get("client_id"):
            return oauth_error("invalid_request", "client_id is required")
        if form["client_id"] != CLI_CLIENT_ID:
            return oauth_error("invalid_client", "unknown client_id", 401)
        scope = form.get("scope", "")
        if len(scope) > 300:
            return oauth_error("invalid_scope", "the scope is too long")
        started = await self.accounts.device_flow.start(scope)
        body = {
            "device_code": started.device_code,
            "user_code": started.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": (
                f"{self.verification_uri}?{urlencode({'user_code': started.user_code})}"
            ),
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
        return JSONResponse(body, headers=_NO_STORE)

    async def token(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return oauth_error("invalid_request", str(exc))
        missing = _missing(form, "grant_type", "device_code", "client_id")
        if missing:
            return oauth_error("invalid_request", f"missing: {', '.join(missing)}")
        if form["client_id"] != CLI_CLIENT_ID:
            return oauth_error("invalid_client", "unknown client_id", 401)
        if form["grant_type"] != GRANT_TYPE:
            return oauth_error("unsupported_grant_type", f"only {GRANT_TYPE} is supported here")
        try:
            user_id = await self.accounts.device_flow.poll(form["device_code"])
        except DeviceFlowError as exc:
            return oauth_error(exc.error, exc.description)
        tokens = self.accounts.user_tokens
        body = {
            "access_token": tokens.mint(str(user_id)),
            "token_type": "Bearer",
            "expires_in": tokens.ttl,
        }
        log.info("device flow: a device logged in as user %s", user_id)
        return JSONResponse(body, headers=_NO_STORE)

    # --- the person's verify page ----------------------------------------------

    async def _session_user(self, request: Request) -> uuid.UUID | None:
        try:
            return await self.accounts.session_user(request.cookies.get(COOKIE_NAME))
        except InvalidSession:
            return None

    async def verify_page(self, request: Request) -> Response:
        given = request.query_params.get("user_code")
        user_id = await self._session_user(request)
        if user_id is None:
            here = VERIFY_PATH + (f"?{urlencode({'user_code': given})}" if given else "")
            target = f"{_login_path(self.accounts)}?{urlencode({'next': here})}"
            return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
        username = await self.accounts.device_flow.username(user_id) or str(user_id)
        if not given:
            return pages.page(pages.code_form(username))
        code = normalize_user_code(given)
        if code is None:
            message = "That is not a device code: it has 8 letters, like BCDF-GHJK."
            return pages.page(pages.code_form(username, message), 400)
        pending = await self.accounts.device_flow.pending(code)
        if pending is None:
            message = f"The code {format_user_code(code)} is unknown, used or expired."
            return pages.page(pages.code_form(username, message), 404)
        body = pages.approval(
            user_code=pending.user_code,
            username=username,
            scope=pending.scope,
            csrf=self.accounts.csrf.mint(str(user_id)),
        )
        return pages.page(body)

    async def decide(self, request: Request) -> Response:
        user_id = await self._session_user(request)
        if user_id is None:
            return pages.page(pages.problem("Your login has expired: log in and try again."), 401)
        try:
            form = await read_form(request)
        except FormError:
            return pages.page(pages.problem("That form could not be read."), 400)
        if not self.accounts.csrf.check(form.get("csrf_token"), str(user_id)):
            return pages.page(
                pages.problem("That form expired or did not come from this site: try again."),
                403,
            )
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return pages.page(pages.problem("Choose Approve or Deny."), 400)
        code = normalize_user_code(form.get("user_code"))
        approve = decision == "approve"
        if code is None or not await self.accounts.device_flow.decide(
            code, user_id, approve=approve
        ):
            return pages.page(pages.problem("That code is unknown, used or expired."), 404)
        return pages.page(pages.done(approve, format_user_code(code)))


def device_routes(accounts: AccountsService) -> list[Route]:
    """The device flow's routes of ``accounts``."""
    return DeviceRoutes(accounts).routes()


def _login_path(accounts: AccountsService) -> str:
    """The one login offered (straight to it), else the page listing them."""
    offered = [
        path
        for path, on in (
            ("/auth/github/start", accounts.github_enabled),
            ("/auth/oidc/start", accounts.oidc_name is not None),
        )
        if on
    ]
    return offered[0] if len(offered) == 1 else LOGIN_PAGE
