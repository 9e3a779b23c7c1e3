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

from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from parsec import descriptor
from parsec._version import __version__
from parsec.auth.jwks import jwks
from parsec.rpc.centrifugo_api import CentrifugoApi
from parsec.rpc.parsec_models import DescriptorEnvelope, JSONWebKeySet
from parsec.rpc.parsec_service import bad_route, service_router, twirp_error
from parsec.server.limits import BodyLimit
from parsec.transports.websocket import WEBSOCKET_PATH, WebSocketEndpoint

if TYPE_CHECKING:
    from parsec._facade import Parsec

__all__ = ["build_app"]

JWKS_CACHE_CONTROL: Final = "public, max-age=300"
_EVERY_METHOD: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


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
    app = FastAPI(
        title="Parsec",
        version=__version__,
        summary="The Parsec management API (parsec.ParsecService over Twirp JSON).",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        routes=routes,
    )
    app.include_router(service_router(parsec))
    app.add_route("/twirp/{path:path}", bad_route, _EVERY_METHOD, include_in_schema=False)
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
        responses={404: {"description": "The keyring has no asymmetric key."}},
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
