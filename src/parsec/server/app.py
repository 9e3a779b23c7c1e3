"""ASGI assembly: the routes one Parsec instance serves.

=================================  =========================================================
``/connection/websocket``          the Centrifugo client protocol (WebSocket)
``/api``, ``/api/<method>``        the Centrifugo server HTTP API
``/healthz``                       200 ``ok`` while the node runs, 503 otherwise
``/twirp/parsec.ParsecService/*``  the management API (:mod:`parsec.rpc.parsec_service`)
``/manifest``                      the ``parsec.manifest`` descriptor envelope
``/parsec/jwks.json``              the JWKS of the ring's asymmetric keys; 404 when none
``/openapi.json``                  the OpenAPI document of the management routes
=================================  =========================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from parsec import descriptor
from parsec._version import __version__
from parsec.auth.jwks import jwks
from parsec.rpc.centrifugo_api import CentrifugoApi
from parsec.rpc.parsec_models import DescriptorEnvelope, JSONWebKeySet, TwirpError
from parsec.rpc.parsec_service import bad_route, service_router, twirp_error
from parsec.server.limits import BodyLimit
from parsec.transports.websocket import WEBSOCKET_PATH, WebSocketEndpoint

if TYPE_CHECKING:
    from parsec._facade import Parsec

__all__ = ["build_app"]

JWKS_CACHE_CONTROL: Final = "public, max-age=300"


class _BadRoute:
    """:func:`bad_route` as an ASGI app: a route whose endpoint is not a function takes
    every HTTP method (TRACE, QUERY, WebDAV's, anything), so each gets Twirp's 404
    rather than Starlette's 405."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await bad_route(Request(scope, receive))
        await response(scope, receive, send)


class _App(FastAPI):
    """FastAPI, minus the ``422 Validation Error`` replies it adds to the OpenAPI document
    of every route that reads a body: ParsecService answers such a body ``400
    invalid_argument``, which each method documents, and never 422."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return self.openapi_schema or super().openapi()


def build_app(parsec: Parsec) -> FastAPI:
    """The ASGI application of ``parsec``: every route in the module docstring.

    Interactive docs (``/docs``, ``/redoc``) are off: they load scripts from a CDN.
    Every HTTP request body is limited to ``server.max_request_body_size``
    (:mod:`parsec.server.limits`).
    """
    node = parsec.node

    async def healthz(request: Request) -> PlainTextResponse:
        if node.healthy:
            return PlainTextResponse("ok")
        return PlainTextResponse("not ready", status_code=503)

    routes: list[BaseRoute] = [
        WebSocketRoute(WEBSOCKET_PATH, WebSocketEndpoint(node)),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *CentrifugoApi(node, parsec.options.api, parsec.revocations).routes(),
    ]
    app = _App(
        title="Parsec",
        version=__version__,
        summary="The Parsec management API (parsec.ParsecService over Twirp JSON).",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        routes=routes,
    )
    app.include_router(service_router(parsec))
    app.router.routes.append(Route("/twirp/{path:path}", _BadRoute(), include_in_schema=False))
    app.include_router(_documents_router(parsec))
    app.add_middleware(BodyLimit, limit=parsec.options.server.max_request_body_size)
    return app


def _documents_router(parsec: Parsec) -> APIRouter:
    """``GET /manifest`` and ``GET /parsec/jwks.json``; no authentication."""
    router = APIRouter(tags=["documents"])

    @router.get(
        "/manifest",
        operation_id="GetManifest",
        response_model=DescriptorEnvelope,
        summary="The manifest envelope.",
    )
    async def manifest() -> Response:
        body = descriptor.encode(descriptor.manifest_envelope(parsec))
        return Response(body, media_type="application/json")

    @router.get(
        "/parsec/jwks.json",
        operation_id="GetJWKS",
        response_model=JSONWebKeySet,
        summary="Public keys of the asymmetric signing keys (RFC 7517).",
        responses={
            404: {
                "model": TwirpError,
                "description": "`not_found`: the keyring has no asymmetric key "
                "(PARSEC_KEY_NOT_FOUND).",
            }
        },
    )
    async def key_set() -> Response:
        document = jwks(parsec.keyring)
        if document is None:
            return twirp_error(
                404,
                "not_found",
                "the keyring has no asymmetric key",
                {"parsec_code": "PARSEC_KEY_NOT_FOUND"},
            )
        return JSONResponse(document, headers={"Cache-Control": JWKS_CACHE_CONTROL})

    return router
