"""ASGI assembly: the routes one Parsec instance serves.

=================================  =========================================================
``/connection/websocket``          the Centrifugo client protocol (WebSocket)
``/api``, ``/api/<method>``        the Centrifugo server HTTP API
``/healthz``                       200 ``ok`` while the node runs, 503 otherwise (``draining``
                                   from the moment ``Parsec.drain`` begins)
``/metrics``                       Prometheus metrics (:mod:`parsec.observability.http`)
``/twirp/parsec.ParsecService/*``  the management API (:mod:`parsec.api.management`)
``/manifest``                      the ``parsec.manifest`` descriptor envelope
``/parsec/telemetry``              the telemetry snapshot (operator mgmt token)
``/parsec/jwks.json``              the JWKS of the ring's asymmetric keys; 404 when none
``/openapi.json``                  the OpenAPI document of the management routes
``/parsec/token``, ``…/delegate``  the token broker (:mod:`parsec.api.token_broker`), when
``/parsec/revoke``                 ``token_broker.enabled``; under ``token_broker.prefix``
``/auth/github/*``, ``/api/v1/*``  accounts: GitHub login and the caller's orgs
                                   (:mod:`parsec.api.accounts`), with ``[accounts]``
=================================  =========================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from parsec import descriptor
from parsec.api.centrifugo import CentrifugoApi
from parsec.api.management import service_router
from parsec.api.management_models import DescriptorEnvelope, JSONWebKeySet, TwirpError
from parsec.api.telemetry import telemetry_route
from parsec.api.token_broker import TokenBrokerApi
from parsec.api.twirp import BadRoute, error_response
from parsec.auth.jwks import jwks
from parsec.errors import ParsecError
from parsec.observability import http as metrics
from parsec.observability.access_log import AccessLog
from parsec.server.limits import BodyLimit
from parsec.transports.websocket import WEBSOCKET_PATH, WebSocketEndpoint
from parsec.version import __version__

if TYPE_CHECKING:
    from parsec import Parsec

__all__ = ["build_app"]

JWKS_CACHE_CONTROL: Final = "public, max-age=300"


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
        if parsec.draining:
            return PlainTextResponse("draining", status_code=503)
        if node.healthy:
            return PlainTextResponse("ok")
        return PlainTextResponse("not ready", status_code=503)

    routes: list[BaseRoute] = [
        WebSocketRoute(WEBSOCKET_PATH, WebSocketEndpoint(node)),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        telemetry_route(parsec),
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
    broker = parsec.options.token_broker
    if broker.enabled:
        app.router.routes.extend(TokenBrokerApi(parsec.token_broker).routes(broker.prefix))
    if parsec.accounts is not None:
        from parsec.api.accounts import AccountsApi  # SQLAlchemy: only with accounts

        AccountsApi(parsec.accounts).install(app)
    app.include_router(service_router(parsec))
    app.router.routes.append(Route("/twirp/{path:path}", BadRoute(), include_in_schema=False))
    app.include_router(_documents_router(parsec))
    app.add_middleware(BodyLimit, limit=parsec.options.server.max_request_body_size)
    metrics.install(app, parsec)  # /metrics and request counts, unless metrics = false
    # outermost: every request, the body limit's 413 included, gets its line and span
    app.add_middleware(AccessLog, trusted_proxies=parsec.options.observability.trusted_proxies)
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
            missing = ParsecError("PARSEC_KEY_NOT_FOUND", "the keyring has no asymmetric key")
            return error_response(missing)
        return JSONResponse(document, headers={"Cache-Control": JWKS_CACHE_CONTROL})

    return router
