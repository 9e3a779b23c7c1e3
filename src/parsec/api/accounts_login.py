"""The OpenID Connect login routes and the login page (outside ``/api/v1`` and the
OpenAPI document, as the GitHub routes are)::

    GET /auth/login?next=PATH             an HTML page linking every login method
                                          configured, each with the same safe next;
                                          404 PARSEC_LOGIN_NOT_CONFIGURED without any
    GET /auth/oidc/start?next=PATH        302 to the provider's authorization endpoint
                                          (response_type=code, client_id, redirect_uri,
                                          scope, state, nonce, PKCE S256 challenge)
    GET /auth/oidc/callback?code&state    sets the session cookie, 303 to the safe next

Errors are JSON ``{"error": {"code": "PARSEC_…", "message": "…"}}`` with the error's
status: 400 for a bad, expired or used OAuth state (``PARSEC_OAUTH_STATE_INVALID``) or a
refused code (``PARSEC_OIDC_BAD_CODE``), 403 when the user declined
(``PARSEC_OIDC_DENIED``), 404 when OpenID Connect login is not configured, 502 when the
provider refused the client, answered badly or sent an ID token that does not verify
(``PARSEC_OIDC_ID_TOKEN_INVALID``), 503 when it could not be reached.

The login page is where a page that needs a session sends the browser
(``/auth/login?next=/where/it/was``): no script, no external asset, every value
HTML-escaped, ``next`` made safe (:func:`~parsec.accounts.redirects.safe_next`) before
it is put in a link.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from parsec.accounts.errors import LOGIN_NOT_CONFIGURED, AccountsError
from parsec.accounts.redirects import safe_next
from parsec.services.accounts import OIDC_CALLBACK_PATH, AccountsService

__all__ = ["LOGIN_PATH", "login_page", "login_routes"]

log = logging.getLogger("parsec.accounts")

LOGIN_PATH: Final = "/auth/login"
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "form-action 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}"
    "a{display:block;margin:.6rem 0;padding:.7rem 1rem;border:1px solid #888;"
    "border-radius:.4rem;text-decoration:none;color:inherit;text-align:center}"
)

_Endpoint = Callable[[Request], Awaitable[Response]]


def _answered(endpoint: _Endpoint) -> _Endpoint:
    """``endpoint`` with its AccountsError answered as JSON (logged at INFO)."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AccountsError as exc:
            log.info("%s %s: %s", request.method, request.url.path, exc)
            body = {"error": {"code": exc.code, "message": exc.message}}
            return JSONResponse(body, status_code=exc.http_status)

    return run


def login_page(methods: list[tuple[str, str]], next_path: str | None) -> str:
    """The login page: one link per ``(label, start path)`` of ``methods``, each with
    ``next`` (made safe) in its query. Every value is escaped."""
    query = urlencode({"next": safe_next(next_path)})
    links = "\n".join(
        f'<a href="{html.escape(f"{path}?{query}")}">Log in with {html.escape(label)}</a>'
        for label, path in methods
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Log in</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>Log in</h1>\n{links}\n</body></html>\n"
    )


def login_routes(accounts: AccountsService) -> list[Route]:
    """The login page and the OpenID Connect routes of ``accounts``."""

    async def page(request: Request) -> Response:
        methods: list[tuple[str, str]] = []
        if accounts.github_enabled:
            methods.append(("GitHub", "/auth/github/start"))
        if accounts.oidc_name is not None:
            methods.append((accounts.oidc_name, "/auth/oidc/start"))
        if not methods:
            raise AccountsError("no login method is configured", code=LOGIN_NOT_CONFIGURED)
        body = login_page(methods, request.query_params.get("next"))
        return HTMLResponse(body, headers=_PAGE_HEADERS)

    async def start(request: Request) -> Response:
        target = accounts.oidc_start(request.query_params.get("next"))
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})

    async def callback(request: Request) -> Response:
        signed_in = await accounts.oidc_callback(request.query_params)
        response = RedirectResponse(signed_in.next, status_code=303)
        response.set_cookie(**accounts.cookies.cookie_attributes(signed_in.cookie))
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        Route(LOGIN_PATH, _answered(page), methods=["GET"]),
        Route("/auth/oidc/start", _answered(start), methods=["GET"]),
        Route(OIDC_CALLBACK_PATH, _answered(callback), methods=["GET"]),
    ]
