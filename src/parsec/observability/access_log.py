"""The access log: one ``http_request`` INFO line (logger ``parsec.access``) per HTTP
request and per WebSocket upgrade served through ASGI.

Fields (structured, see :mod:`parsec.observability.logs`): ``method``, ``path`` (never
the query string: it may hold a token), ``status`` (a WebSocket upgrade: 101 once
accepted, else 403 as ASGI servers answer a refused one), ``duration_ms`` (to the end
of the response; to the upgrade for a WebSocket), ``request_id``, ``remote_addr``,
``bearer_subject`` (when there is one), ``trace_id`` (when tracing is on); ``region``
comes from the formatter.

``request_id`` is the request's ``X-Request-ID`` when it is sane (1 to
:data:`MAX_REQUEST_ID` printable ASCII characters, no space), else 24 random hex
characters; it is echoed in the response's ``X-Request-ID``. ``remote_addr`` is the
peer's address, or the client ``X-Forwarded-For`` names (the address right of which
every hop is a trusted proxy) when the peer is in ``[observability] trusted_proxies``.
``bearer_subject`` is the ``sub`` of a JWT bearer (``Authorization: Bearer``) decoded
WITHOUT verification, when it parses: a hint for the reader of the log, never an
authentication; opaque bearers (API keys, ``psk_`` / ``psu_`` tokens) give none, and the
token itself is never logged.

The middleware also opens the request's server span (:mod:`parsec.observability.tracing`),
continuing an incoming ``traceparent``; with tracing off that costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parsec.observability import tracing

__all__ = ["AccessLog", "NativeUpgrades", "bearer_subject", "request_id_of"]

log = logging.getLogger("parsec.access")

MAX_REQUEST_ID: Final = 128
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def request_id_of(given: str | None) -> str:
    """``given`` when it is a sane request id, else a fresh one (24 hex characters)."""
    sane = given and len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable()
    if sane and given is not None and " " not in given:
        return given
    return os.urandom(12).hex()


def bearer_subject(authorization: str | None) -> str | None:
    """The ``sub`` of the JWT in a ``Bearer`` authorization, decoded without
    verification; None for anything else (no header, another scheme, an opaque token,
    a payload that does not parse, a ``sub`` that is not a short string)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return None
    payload = token.strip().split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if isinstance(sub, str) and 0 < len(sub) <= 256 and sub.isprintable():
        return sub
    return None


def _networks(cidrs: Iterable[str]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _trusted(address: str, networks: Sequence[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def remote_addr(peer: str, forwarded: str | None, networks: Sequence[_Network]) -> str:
    """The client's address: ``peer``, or, when ``peer`` is a trusted proxy, the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    if not forwarded or not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class AccessLog:
    """ASGI middleware writing the access log (see the module docstring).
    ``trusted_proxies``: CIDRs (validated here: a bad one raises ValueError)."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.networks = _networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        request_id = request_id_of(headers.get("x-request-id"))
        echo = (b"x-request-id", request_id.encode())
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        start = time.perf_counter()
        status = 0
        logged = False
        fields: dict[str, object] = {}

        def line(code: int) -> None:
            nonlocal logged
            logged = True
            if log.isEnabledFor(logging.INFO):
                log.info("http_request", extra=_fields(fields, code, start))

        async def send_http(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        async def send_websocket(message: Message) -> None:
            if logged:  # every frame after the upgrade: straight through
                await send(message)
                return
            mtype = message["type"]
            if mtype == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), echo]
                await send(message)
                line(101)
                return
            if mtype == "websocket.close":
                line(403)
            await send(message)

        fields.update(
            method=method,
            path=path,
            request_id=request_id,
            remote_addr=self._remote(scope, headers),
        )
        subject = bearer_subject(headers.get("authorization"))
        if subject is not None:
            fields["bearer_subject"] = subject
        span = tracing.tracer().server_span(
            f"{method} {path}" if kind == "http" else f"WEBSOCKET {path}",
            headers,
            {"http.request.method": method, "url.path": path, "parsec.request_id": request_id},
        )
        try:
            with span as trace_id:
                if trace_id is not None:
                    fields["trace_id"] = trace_id
                await self.app(scope, receive, send_http if kind == "http" else send_websocket)
        except BaseException:
            if not logged and kind == "http":
                line(status or 500)
            raise
        if not logged:
            line(status if kind == "http" else 403)

    def _remote(self, scope: Scope, headers: dict[str, str]) -> str:
        client = scope.get("client")
        peer = client[0] if client else ""
        return remote_addr(peer, headers.get("x-forwarded-for"), self.networks)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names lower-case (ASGI's already are); the first of each."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return out


def _fields(fields: dict[str, object], status: int, start: float) -> dict[str, object]:
    return {
        **fields,
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
    }


class NativeUpgrades:
    """The access log of the native WebSocket transport (:mod:`parsec.transports.native`),
    which reads its upgrades itself: the same ``http_request`` line, status 101, written
    once the upgrade is done (no ``trace_id``: no span is opened for an upgrade)."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self.networks = _networks(trusted_proxies)

    def log(
        self,
        path: str,
        request_id: str,
        peer: str,
        headers: Mapping[str, str],
        start: float,
    ) -> None:
        """Write the line of one accepted upgrade of ``path`` (query string dropped) from
        ``peer``, begun at ``start`` (``time.perf_counter``)."""
        if not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, object] = {
            "method": "GET",
            "path": path.split("?", 1)[0],
            "request_id": request_id,
            "remote_addr": remote_addr(peer, headers.get("x-forwarded-for"), self.networks),
        }
        subject = bearer_subject(headers.get("authorization"))
        if subject is not None:
            fields["bearer_subject"] = subject
        log.info("http_request", extra=_fields(fields, 101, start))
