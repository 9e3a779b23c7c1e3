"""The accounts routes (:mod:`parsec.services.accounts`), served when ``[accounts]`` is
configured::

    GET /auth/github/start?next=PATH      302 to GitHub's authorize URL (client_id,
                                          redirect_uri, state, scope)
    GET /auth/github/callback?code&state  sets the session cookie, 303 to the safe next
    POST /auth/logout                     clears the session cookie, 204
    /oauth/device…                        the device flow of ``parsec login``
                                          (:mod:`parsec.api.accounts_device`)
    GET /auth/login, /auth/oidc/…         the login page and the OpenID Connect login
                                          (:mod:`parsec.api.accounts_login`)
    /api/v1/…                             the REST API (:mod:`parsec.api.accounts_v1`),
                                          in ``/openapi.json``

Errors are JSON ``{"error": {"code": "PARSEC_…", "message": "…"}}`` with the error's
status: 400 for a bad, expired or used OAuth state, 403 when the user declined at
GitHub, 404 when GitHub login is not configured, 502/503 when GitHub refused or could
not be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from parsec.accounts.errors import AccountsError
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.api.accounts_apikeys import apikeys_router
from parsec.api.accounts_audit import audit_router
from parsec.api.accounts_channels import channels_router
from parsec.api.accounts_device import device_routes
from parsec.api.accounts_exchange import exchange_router
from parsec.api.accounts_invites import invites_router
from parsec.api.accounts_login import login_routes
from parsec.api.accounts_me import me_router
from parsec.api.accounts_members import members_router
from parsec.api.accounts_namespaces import namespaces_router
from parsec.api.accounts_orgs import orgs_router
from parsec.api.tenant_mount import TenantMount
from parsec.services.accounts import CALLBACK_PATH, AccountsService

__all__ = ["AccountsApi"]

log = logging.getLogger("parsec.accounts")

_Endpoint = Callable[[Request], Awaitable[Response]]


def error(code: str, message: str, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": f'Cookie name="{COOKIE_NAME}"'} if status == 401 else None
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _answered(endpoint: _Endpoint) -> _Endpoint:
    """``endpoint`` with its AccountsError answered as JSON (logged at INFO: the
    caller's problem, or GitHub's)."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AccountsError as exc:
            log.info("%s %s: %s", request.method, request.url.path, exc)
            return error(exc.code, exc.message, exc.http_status)

    return run


class AccountsApi:
    """The routes of one :class:`AccountsService`."""

    def __init__(self, accounts: AccountsService) -> None:
        self.accounts = accounts

    def install(self, app: FastAPI) -> None:
        """Add every accounts route to ``app``."""
        app.router.routes.extend(self.routes())
        app.router.routes.extend(login_routes(self.accounts))
        for make in (
            orgs_router,
            exchange_router,
            channels_router,
            namespaces_router,
            members_router,
            invites_router,
            apikeys_router,
            audit_router,
            me_router,
        ):
            app.include_router(make(self.accounts))
        if self.accounts.tenants is not None:
            limit = self.accounts.options.org_max_connections
            app.router.routes.append(TenantMount(self.accounts, max_connections=limit).mount())

    def routes(self) -> list[Route]:
        """The login routes (outside ``/api/v1`` and the OpenAPI document)."""
        return [
            Route("/auth/github/start", _answered(self._github_start), methods=["GET"]),
            Route(CALLBACK_PATH, _answered(self._github_callback), methods=["GET"]),
            Route("/auth/logout", _answered(self._logout), methods=["POST"]),
            *device_routes(self.accounts),
        ]

    async def _github_start(self, request: Request) -> Response:
        target = self.accounts.github_start(request.query_params.get("next"))
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})

    async def _github_callback(self, request: Request) -> Response:
        signed_in = await self.accounts.github_callback(request.query_params)
        response = RedirectResponse(signed_in.next, status_code=303)
        response.set_cookie(**self.accounts.cookies.cookie_attributes(signed_in.cookie))
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _logout(self, request: Request) -> Response:
        response = Response(status_code=204)
        response.headers["Set-Cookie"] = self.accounts.cookies.clear_cookie_header()
        return response
