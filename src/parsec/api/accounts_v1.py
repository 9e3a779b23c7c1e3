"""What every ``/api/v1`` route shares: who is calling, in which org, and how a failure
is answered.

Routes are FastAPI routes with pydantic models, so they appear in ``/openapi.json``
(with ``[accounts]``) with their bodies, answers, error statuses and the two ways to
authenticate: the session cookie (``parsec_session``) or ``Authorization: Bearer`` (a
user access token ``psu_…`` or an API key ``psk_…``).

Failures are JSON ``{"error": {"code": "PARSEC_…", "message": "…"}}``:

======  ===========================  ===================================================
status  code                         when
======  ===========================  ===================================================
400     PARSEC_INVALID_ARGUMENT      a body or parameter that does not fit (each broken
                                     field named, the input never echoed)
401     PARSEC_UNAUTHENTICATED,      no credential, or one that is not valid
        PARSEC_SESSION_INVALID       (``WWW-Authenticate`` names both ways)
403     PARSEC_PERMISSION_DENIED     a member whose role, or a key whose scopes, do not
                                     allow the operation; ``?org=`` naming an org the
                                     caller is not in
404     PARSEC_ORG_NOT_FOUND,        no such thing, or not the caller's: one answer
        PARSEC_NOT_FOUND
409     PARSEC_CONFLICT              the change contradicts what exists
500     PARSEC_INTERNAL              a bug: logged, answered without detail
======  ===========================  ===================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from parsec.accounts.access import OrgAccess
from parsec.accounts.errors import INVALID_ARGUMENT, AccountsError
from parsec.accounts.principal import Principal
from parsec.accounts.session_cookie import COOKIE_NAME
from parsec.engine.codes import ClientError
from parsec.errors import ParsecError
from parsec.services.accounts import AccountsService

__all__ = [
    "PREFIX",
    "Accounts",
    "Caller",
    "ChosenOrg",
    "ErrorBody",
    "InOrg",
    "error_response",
    "responses",
    "route_class",
    "router",
]

log = logging.getLogger("parsec.accounts")

PREFIX: Final = "/api/v1"
_INTERNAL: Final = "PARSEC_INTERNAL"
_WWW_AUTHENTICATE: Final = f'Bearer realm="parsec", Cookie name="{COOKIE_NAME}"'

_Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable PARSEC_* code.", examples=["PARSEC_ORG_NOT_FOUND"])
    message: str = Field(description="For people; may change.")


class ErrorBody(BaseModel):
    """Every failure of ``/api/v1``."""

    error: ErrorDetail


_DESCRIPTIONS: Final = {
    400: "A body or parameter that does not fit (PARSEC_INVALID_ARGUMENT).",
    401: "No valid session cookie or bearer (PARSEC_UNAUTHENTICATED, PARSEC_SESSION_INVALID).",
    403: "The caller's role or the key's scopes do not allow it (PARSEC_PERMISSION_DENIED).",
    404: "No such thing, or not the caller's (PARSEC_ORG_NOT_FOUND, PARSEC_NOT_FOUND).",
    409: "The change contradicts what exists (PARSEC_CONFLICT).",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an operation that can fail with ``statuses``
    (401 always: every route needs a caller)."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        for status in sorted({401, *statuses})
    }


def error_response(code: str, message: str, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": _WWW_AUTHENTICATE} if status == 401 else None
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(exc: RequestValidationError) -> JSONResponse:
    """400 naming each broken field, never echoing the input."""
    problems = []
    for problem in exc.errors():
        if problem.get("type") == "json_invalid":
            return error_response(INVALID_ARGUMENT, "request body is not valid JSON", 400)
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {problem.get('msg')}")
    return error_response(INVALID_ARGUMENT, "; ".join(problems) or "invalid request", 400)


_SCOPE_KEY: Final = "parsec.accounts"


def route_class(accounts: AccountsService) -> type[APIRoute]:
    """An APIRoute serving ``accounts`` (the dependencies below find it in the request)
    and answering every failure as the module says (never FastAPI's 422)."""

    class V1Route(APIRoute):
        def get_route_handler(self) -> _Handler:
            call = super().get_route_handler()
            name = self.name

            async def handler(request: Request) -> Response:
                request.scope[_SCOPE_KEY] = accounts
                try:
                    return await call(request)
                except RequestValidationError as exc:
                    return _invalid(exc)
                except AccountsError as exc:
                    log.info("%s %s: %s", request.method, request.url.path, exc.code)
                    return error_response(exc.code, exc.message, exc.http_status)
                except ParsecError as exc:  # an org's channel refused the call
                    return error_response(exc.code, exc.message, exc.http_status)
                except ClientError as exc:  # the engine's word for the same
                    return error_response(INVALID_ARGUMENT, exc.message, 400)
                except StarletteHTTPException as exc:  # FastAPI could not read the body
                    return error_response(INVALID_ARGUMENT, str(exc.detail), 400)
                except ClientDisconnect:
                    return error_response(INVALID_ARGUMENT, "the client left mid-body", 400)
                except Exception:
                    log.exception("/api/v1 %s failed", name)
                    return error_response(_INTERNAL, "internal error", 500)

            return handler

    return V1Route


def router(accounts: AccountsService) -> APIRouter:
    """An empty router for ``/api/v1`` routes of ``accounts`` (add routes, then include
    it in the application)."""
    return APIRouter(route_class=route_class(accounts), tags=["accounts"])


_BEARER: Final = HTTPBearer(
    scheme_name="ParsecBearer",
    auto_error=False,
    description="A user access token (psu_…, `parsec login`) or an API key (psk_…).",
)
_COOKIE: Final = APIKeyCookie(
    name=COOKIE_NAME,
    scheme_name="SessionCookie",
    auto_error=False,
    description="The session cookie of a browser login.",
)


def _accounts(request: Request) -> AccountsService:
    accounts: AccountsService = request.scope[_SCOPE_KEY]
    return accounts


Accounts = Annotated[AccountsService, Depends(_accounts)]
"""The service of the route (``/api/v1`` routes only)."""


async def _principal(
    accounts: Accounts,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    cookie: Annotated[str | None, Depends(_COOKIE)],
) -> Principal:
    token = bearer.credentials if bearer is not None else None
    return await accounts.authenticate(cookie=cookie, bearer=token)


Caller = Annotated[Principal, Depends(_principal)]
"""The authenticated caller (401 otherwise)."""


async def _org(slug: str, accounts: Accounts, caller: Caller) -> OrgAccess:
    return await accounts.org_access(caller, slug)


InOrg = Annotated[OrgAccess, Depends(_org)]
"""The caller in the org of the path's ``{slug}`` (404 when it is not theirs)."""


async def _chosen_org(
    accounts: Accounts,
    caller: Caller,
    org: Annotated[
        str | None, Query(description="The org to act in (default: the caller's default org).")
    ] = None,
) -> OrgAccess:
    return await accounts.chosen_org(caller, org)


ChosenOrg = Annotated[OrgAccess, Depends(_chosen_org)]
"""The caller in the org of ``?org=`` (403 when not theirs), or in their default org."""
