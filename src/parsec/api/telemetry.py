"""``GET /parsec/telemetry``: the telemetry snapshot (:mod:`parsec.services.telemetry`).

It needs an operator management token (``Authorization: Bearer <mgmt token>``), as the
ParsecService methods that show the whole server do: without one (or with a bad one)
``401 unauthenticated``, with a token that is not an operator's ``403
permission_denied``, both as Twirp error bodies (``{"code", "msg", "meta":
{"parsec_code"}}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parsec.api.twirp import bearer_claims, error_response
from parsec.auth.scopes import is_operator
from parsec.errors import ParsecError
from parsec.services.telemetry import TELEMETRY_PATH

if TYPE_CHECKING:
    from parsec import Parsec

__all__ = ["telemetry_route"]


def telemetry_route(parsec: Parsec) -> Route:
    """The route of ``GET /parsec/telemetry`` on ``parsec``."""

    async def telemetry(request: Request) -> Response:
        claims = await bearer_claims(request, parsec.authenticate_mgmt)
        if isinstance(claims, Response):
            return claims
        if not is_operator(claims.scopes):
            denied = ParsecError("PARSEC_AUTH_DENIED", "telemetry needs an operator token")
            return error_response(denied)
        return JSONResponse(await parsec.telemetry.snapshot())

    return Route(TELEMETRY_PATH, telemetry, methods=["GET"], include_in_schema=False)
