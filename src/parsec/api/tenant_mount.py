"""``/orgs/{slug}/…``: each organisation's own Parsec (:mod:`parsec.services.tenancy`)
served under its slug — its WebSocket endpoint, JWKS, manifest and health::

    /orgs/acme/connection/websocket     connect with a token from /api/v1/auth/exchange
    /orgs/acme/parsec/jwks.json         the org's public signing keys

The tenant starts on the first request for its org. An org that does not exist answers
404 ``PARSEC_ORG_NOT_FOUND`` (a WebSocket is closed before it opens). With
``[accounts] org_max_connections`` set, a WebSocket beyond that many connections of the
same org across the cluster (its open WebSockets on this node, its clients on the others
as their nodes last reported them) is closed at once with Centrifugo's 3504
"connection limit".
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Final

from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from parsec.services.accounts import AccountsService
    from parsec.services.tenancy import Tenant

__all__ = ["ORGS_PATH", "TenantMount"]

log = logging.getLogger("parsec.accounts")

ORGS_PATH: Final = "/orgs"
CONNECTION_LIMIT_CODE: Final = 3504


class TenantMount:
    """The ASGI application behind ``/orgs/{slug}`` (see the module)."""

    def __init__(self, accounts: AccountsService, *, max_connections: int = 0) -> None:
        if accounts.tenants is None:
            raise ValueError("TenantMount needs an AccountsService with tenants")
        self.accounts = accounts
        self.max_connections = max_connections
        self._open: Counter[str] = Counter()
        """Open WebSockets by org slug, on this node."""

    async def _held(self, slug: str, tenant: Tenant) -> int:
        """The org's connections across the cluster: its open WebSockets here, and its
        clients on the other nodes as they last reported them (every few seconds)."""
        others = await tenant.node.controller.nodes()
        return self._open[slug] + sum(node.num_clients for node in others)

    def mount(self) -> Mount:
        return Mount(ORGS_PATH + "/{slug}", app=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slug = scope.get("path_params", {}).get("slug", "")
        org = await self.accounts.directory.org_by_slug(slug)
        if org is None:
            await _not_found(scope, receive, send, slug)
            return
        tenant = await self.accounts.tenant_of(org)
        app = tenant.asgi_app()
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        if self.max_connections and await self._held(slug, tenant) >= self.max_connections:
            log.info("org %s: connection limit (%d) reached", slug, self.max_connections)
            await _connection_limit(receive, send)
            return
        self._open[slug] += 1
        try:
            await app(scope, receive, send)
        finally:
            self._open[slug] -= 1
            if not self._open[slug]:
                del self._open[slug]


async def _not_found(scope: Scope, receive: Receive, send: Send, slug: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": "no such organisation"})
        return
    body = {"error": {"code": "PARSEC_ORG_NOT_FOUND", "message": f"no organisation {slug!r}"}}
    await JSONResponse(body, status_code=404)(scope, receive, send)


async def _connection_limit(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send(
        {"type": "websocket.close", "code": CONNECTION_LIMIT_CODE, "reason": "connection limit"}
    )
