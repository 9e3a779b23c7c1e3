"""Metrics on the main ASGI application: the ``GET /metrics`` route and the middleware
counting HTTP requests by route template (``parsec_http_requests_total``).

:func:`install` is all :func:`parsec.server.app.build_app` calls: with
``[observability] metrics = false`` it adds nothing (no route, no middleware); with
``metrics_addr`` set the route is served there (:mod:`parsec.observability.runtime`)
and not here.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parsec.observability.access import authorized

if TYPE_CHECKING:
    from fastapi import FastAPI

    from parsec import Parsec
    from parsec.observability.metrics import ParsecMetrics

__all__ = ["METRICS_PATH", "HttpMetrics", "install"]

METRICS_PATH = "/metrics"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_KNOWN_PATHS = 4096
"""Paths whose route template is remembered (a static route's path is one; paths with
ids in them fill it up, then their template is found by matching each time)."""
UNMATCHED = "unmatched"
"""The ``route`` label of a request no route matched (never its raw path)."""


def install(app: FastAPI, parsec: Parsec) -> None:
    """Add the ``/metrics`` route and the request-counting middleware to ``app``, as
    ``parsec.options.observability`` says."""
    metrics = parsec.metrics
    if metrics is None:
        return
    options = parsec.options.observability
    if not options.metrics_addr:
        from parsec.observability.metrics import CONTENT_TYPE

        bearer = options.metrics_bearer_token

        async def scrape(request: Request) -> Response:
            if not authorized(bearer, request.headers.get("authorization")):
                return PlainTextResponse(
                    "unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
            return Response(metrics.exposition(), media_type=CONTENT_TYPE)

        app.router.routes.insert(0, Route(METRICS_PATH, scrape, methods=["GET", "HEAD"]))
    app.add_middleware(HttpMetrics, metrics=metrics, app_routes=app)


class HttpMetrics:
    """Counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ParsecMetrics, app_routes: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self._routed = app_routes
        self._documented: list[tuple[re.Pattern[str], str]] | None = None
        self._known: dict[tuple[str, str], str] = {}
        """Route templates of (method, path) seen, up to ``_KNOWN_PATHS`` of them."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, scope["path"])
            route = self._known.get(key)
            if route is None:
                route = self._template(scope)
                if route != UNMATCHED and len(self._known) < _KNOWN_PATHS:
                    self._known[key] = route
            self.metrics.http_request(method, route, status, time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        """The template of the route that matches ``scope`` (``/api/{method}``)."""
        for route in self._routed.router.routes:
            match, child = route.matches(scope)
            if match is not Match.FULL:
                continue
            path = getattr(child.get("route", route), "path", None)
            return str(path) if path else self._documented_template(scope["path"])
        return UNMATCHED

    def _documented_template(self, path: str) -> str:
        """The template of an included router's route, from the OpenAPI document."""
        if self._documented is None:
            self._documented = [
                (compile_path(template)[0], template)
                for template in self._routed.openapi()["paths"]
            ]
        for regex, template in self._documented:
            if regex.match(path):
                return template
        return UNMATCHED
